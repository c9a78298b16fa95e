/**
 * The one retry policy of every sink. A sink says how to send one payload and what the answer meant
 * ({@link SendOutcome}); this decides what happens next: retried from a byte-bounded buffer behind a
 * circuit breaker with jittered backoff, split and re-sent when too large, or dropped and counted
 * (`retry_buffer_full`, `expired`, `payload_too_large`, the sink's own rejection reasons,
 * `shutdown_unsent`). Payloads are the sink's own type `P`: the policy only asks for their size, item
 * count and data age, so Datadog, remote write, OTLP or Graphite payloads all fit.
 */
import type { ComponentContext, DropLog, DropReason } from '../component.js';
import { MdError } from '../errors.js';
import { RateLimitedLog } from '../logger.js';
import type { ComponentStats } from '../stats.js';
import { CircuitBreaker } from './backoff.js';
import { sleepOn, systemClock, type CancelTimer, type Clock } from './clock.js';
import { RetryBuffer } from './retry-buffer.js';

/** A drop reason a sink may report. */
export type SinkDropReason = DropReason<'sink'>;

/** What one attempt to send a payload came to, as the sink classified the destination's answer. */
export type SendOutcome =
  /** Accepted. */
  | { readonly kind: 'ok' }
  /** Worth trying again later (5xx, 429, timeout, connection error); `retryAfterMs` is the destination's own wait. */
  | { readonly kind: 'retryable'; readonly error: MdError; readonly retryAfterMs?: number; readonly fields?: Record<string, unknown> }
  /** Refused for its size (HTTP 413): split and re-sent, or dropped when it holds one item (`log` then says which). */
  | { readonly kind: 'too_large'; readonly log?: DropLog }
  /** Refused for good (400, 403, …): dropped and counted under `reason`. */
  | { readonly kind: 'rejected'; readonly reason: SinkDropReason; readonly log?: DropLog };

/** Items an export lost for good, so it can report `failure` with the reasons. */
export interface LossTally {
  /** Items lost. */
  lost: number;
  /** The reasons, each once. */
  readonly reasons: Set<SinkDropReason>;
}

/** Adds a loss to `tally`, when there is one (retries belong to no export). */
export function addLoss(tally: LossTally | undefined, items: number, reason: SinkDropReason): void {
  if (tally === undefined) return;
  tally.lost += items;
  tally.reasons.add(reason);
}

/** What a sink supplies for its payloads of type `P`. */
export interface DeliveryTarget<P> {
  /** Sends `p` once and classifies the answer. Must not throw for an expected failure (a throw counts as `internal_error`). */
  send(p: P): Promise<SendOutcome>;
  /** Splits `p` (holding more than one item) into parts ready to send, about half each; may drop (and count) items it cannot fit. */
  split(p: P, tally: LossTally | undefined): Promise<readonly P[]>;
  /** Bytes `p` holds in memory while buffered; must not change while it is buffered. */
  bytes(p: P): number;
  /** Items in `p`: what a drop counts. */
  items(p: P): number;
  /** Epoch ms of the data in `p` (e.g. its window's start): how old it is, for the age limit. */
  dataMs(p: P): number;
  /** How old `p`'s data may get before the destination refuses it; default {@link DeliveryOptions.maxAgeMs}. */
  maxAgeMs?(p: P): number;
  /**
   * Asked before `p` is counted as lost for `reason`: true when the sink keeps it elsewhere (its window is
   * on disk, `--data-dir`), so an eviction from this buffer or a shutdown is not a loss. Default: never.
   */
  keep?(p: P, reason: SinkDropReason): boolean;
  /** Called for every item lost, after it was counted on the context: for the sink's own per-kind counters. */
  onLost?(p: P, items: number, reason: SinkDropReason): void;
  /** Extra fields for log lines about `p` (kept small). */
  logFields?(p: P): Record<string, unknown>;
  /** Fields of the shutdown log line about the payloads lost at the deadline; default `{ lost: <items> }`. */
  summarize?(unsent: readonly P[]): Record<string, unknown>;
}

/** Settings of a {@link DeliveryPolicy}. Durations are milliseconds. */
export interface DeliveryOptions {
  /** Bytes of payloads held for retry; beyond, the oldest are dropped (`retry_buffer_full`). */
  retryBufferBytes: number;
  /** Backoff after the first failure; doubles per consecutive failure, jittered to [t/2, t]. */
  retryBaseMs: number;
  /** Longest backoff. */
  retryMaxMs: number;
  /** Data older than this is dropped (`expired`) instead of being retried; a target may say per payload. */
  maxAgeMs: number;
  /** Payloads re-sent at once when the destination is back. */
  concurrency: number;
  /** The destination's name in log messages, e.g. `Datadog`. */
  destination: string;
  /** Where `received`/`sent`/`failed` of the retry path are counted (e.g. `sink-datadog-retry`). */
  retryStats?: ComponentStats;
  /** Option names users set the buffer and age limit with, named in the log lines about them. */
  hints?: { retryBufferBytes?: string; maxAge?: string };
  /** Time and timers; default the system's. */
  clock?: Clock;
  /** Jitter source; default `Math.random`. */
  random?: () => number;
}

/**
 * The drops that are no loss for a payload whose window is on disk (`--data-dir`): evicted from the
 * retry buffer, or unsent at shutdown. A sink whose payloads may be sent again (no cumulative state)
 * answers {@link DeliveryTarget.keep} true for these, and its window is exported again from disk.
 */
export const KEPT_ON_DISK_REASONS: ReadonlySet<SinkDropReason> = new Set<SinkDropReason>(['retry_buffer_full', 'shutdown_unsent']);

/** Retry log lines are limited to one per this interval. */
const RETRY_LOG_INTERVAL_MS = 60_000;

/**
 * Delivers a sink's payloads: {@link deliver} sends now or parks while the breaker is open; parked
 * payloads are re-sent newest first once the backoff has passed, one probe first, the rest only when it
 * went through; {@link shutdown} retries what is left until the deadline and counts the rest.
 */
export class DeliveryPolicy<P> {
  private readonly buffer: RetryBuffer<P>;
  private readonly breaker: CircuitBreaker;
  private readonly clock: Clock;
  private readonly retryLog: RateLimitedLog;
  private retryTimer: CancelTimer | undefined;
  private draining: Promise<void> | undefined;
  private closing = false;
  private isFinal = false;
  private deadlineMs = Number.POSITIVE_INFINITY;
  private shutdownPromise: Promise<void> | undefined;

  constructor(
    private readonly target: DeliveryTarget<P>,
    private readonly context: ComponentContext<'sink'>,
    private readonly opts: DeliveryOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.buffer = new RetryBuffer(opts.retryBufferBytes, (p) => target.bytes(p));
    this.breaker = new CircuitBreaker({ baseMs: opts.retryBaseMs, maxMs: Math.max(opts.retryBaseMs, opts.retryMaxMs) }, this.clock, opts.random);
    this.retryLog = new RateLimitedLog(RETRY_LOG_INTERVAL_MS, () => this.clock.now());
    this.updateGauges();
  }

  /** True once shutdown has finished: nothing is buffered any more, a payload handed over now is counted as lost. */
  get final(): boolean {
    return this.isFinal;
  }

  /** Bytes held for retry. */
  get bufferedBytes(): number {
    return this.buffer.bytes;
  }

  /** Payloads held for retry. */
  get bufferedPayloads(): number {
    return this.buffer.length;
  }

  /**
   * Sends `p` now, or parks it while the destination is backing off (the circuit breaker). Resolves once
   * it was accepted, parked or dropped; losses of this first attempt are added to `tally`. Never rejects.
   */
  async deliver(p: P, tally?: LossTally): Promise<void> {
    try {
      if (!this.closing && this.breaker.open) {
        this.park(p);
        return;
      }
      await this.handle(p, await this.target.send(p), tally);
    } catch (err) {
      this.internalError(p, err, tally);
    }
  }

  /** Counts `items` of `p` as lost for `reason`: on the context (with `log`, rate-limited), the target and `tally`. */
  private lose(p: P, items: number, reason: SinkDropReason, tally: LossTally | undefined, log?: DropLog): void {
    if (items <= 0 || this.target.keep?.(p, reason) === true) return;
    this.counted(p, items, reason, tally, log);
  }

  private counted(p: P, items: number, reason: SinkDropReason, tally: LossTally | undefined, log?: DropLog): void {
    this.context.drop(reason, items, log);
    this.target.onLost?.(p, items, reason);
    addLoss(tally, items, reason);
  }

  private fields(p: P): Record<string, unknown> {
    return { items: this.target.items(p), ...this.target.logFields?.(p) };
  }

  private internalError(p: P, err: unknown, tally: LossTally | undefined): void {
    this.lose(p, this.target.items(p), 'internal_error', tally, {
      code: 'MD_ERR_SINK_EXPORT',
      level: 'error',
      cause: err,
      fields: this.fields(p),
      message: `${this.opts.destination} sink: unexpected error while sending a payload; dropped.`,
    });
  }

  /** What an answer means for `p`; 'retry' when it went back to the buffer. */
  private async handle(p: P, out: SendOutcome, tally: LossTally | undefined): Promise<'done' | 'retry'> {
    switch (out.kind) {
      case 'ok':
        if (this.breaker.success()) {
          // The destination is back: what waited for the backoff goes now.
          this.cancelRetryTimer();
          this.scheduleRetry();
        }
        return 'done';
      case 'rejected':
        this.lose(p, this.target.items(p), out.reason, tally, out.log ?? { code: 'MD_ERR_SINK_REJECTED', level: 'error', fields: this.fields(p) });
        return 'done';
      case 'too_large':
        if (this.target.items(p) > 1) {
          for (const part of await this.target.split(p, tally)) await this.deliver(part, tally);
        } else {
          this.lose(
            p,
            1,
            'payload_too_large',
            tally,
            out.log ?? {
              code: 'MD_ERR_SINK_PAYLOAD_TOO_LARGE',
              level: 'error',
              fields: this.fields(p),
              message: `${this.opts.destination} refused a payload of a single item as too large; dropped.`,
            },
          );
        }
        return 'done';
      case 'retryable':
        this.breaker.failure(out.retryAfterMs);
        this.retryLog.maybe((suppressed) =>
          this.context.logger.warn(
            { err: out.error, ...out.fields, retryInMs: this.breaker.remainingMs, retryBufferBytes: this.buffer.bytes, suppressed },
            `${this.opts.destination} request failed; the payload is kept for retry.`,
          ),
        );
        this.park(p);
        return 'retry';
    }
  }

  private maxAgeOf(p: P): number {
    return this.target.maxAgeMs?.(p) ?? this.opts.maxAgeMs;
  }

  private expired(p: P, now: number): boolean {
    return now - this.target.dataMs(p) > this.maxAgeOf(p);
  }

  /** Into the retry buffer, unless too old already or after shutdown; evicts the oldest beyond the bound. */
  private park(p: P): void {
    if (this.isFinal) {
      this.lose(p, this.target.items(p), 'shutdown_unsent', undefined);
      return;
    }
    // Counted as entering the retry path either way, so received = sent + failed (+ buffered) holds.
    if (this.opts.retryStats !== undefined) this.opts.retryStats.received++;
    if (this.expired(p, this.clock.now())) {
      this.expire(p);
      return;
    }
    for (const old of this.buffer.push(p)) {
      if (this.opts.retryStats !== undefined) this.opts.retryStats.failed++;
      const hint = this.opts.hints?.retryBufferBytes;
      this.lose(old, this.target.items(old), 'retry_buffer_full', undefined, {
        code: 'MD_ERR_SINK_RETRY_BUFFER_FULL',
        level: 'error',
        fields: { ...this.fields(old), maxBytes: this.buffer.maxBytes },
        message: `${this.opts.destination} retry buffer full; dropped the oldest payload${hint === undefined ? '' : ` (see ${hint})`}.`,
      });
    }
    this.updateGauges();
    this.scheduleRetry();
  }

  private expire(p: P): void {
    if (this.opts.retryStats !== undefined) this.opts.retryStats.failed++;
    this.lose(p, this.target.items(p), 'expired', undefined, this.expiredLog({ ...this.fields(p), maxAgeMs: this.maxAgeOf(p) }));
  }

  private expiredLog(fields: Record<string, unknown>): DropLog {
    const hint = this.opts.hints?.maxAge;
    return {
      code: 'MD_ERR_SINK_EXPIRED',
      level: 'error',
      fields,
      message: `${this.opts.destination} payloads waited in the retry buffer longer than the destination accepts old data; dropped them${hint === undefined ? '' : ` (see ${hint})`}.`,
    };
  }

  /** Drops buffered payloads the destination would refuse for their age: one count and one log line per sweep. */
  private dropExpired(): void {
    const now = this.clock.now();
    const gone = this.buffer.removeWhere((p) => this.expired(p, now));
    if (gone.length === 0) return;
    this.updateGauges();
    let items = 0;
    for (const p of gone) {
      const n = this.target.items(p);
      if (this.opts.retryStats !== undefined) this.opts.retryStats.failed++;
      if (n <= 0) continue;
      items += n;
      this.target.onLost?.(p, n, 'expired');
    }
    if (items > 0) this.context.drop('expired', items, this.expiredLog({ payloads: gone.length, items }));
  }

  private takeNewest(): P | undefined {
    const p = this.buffer.takeNewest();
    if (p !== undefined) this.updateGauges();
    return p;
  }

  private updateGauges(): void {
    this.context.stats.gauge('retry_buffer_bytes', this.buffer.bytes);
    this.context.stats.gauge('retry_buffer_payloads', this.buffer.length);
  }

  private cancelRetryTimer(): void {
    this.retryTimer?.();
    this.retryTimer = undefined;
  }

  private scheduleRetry(): void {
    if (this.closing || this.draining !== undefined || this.retryTimer !== undefined || this.buffer.length === 0) return;
    this.retryTimer = this.clock.setTimer(
      () => {
        this.retryTimer = undefined;
        void this.drain();
      },
      this.breaker.remainingMs,
      false,
    );
  }

  private drain(): Promise<void> {
    this.draining ??= (this.breaker.open || this.closing ? Promise.resolve() : this.drainRound().then(() => undefined)).finally(() => {
      this.draining = undefined;
      this.scheduleRetry();
    });
    return this.draining;
  }

  /**
   * Sends one probe, newest first; only if it goes through, the rest of the buffer follows with full
   * concurrency. So while the destination is still down, each round costs one request, not the whole
   * buffer. False when something went back to the buffer.
   */
  private async drainRound(): Promise<boolean> {
    this.dropExpired();
    const probe = this.takeNewest();
    if (probe === undefined) return true;
    if ((await this.resend(probe)) === 'retry') return false;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!failed && (this.closing || !this.breaker.open)) {
        const p = this.takeNewest();
        if (p === undefined) return;
        if ((await this.resend(p)) === 'retry') failed = true;
      }
    };
    await Promise.all(Array.from({ length: this.opts.concurrency }, worker));
    return !failed;
  }

  private async resend(p: P): Promise<'done' | 'retry'> {
    try {
      const out = await this.target.send(p);
      if (out.kind === 'ok' && this.opts.retryStats !== undefined) this.opts.retryStats.sent++;
      return await this.handle(p, out, undefined);
    } catch (err) {
      this.internalError(p, err, undefined);
      return 'done';
    }
  }

  /**
   * Waits for `inFlight` (the sink's exports in progress), then retries every buffered payload, ignoring
   * the backoff, until `deadlineMs`; what is still undelivered is counted as `shutdown_unsent` and logged
   * in one line. The sink aborts its own requests at the deadline. Idempotent.
   */
  shutdown(deadlineMs: number, inFlight: Promise<unknown> = Promise.resolve()): Promise<void> {
    this.shutdownPromise ??= this.shutdownOnce(deadlineMs, inFlight);
    return this.shutdownPromise;
  }

  private async shutdownOnce(deadlineMs: number, inFlight: Promise<unknown>): Promise<void> {
    this.closing = true;
    this.deadlineMs = deadlineMs;
    this.cancelRetryTimer();
    try {
      await this.untilDeadline(Promise.allSettled([inFlight, this.draining ?? Promise.resolve()]));
      // The backoff is ignored (there is no later), but rounds still start with a probe and pause between.
      while (this.buffer.length > 0 && this.clock.now() < deadlineMs) {
        if (!(await this.drainRound())) {
          const pause = sleepOn(this.clock, this.breaker.delay(1));
          await this.untilDeadline(pause.done);
          pause.wake();
        }
      }
    } catch (err) {
      this.context.logger.error({ err }, `${this.opts.destination} sink: unexpected error during shutdown.`);
    } finally {
      this.isFinal = true;
      const unsent = this.buffer.clear();
      let total = 0;
      for (const p of unsent) {
        if (this.target.keep?.(p, 'shutdown_unsent') === true) continue;
        total += this.target.items(p);
        this.counted(p, this.target.items(p), 'shutdown_unsent', undefined);
      }
      this.updateGauges();
      if (total > 0) {
        this.context.logger.error(
          { err: new MdError('MD_ERR_SINK_TIMEOUT', 'shutdown deadline passed'), ...(this.target.summarize?.(unsent) ?? { lost: total }) },
          `${this.opts.destination} sink: shutdown deadline passed with ${total} item(s) undelivered; they are lost.`,
        );
      }
    }
  }

  private async untilDeadline(p: Promise<unknown>): Promise<void> {
    const wait = sleepOn(this.clock, this.deadlineMs - this.clock.now());
    await Promise.race([p, wait.done]);
    wait.wake();
  }
}
