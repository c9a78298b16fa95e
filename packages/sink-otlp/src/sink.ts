/**
 * The OTLP sink: cuts each window into requests of at most `maxPointsPerRequest` points, plans
 * (`mapping.ts`) and encodes (`encode.ts`) each in slices of the event loop (core's `Slicer`), gzips it
 * off the loop, posts it (`transport.ts`), and leaves every answer (`response.ts`) to core's one retry
 * policy: retried from a byte-bounded buffer, split on 413, or dropped and counted; core's queue
 * never re-sends a window.
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import {
  DeliveryPolicy,
  RateLimitedLog,
  InFlightExports,
  unexpectedExportError,
  windowResult,
  addLoss,
  Slicer,
  type ComponentContext,
  type ExportResult,
  type LossTally,
  type MetricBatch,
  type SendOutcome,
  type Sink,
} from '@metrics-distributor/core';
import { encodeJson, encodeProtobuf } from './encode.js';
import { KIND_NAMES, PointMapper, kindOf, type Item } from './mapping.js';
import { resolveOptions, type OtlpSinkOptions, type ResolvedOptions } from './options.js';
import { LOGGED_CHARS, classify, partialSuccess } from './response.js';
import { OtlpTransport } from './transport.js';

const gzipAsync = promisify(gzip);

/** Memory a buffered point holds besides its share of the body (its window's series object, kept to split): an estimate for the retry bound. */
const POINT_OVERHEAD_BYTES = 160;
/** Log lines about partial-success warnings and ignored events: one a minute. */
const NOTICE_INTERVAL_MS = 60_000;

/** One request: its window items, one data point each (kept to split it), and its encoded, compressed body. */
interface Payload {
  readonly items: readonly Item[];
  readonly body: Buffer;
  readonly dataMs: number;
  /** The export it came from, for points a partial success refuses. */
  readonly tally: LossTally | undefined;
}

/**
 * Delivers windows to an OTLP/HTTP receiver (an OpenTelemetry Collector, or a vendor's OTLP intake).
 * `export` never throws and never returns `retryable`: retries happen per request, inside the sink.
 */
export class OtlpSink implements Sink {
  /** Sink id: core names its queue and stats `sink-otlp` after it. */
  readonly name = 'otlp';
  /** Where requests go, for the start-up log line (holds no secret). */
  readonly url: string;

  private readonly opts: ResolvedOptions;
  private readonly mapper: PointMapper;
  /** Cuts planning and encoding into `sliceMs` slices for all of the sink's requests; benchmarks set its `onSlice` to see every slice. */
  readonly slicer: Slicer;
  private readonly transport: OtlpTransport;
  private readonly delivery: DeliveryPolicy<Payload>;
  private readonly inflight = new InFlightExports();
  private readonly warnLog = new RateLimitedLog(NOTICE_INTERVAL_MS);
  private readonly ignoredLog = new RateLimitedLog(NOTICE_INTERVAL_MS);
  private shutdownPromise: Promise<void> | undefined;

  /** Throws `MD_ERR_CONFIG_INVALID` for invalid options; `context` is the `sink-otlp` component's. */
  constructor(
    options: OtlpSinkOptions,
    private readonly context: ComponentContext<'sink'>,
  ) {
    this.opts = resolveOptions(options);
    this.mapper = new PointMapper(this.opts);
    this.slicer = new Slicer({ budgetMs: this.opts.sliceMs });
    this.transport = new OtlpTransport(this.opts);
    this.url = this.transport.url;
    this.delivery = new DeliveryPolicy<Payload>(
      {
        send: (p) => this.send(p),
        split: (p, tally) => this.split(p, tally),
        bytes: (p) => p.body.length + p.items.length * POINT_OVERHEAD_BYTES,
        items: (p) => p.items.length,
        dataMs: (p) => p.dataMs,
        onLost: (_p, n) => (this.context.stats.failed += n),
        logFields: (p) => ({ points: p.items.length, url: this.url }),
      },
      context,
      {
        retryBufferBytes: this.opts.retryBufferBytes,
        retryBaseMs: this.opts.retryBaseMs,
        retryMaxMs: this.opts.retryMaxMs,
        maxAgeMs: this.opts.retryMaxAgeMs,
        concurrency: this.opts.maxConcurrent,
        destination: 'OTLP',
        hints: { retryBufferBytes: '--otlp-retry-buffer-bytes', maxAge: '--otlp-retry-max-age' },
      },
    );
  }

  /**
   * Sends the window's points in requests of at most `maxPointsPerRequest`. Resolves `success` once
   * every point was accepted or parked for retry, `failure` when some were dropped for good (each
   * counted by reason in `dropped`). Never throws.
   */
  async export(batch: MetricBatch): Promise<ExportResult> {
    return this.inflight.track(this.runExport(batch));
  }

  private async runExport(batch: MetricBatch): Promise<ExportResult> {
    const tally: LossTally = { lost: 0, reasons: new Set() };
    this.ignore(batch);
    try {
      const total = batch.series.length + batch.sketches.length;
      if (this.delivery.final) {
        this.context.stats.received += total;
        this.lose(total, 'shutdown_unsent', tally);
      } else {
        const step = this.opts.maxPointsPerRequest;
        const ns = batch.series.length;
        const item = (i: number): Item => (i < ns ? batch.series[i]! : batch.sketches[i - ns]!);
        let next = 0;
        // Each worker takes the next range before its first await, so no item is sent twice.
        const worker = async (): Promise<void> => {
          while (next < total) {
            const from = next;
            const to = (next = Math.min(total, next + step));
            const p = await this.build(item, from, to, batch.windowStartMs, tally);
            if (p === undefined) continue;
            this.context.stats.received += p.items.length;
            await this.delivery.deliver(p, tally);
          }
        };
        await Promise.all(Array.from({ length: this.opts.maxConcurrent }, worker));
      }
      this.context.stats.gauge('export_slice_max_ms', Math.round(this.slicer.takeLongest().wallMs * 1000) / 1000);
    } catch (err) {
      // Only a bug gets here (deliver() never rejects); the window is then partly unaccounted for.
      return unexpectedExportError(this.context.logger, 'OTLP', err);
    }
    return windowResult(tally, 'otlp', 'data point(s)');
  }

  /** Events and service checks have no OTLP metrics form: counted (`ignored_events`), noted once a minute. */
  private ignore(batch: MetricBatch): void {
    const n = batch.events.length + batch.serviceChecks.length;
    if (n === 0) return;
    this.context.stats.count('ignored_events', n);
    this.ignoredLog.maybe((suppressed) =>
      this.context.logger.info({ events: batch.events.length, serviceChecks: batch.serviceChecks.length, suppressed }, 'OTLP sink: events and service checks are not sent (OTLP metrics have no form for them).'),
    );
  }

  private invalid(what: Item, tally: LossTally | undefined): void {
    this.context.stats.received++;
    this.lose(1, 'invalid_value', tally, {
      code: 'MD_ERR_AGG_NON_FINITE',
      fields: { metric: what.metric },
      message: 'OTLP sink: a point with a non-finite value or an inconsistent sketch was dropped.',
    });
  }

  private lose(n: number, reason: 'invalid_value' | 'shutdown_unsent' | 'partial_success', tally: LossTally | undefined, log?: Parameters<ComponentContext<'sink'>['drop']>[2]): void {
    if (n <= 0) return;
    this.context.drop(reason, n, log);
    this.context.stats.failed += n;
    addLoss(tally, n, reason);
  }

  /**
   * Plans, encodes (both in slices of the event loop) and compresses the request of items `[from, to)`;
   * undefined when none of them can be sent.
   */
  private async build(item: (i: number) => Item, from: number, to: number, dataMs: number, tally: LossTally | undefined): Promise<Payload | undefined> {
    const { mapper, opts } = this;
    const invalid = (what: Item) => this.invalid(what, tally);
    const { items, raw } = await this.slicer.run(
      (function* () {
        const plan = yield* mapper.plan(item, from, to, invalid);
        return { items: plan.items, raw: plan.items.length === 0 ? undefined : yield* (opts.protocol === 'http/json' ? encodeJson(plan) : encodeProtobuf(plan)) };
      })(),
    );
    if (raw === undefined) return undefined;
    const body = opts.compression === 'gzip' ? await gzipAsync(raw) : raw;
    return { items, body, dataMs, tally };
  }

  /** The policy's split on 413: two halves, each encoded anew. */
  private async split(p: Payload, tally: LossTally | undefined): Promise<readonly Payload[]> {
    const half = async (from: number, to: number): Promise<Payload> => {
      const b = await this.build((i) => p.items[i]!, from, to, p.dataMs, tally ?? p.tally);
      // Every item of a sent request was valid, so a half is never empty.
      if (b === undefined) throw new Error('OTLP sink: a split half came out empty');
      return b;
    };
    const mid = Math.ceil(p.items.length / 2);
    return [await half(0, mid), await half(mid, p.items.length)];
  }

  /** The policy's send: one POST, its answer classified; a partial success counts its rejected points here. */
  private async send(p: Payload): Promise<SendOutcome> {
    const answer = await this.transport.post(p.body);
    const out = classify(answer, this.url);
    if (out.kind === 'ok' && answer.status !== undefined) {
      const ps = partialSuccess(answer.headers, answer.body);
      const rejected = Math.min(ps?.rejected ?? 0, p.items.length);
      this.context.stats.sent += p.items.length - rejected;
      this.context.stats.packets++;
      this.context.stats.bytes += p.body.length;
      if (rejected > 0) {
        this.lose(rejected, 'partial_success', p.tally, {
          code: 'MD_ERR_SINK_PARTIAL_SUCCESS',
          level: 'error',
          fields: { rejected, points: p.items.length, errorMessage: ps!.message.slice(0, LOGGED_CHARS), url: this.url },
          message: `OTLP receiver rejected ${rejected} of ${p.items.length} data point(s) (partial success); they are dropped.`,
        });
      } else if (ps !== undefined) {
        // rejected_data_points 0 with a message: the spec's way to pass on a warning.
        this.warnLog.maybe((suppressed) => this.context.logger.warn({ errorMessage: ps.message.slice(0, LOGGED_CHARS), url: this.url, suppressed }, 'OTLP receiver accepted a request with a warning.'));
      }
    }
    if (out.kind === 'too_large' && p.items.length === 1) {
      const pt = p.items[0]!;
      return {
        kind: 'too_large',
        log: { code: 'MD_ERR_SINK_PAYLOAD_TOO_LARGE', level: 'error', fields: { metric: pt.metric, kind: KIND_NAMES[kindOf(pt, this.opts.histogram)], bytes: p.body.length, url: this.url }, message: 'OTLP receiver refused a request of a single data point as too large (413); dropped.' },
      };
    }
    return out;
  }

  /** Bytes and requests held for retry, for tests and the admin view. */
  get buffered(): { bytes: number; payloads: number } {
    return { bytes: this.delivery.bufferedBytes, payloads: this.delivery.bufferedPayloads };
  }

  /**
   * Finishes exports in progress, then retries every buffered request (ignoring the backoff) until
   * `deadlineMs`; what is still undelivered is counted as `shutdown_unsent` and logged. Idempotent.
   */
  shutdown(deadlineMs: number): Promise<void> {
    this.shutdownPromise ??= this.transport.closeAfter(deadlineMs, this.delivery.shutdown(deadlineMs, this.inflight.settled()));
    return this.shutdownPromise;
  }
}
