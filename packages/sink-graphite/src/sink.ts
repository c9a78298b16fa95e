/**
 * The Graphite sink: each window becomes payloads of whole plaintext lines (`lines.ts`), written over
 * one persistent connection to carbon (`connection.ts`); every failure is left to core's one retry
 * policy (`DeliveryPolicy`: byte-bounded buffer, backoff, age limit), which is also what reconnects.
 */
import {
  ComponentStats,
  DeliveryPolicy,
  InFlightExports,
  unexpectedExportError,
  windowResult,
  addLoss,
  type Clock,
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

/** Halves a payload at a line boundary (the policy's split; carbon never refuses a size, so rarely used). */
function halves(p: Payload): Payload[] {
  const text = p.body.toString('utf8');
  let cut = text.indexOf('\n', Math.floor(text.length / 2));
  if (cut < 0 || cut === text.length - 1) cut = text.lastIndexOf('\n', Math.floor(text.length / 2));
  if (cut < 0) return [p];
  const a = text.slice(0, cut + 1);
  const b = text.slice(cut + 1);
  const count = (s: string): number => s.split('\n').length - 1;
  return [
    { body: Buffer.from(a, 'utf8'), lines: count(a), dataMs: p.dataMs },
    { body: Buffer.from(b, 'utf8'), lines: count(b), dataMs: p.dataMs },
  ];
}

/**
 * Delivers windows to carbon's plaintext line receiver with etsy statsd's names. `export` never throws
 * and never returns `retryable`: retries are per payload, inside the sink. Counts are lines.
 */
export class GraphiteSink implements Sink {
  /** Sink id: core names its queue and stats `sink-graphite` after it. */
  readonly name = 'graphite';

  private readonly opts: ResolvedOptions;
  private readonly encoder: LineEncoder;
  private readonly connection: CarbonConnection;
  private readonly delivery: DeliveryPolicy<Payload>;
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
    this.delivery = new DeliveryPolicy<Payload>(
      {
        send: (p) => this.send(p),
        split: (p) => Promise.resolve(halves(p)),
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
  async export(batch: MetricBatch): Promise<ExportResult> {
    return this.inflight.track(this.runExport(batch));
  }

  private async runExport(batch: MetricBatch): Promise<ExportResult> {
    const tally: LossTally = { lost: 0, reasons: new Set() };
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
      for (const p of this.encoder.payloads(batch, losses)) {
        // With carbon away every payload is parked at once, and awaiting that alone never leaves the
        // microtask queue: give the event loop (ingestion) a turn after each slice of encoding.
        if (performance.now() - sliceStart > ENCODE_SLICE_MS) {
          await new Promise<void>((r) => setImmediate(r));
          sliceStart = performance.now();
        }
        if (p === null) continue;
        this.context.stats.received += p.lines;
        if (this.delivery.final) {
          this.context.drop('shutdown_unsent', p.lines);
          addLoss(tally, p.lines, 'shutdown_unsent');
          continue;
        }
        await this.delivery.deliver(p, tally);
      }
    } catch (err) {
      // Only a bug gets here; the window is then partly unaccounted for.
      return unexpectedExportError(this.context.logger, 'Graphite', err);
    }
    return windowResult(tally, 'graphite', 'line(s) or item(s)');
  }

  /** The policy's send: one write; lines count as sent only once written to the kernel. */
  private async send(p: Payload): Promise<SendOutcome> {
    const out = await this.connection.send(p.body);
    if (out.kind === 'ok') {
      this.context.stats.sent += p.lines;
      this.context.stats.packets++;
      this.context.stats.bytes += p.body.length;
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
