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
  KEPT_ON_DISK_REASONS,
  RateLimitedLog,
  InFlightExports,
  unexpectedExportError,
  windowResult,
  addLoss,
  Slicer,
  type BatchDelivery,
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
/** The window's delivery records and where a request's points are in the window, when it is on disk. */
interface Ledger {
  readonly delivery: BatchDelivery;
  /** Series in the window: item numbers below are series, the rest sketches. */
  readonly ns: number;
}

/** Reports window item numbers (series first, then sketches) to `report`, split by kind. */
function byKind(ns: number, idx: ArrayLike<number>, from: number, to: number, report: (kind: 'series' | 'sketches', indices: number[]) => void): void {
  const series: number[] = [];
  const sketches: number[] = [];
  for (let i = from; i < to; i++) {
    const n = idx[i]!;
    if (n < ns) series.push(n);
    else sketches.push(n - ns);
  }
  if (series.length > 0) report('series', series);
  if (sketches.length > 0) report('sketches', sketches);
}

/** One request: its window items, one data point each (kept to split it), and its encoded, compressed body. */
interface Payload {
  readonly items: readonly Item[];
  readonly body: Buffer;
  readonly dataMs: number;
  /** The export it came from, for points a partial success refuses. */
  readonly tally: LossTally | undefined;
  /** With `--data-dir`: the window's ledger, and each item's number in the window (parallel to `items`). */
  readonly ledger: Ledger | undefined;
  readonly idx: Uint32Array | undefined;
  /** Set once the request's items were reported to the ledger (delivered, lost or kept). */
  reported: boolean;
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
  /** Reports per-point delivery, so a window on disk is replayed without what the receiver already accepted. */
  readonly tracksDelivery = true;

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
        onLost: (p, n) => {
          this.context.stats.failed += n;
          this.report(p, 'lost');
        },
        keep: (p, reason) => {
          // Points are deltas, each with its window's interval: exporting the window again adds nothing twice.
          if (p.ledger === undefined || !KEPT_ON_DISK_REASONS.has(reason)) return false;
          // On disk and exported again later: not received yet, as far as the counters go.
          this.context.stats.received -= p.items.length;
          this.report(p, 'kept');
          return true;
        },
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
  async export(batch: MetricBatch, delivery?: BatchDelivery): Promise<ExportResult> {
    return this.inflight.track(this.runExport(batch, delivery));
  }

  private async runExport(batch: MetricBatch, delivery: BatchDelivery | undefined): Promise<ExportResult> {
    const tally: LossTally = { lost: 0, reasons: new Set() };
    this.ignore(batch, delivery);
    try {
      const ns = batch.series.length;
      const ledger: Ledger | undefined = delivery === undefined ? undefined : { delivery, ns };
      // A replay sends only what the receiver has not acknowledged: `todo` holds those item numbers.
      let todo: Uint32Array | undefined;
      if (delivery?.replay === true) {
        const left: number[] = [];
        for (let i = 0; i < ns; i++) if (!delivery.done('series', i)) left.push(i);
        for (let i = 0; i < batch.sketches.length; i++) if (!delivery.done('sketches', i)) left.push(ns + i);
        todo = Uint32Array.from(left);
      }
      const total = todo?.length ?? ns + batch.sketches.length;
      const at = (n: number): Item => (n < ns ? batch.series[n]! : batch.sketches[n - ns]!);
      const item = todo === undefined ? at : (i: number): Item => at(todo[i]!);
      const numberOf = todo === undefined ? undefined : (i: number): number => todo[i]!;
      if (this.delivery.final) {
        if (ledger !== undefined) {
          // On disk: the next start sends it; nothing is lost.
          const all = todo ?? Uint32Array.from({ length: total }, (_, i) => i);
          byKind(ns, all, 0, all.length, (kind, indices) => delivery!.kept(kind, indices.length));
        } else {
          this.context.stats.received += total;
          this.lose(total, 'shutdown_unsent', tally);
        }
      } else {
        const step = this.opts.maxPointsPerRequest;
        let next = 0;
        // Each worker takes the next range before its first await, so no item is sent twice.
        const worker = async (): Promise<void> => {
          while (next < total) {
            const from = next;
            const to = (next = Math.min(total, next + step));
            const p = await this.build(item, from, to, batch.windowStartMs, tally, ledger, numberOf);
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
  private ignore(batch: MetricBatch, delivery: BatchDelivery | undefined): void {
    const n = batch.events.length + batch.serviceChecks.length;
    if (n === 0) return;
    if (delivery !== undefined) {
      // Nothing to send for them: settled at once, or their window would never leave the disk.
      delivery.delivered('events', Array.from({ length: batch.events.length }, (_, i) => i));
      delivery.delivered('serviceChecks', Array.from({ length: batch.serviceChecks.length }, (_, i) => i));
      if (delivery.replay) return; // counted and noted at the first export
    }
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
  private async build(
    item: (i: number) => Item,
    from: number,
    to: number,
    dataMs: number,
    tally: LossTally | undefined,
    ledger?: Ledger,
    numberOf: (i: number) => number = (i) => i,
  ): Promise<Payload | undefined> {
    const { mapper, opts } = this;
    // The planner reads items in order and reports an invalid one right after reading it.
    let current = 0;
    const bad: number[] = [];
    const read = ledger === undefined ? item : (i: number): Item => item((current = i));
    const invalid = (what: Item) => {
      if (ledger !== undefined) bad.push(numberOf(current));
      this.invalid(what, tally);
    };
    let idx: Uint32Array | undefined;
    if (ledger !== undefined) {
      idx = new Uint32Array(to - from);
      for (let i = from; i < to; i++) idx[i - from] = numberOf(i);
    }
    const { items, raw } = await this.slicer.run(
      (function* () {
        const plan = yield* mapper.plan(read, from, to, invalid);
        return { items: plan.items, raw: plan.items.length === 0 ? undefined : yield* (opts.protocol === 'http/json' ? encodeJson(plan) : encodeProtobuf(plan)) };
      })(),
    );
    if (ledger !== undefined && bad.length > 0) {
      // Dropped for good (counted above): recorded as done, so no later export drops and counts them again.
      byKind(ledger.ns, bad, 0, bad.length, (kind, indices) => ledger.delivery.delivered(kind, indices));
      const lostSet = new Set(bad);
      idx = idx!.filter((n) => !lostSet.has(n));
    }
    if (raw === undefined) return undefined;
    const body = opts.compression === 'gzip' ? await gzipAsync(raw) : raw;
    return { items, body, dataMs, tally, ledger, idx, reported: false };
  }

  /** Reports every point of `p` to its window's ledger (once): its window leaves the disk once all are. */
  private report(p: Payload, how: 'delivered' | 'lost' | 'kept'): void {
    const { ledger, idx } = p;
    if (ledger === undefined || idx === undefined || p.reported) return;
    p.reported = true;
    const d = ledger.delivery;
    if (how === 'delivered') byKind(ledger.ns, idx, 0, idx.length, (kind, indices) => d.delivered(kind, indices));
    else byKind(ledger.ns, idx, 0, idx.length, (kind, indices) => (how === 'kept' ? d.kept(kind, indices.length) : d.lost(kind, indices.length)));
  }

  /** The policy's split on 413: two halves, each encoded anew. */
  private async split(p: Payload, tally: LossTally | undefined): Promise<readonly Payload[]> {
    const half = async (from: number, to: number): Promise<Payload> => {
      const idx = p.idx;
      const b = await this.build((i) => p.items[i]!, from, to, p.dataMs, tally ?? p.tally, p.ledger, idx === undefined ? undefined : (i) => idx[i]!);
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
      // A partial success says how many points were refused, not which: the whole request is done (the
      // refused ones are counted below), so no later export of the window can send an accepted point twice.
      this.report(p, 'delivered');
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
