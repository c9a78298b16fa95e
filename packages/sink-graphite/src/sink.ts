/**
 * The Graphite sink: each window becomes payloads of whole plaintext lines (`lines.ts`), written over
 * one persistent connection to carbon (`connection.ts`); every failure is left to core's one retry
 * policy (`DeliveryPolicy`: byte-bounded buffer, backoff, age limit), which is also what reconnects.
 */
import {
  ComponentStats,
  DeliveryPolicy,
  batchItemCounts,
  KEPT_ON_DISK_REASONS,
  InFlightExports,
  unexpectedExportError,
  windowResult,
  addLoss,
  type Clock,
  type BatchDelivery,
  type ComponentContext,
  type ErrorCode,
  type ExportResult,
  type LossTally,
  type MetricBatch,
  type SendOutcome,
  type Sink,
  type SinkDropReason,
} from '@metrics-distributor/core';
import { CarbonConnection } from './connection.js';
import { LineEncoder, type Payload } from './lines.js';
import { resolveOptions, type GraphiteSinkOptions, type ResolvedOptions } from './options.js';

/** What the sink takes besides its options and its component context. */
export interface GraphiteSinkExtras {
  /** Stats of the retry path (`sink-graphite-retry`), e.g. `registry.component(…)`; kept unpublished without it. */
  retryStats?: ComponentStats;
  /** Time and timers of the retry policy; default the system's (tests use a fake). */
  clock?: Clock;
  /** Jitter source of the backoff; default `Math.random`. */
  random?: () => number;
}

/** Encoding runs at most this long before yielding to the event loop. */
const ENCODE_SLICE_MS = 10;

/** The drop codes of what the encoder cannot send, for their rate-limited log lines. */
const ENCODE_LOG: Partial<Record<SinkDropReason, { readonly code: ErrorCode; readonly message: string }>> = {
  name_clash: { code: 'MD_ERR_SINK_NAME_CLASH', message: 'Graphite sink: two series have the same Graphite name and timestamp after sanitising; sent the first only.' },
  bad_name: { code: 'MD_ERR_SINK_BAD_NAME', message: 'Graphite sink: a metric name is empty once sanitised to Graphite characters; dropped.' },
  unsupported: { code: 'MD_ERR_SINK_UNSUPPORTED', message: 'Graphite sink: events and service checks have no Graphite plaintext form; dropped.' },
  invalid_value: { code: 'MD_ERR_SINK_REJECTED', message: 'Graphite sink: a non-finite value has no Graphite form; dropped.' },
};

/**
 * One window's payloads, with `--data-dir`: the window is settled in its ledger as a whole once every
 * payload was written or dropped, or kept (and so written again, whole, later) when any was let go of.
 * Per-line records would buy nothing here: carbon keeps one value per name and timestamp, so lines
 * written twice overwrite themselves.
 */
class WindowTrack {
  private open = 0;
  private ended = false;
  private kept = false;
  private written = false;
  private settled = false;
  constructor(
    private readonly ledger: BatchDelivery,
    private readonly batch: MetricBatch,
  ) {}
  /** A payload of the window was made (or a split made one more). */
  add(n = 1): void {
    this.open += n;
  }
  /** A payload was written, dropped for good, or let go of with its window on disk. */
  finish(how: 'written' | 'lost' | 'kept'): void {
    this.open--;
    if (how === 'kept') this.kept = true;
    if (how === 'written') this.written = true;
    this.check();
  }
  /** Every payload of the window has been made. */
  end(): void {
    this.ended = true;
    this.check();
  }
  private check(): void {
    if (!this.ended || this.open > 0 || this.settled) return;
    this.settled = true;
    for (const [kind, n] of batchItemCounts(this.batch)) {
      if (n === 0) continue;
      if (this.kept) this.ledger.kept(kind, n);
      // Only a window with a line written says carbon takes lines: the queue then sends parked windows.
      else if (this.written) this.ledger.delivered(kind, Array.from({ length: n }, (_, i) => i));
      else this.ledger.lost(kind, n);
    }
  }
}

/** A payload with the window it belongs to, when that window is on disk. */
interface Tracked extends Payload {
  readonly track?: WindowTrack;
}

/** Halves a payload at a line boundary (the policy's split; carbon never refuses a size, so rarely used). */
function halves(p: Tracked): Tracked[] {
  const text = p.body.toString('utf8');
  let cut = text.indexOf('\n', Math.floor(text.length / 2));
  if (cut < 0 || cut === text.length - 1) cut = text.lastIndexOf('\n', Math.floor(text.length / 2));
  if (cut < 0) return [p];
  const a = text.slice(0, cut + 1);
  const b = text.slice(cut + 1);
  const count = (s: string): number => s.split('\n').length - 1;
  p.track?.add();
  return [
    { body: Buffer.from(a, 'utf8'), lines: count(a), dataMs: p.dataMs, track: p.track },
    { body: Buffer.from(b, 'utf8'), lines: count(b), dataMs: p.dataMs, track: p.track },
  ];
}

/**
 * Delivers windows to carbon's plaintext line receiver with etsy statsd's names. `export` never throws
 * and never returns `retryable`: retries are per payload, inside the sink. Counts are lines.
 */
export class GraphiteSink implements Sink {
  /** Sink id: core names its queue and stats `sink-graphite` after it. */
  readonly name = 'graphite';
  /** Settles windows on disk only once their lines were written (see {@link WindowTrack}). */
  readonly tracksDelivery = true;

  private readonly opts: ResolvedOptions;
  private readonly encoder: LineEncoder;
  private readonly connection: CarbonConnection;
  private readonly delivery: DeliveryPolicy<Tracked>;
  private readonly inflight = new InFlightExports();
  private shutdownPromise: Promise<void> | undefined;

  /** Throws `MD_ERR_CONFIG_INVALID` for invalid options; `context` is the `sink-graphite` component's. */
  constructor(
    options: GraphiteSinkOptions,
    private readonly context: ComponentContext<'sink'>,
    extras: GraphiteSinkExtras = {},
  ) {
    this.opts = resolveOptions(options);
    this.encoder = new LineEncoder(this.opts);
    this.connection = new CarbonConnection(this.opts, context.logger, context.stats);
    this.delivery = new DeliveryPolicy<Tracked>(
      {
        send: (p) => this.send(p),
        split: (p) => Promise.resolve(halves(p)),
        onLost: (p) => p.track?.finish('lost'),
        keep: (p, reason) => {
          if (p.track === undefined || !KEPT_ON_DISK_REASONS.has(reason)) return false;
          // Written again with its window later: not received yet, as far as the counters go.
          this.context.stats.received -= p.lines;
          p.track.finish('kept');
          return true;
        },
        bytes: (p) => p.body.length,
        items: (p) => p.lines,
        dataMs: (p) => p.dataMs,
        logFields: (p) => ({ lines: p.lines, bytes: p.body.length }),
        summarize: (unsent) => ({ lostLines: unsent.reduce((n, p) => n + p.lines, 0) }),
      },
      context,
      {
        retryBufferBytes: this.opts.retryBufferBytes,
        retryBaseMs: this.opts.retryBaseMs,
        retryMaxMs: this.opts.retryMaxMs,
        maxAgeMs: this.opts.retryMaxAgeMs,
        // One connection: payloads go one after another anyway.
        concurrency: 1,
        destination: 'Graphite',
        retryStats: extras.retryStats ?? new ComponentStats('sink-graphite-retry'),
        hints: { retryBufferBytes: '--graphite-retry-buffer-bytes', maxAge: '--graphite-retry-max-age' },
        ...(extras.clock !== undefined ? { clock: extras.clock } : {}),
        ...(extras.random !== undefined ? { random: extras.random } : {}),
      },
    );
  }

  /** Carbon's `host:port`, for the start-up log line. */
  get address(): string {
    return this.connection.address;
  }

  /** Bytes held for retry now. */
  get retryBufferBytes(): number {
    return this.delivery.bufferedBytes;
  }

  /**
   * Writes the window's lines. Resolves `success` once every payload was written or parked for retry,
   * `failure` when some lines were dropped for good (each counted by reason). Never throws.
   */
  async export(batch: MetricBatch, delivery?: BatchDelivery): Promise<ExportResult> {
    return this.inflight.track(this.runExport(batch, delivery));
  }

  private async runExport(batch: MetricBatch, delivery: BatchDelivery | undefined): Promise<ExportResult> {
    const tally: LossTally = { lost: 0, reasons: new Set() };
    const track = delivery === undefined ? undefined : new WindowTrack(delivery, batch);
    const losses = {
      lose: (reason: SinkDropReason, n: number, sample: string): void => {
        this.context.stats.received += n;
        const log = ENCODE_LOG[reason];
        this.context.drop(reason, n, log === undefined ? undefined : { ...log, level: 'error', fields: { sample } });
        addLoss(tally, n, reason);
      },
    };
    try {
      let sliceStart = performance.now();
      for (const made of this.encoder.payloads(batch, losses)) {
        // With carbon away every payload is parked at once, and awaiting that alone never leaves the
        // microtask queue: give the event loop (ingestion) a turn after each slice of encoding.
        if (performance.now() - sliceStart > ENCODE_SLICE_MS) {
          await new Promise<void>((r) => setImmediate(r));
          sliceStart = performance.now();
        }
        if (made === null) continue;
        if (this.delivery.final) {
          if (track !== undefined) {
            // On disk: the next start writes it.
            track.add();
            track.finish('kept');
            continue;
          }
          this.context.stats.received += made.lines;
          this.context.drop('shutdown_unsent', made.lines);
          addLoss(tally, made.lines, 'shutdown_unsent');
          continue;
        }
        this.context.stats.received += made.lines;
        const p: Tracked = track === undefined ? made : { ...made, track };
        track?.add();
        await this.delivery.deliver(p, tally);
      }
      track?.end();
    } catch (err) {
      // Only a bug gets here; the window is then partly unaccounted for.
      return unexpectedExportError(this.context.logger, 'Graphite', err);
    }
    return windowResult(tally, 'graphite', 'line(s) or item(s)');
  }

  /** The policy's send: one write; lines count as sent only once written to the kernel. */
  private async send(p: Tracked): Promise<SendOutcome> {
    const out = await this.connection.send(p.body);
    if (out.kind === 'ok') {
      this.context.stats.sent += p.lines;
      this.context.stats.packets++;
      this.context.stats.bytes += p.body.length;
      p.track?.finish('written');
    }
    return out;
  }

  /**
   * Finishes exports in progress, retries what is buffered (ignoring the backoff) until `deadlineMs`,
   * counts the rest as `shutdown_unsent`, then closes the connection. Idempotent.
   */
  shutdown(deadlineMs: number): Promise<void> {
    this.shutdownPromise ??= this.shutdownOnce(deadlineMs);
    return this.shutdownPromise;
  }

  private async shutdownOnce(deadlineMs: number): Promise<void> {
    try {
      await this.delivery.shutdown(deadlineMs, this.inflight.settled());
    } finally {
      await this.connection.close(deadlineMs);
    }
  }
}
