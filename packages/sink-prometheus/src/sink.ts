/**
 * The Prometheus scrape sink: each closed window updates the in-memory state (cheaply, in slices),
 * and an HTTP listener renders that state on `GET /metrics` for a Prometheus server to scrape.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream';
import { createGzip } from 'node:zlib';
import {
  MdError,
  SUCCESS,
  batchItemCounts,
  Slicer,
  longestSlice,
  type BatchDelivery,
  type ComponentContext,
  type ComponentStats,
  type ExportResult,
  type LossTally,
  type MetricBatch,
  type Sink,
  type SliceFigures,
} from '@metrics-distributor/core';
import { DONE, WindowLedger } from './ledger.js';
import { RemoteWriter, type RemoteWriteOptions } from './remote-write.js';
import { CONTENT_TYPES, negotiate, render, renderChunks, type ExpositionFormat, type RenderOptions } from './render.js';
import { ExpositionState } from './state.js';

/** The client libraries' default histogram buckets (client_golang `DefBuckets`), in seconds. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

/** statsd_exporter's default summary quantiles (its `summary_options` default objectives). */
export const DEFAULT_QUANTILES: readonly number[] = Object.freeze([0.5, 0.9, 0.99]);

/** How timers, histograms and distributions are exposed: statsd_exporter's `observer_type`. */
export type ObserverType = 'histogram' | 'summary';

/** Options of the {@link PrometheusSink}. Durations are milliseconds. */
export interface PrometheusSinkOptions {
  /** Address to listen on. Default `127.0.0.1`; `0.0.0.0` or `::` to be scraped from elsewhere. */
  listenHost?: string;
  /** Port to listen on; 0 picks a free one (see {@link PrometheusSink.address}). Default 9102, statsd_exporter's. */
  listenPort?: number;
  /** Path of the exposition. Default `/metrics`. */
  path?: string;
  /** A series not updated for this long disappears. Default 300000 (5 min), as `--prometheus-ttl`. */
  ttlMs?: number;
  /** Series kept at most (a histogram counts once); new ones beyond are dropped as `max_series`. Default 200000. */
  maxSeries?: number;
  /**
   * Histogram bucket upper bounds for distributions, ascending, in the unit of the values after
   * `sketchScale` (`+Inf` is always added). Default {@link DEFAULT_BUCKETS}, which are seconds.
   */
  buckets?: readonly number[];
  /** Factor applied to distribution values and sums before bucketing: 0.001 exposes milliseconds as seconds. Default 1. */
  sketchScale?: number;
  /**
   * `ms` timers, `h` histograms and `d` distributions as Prometheus histograms (default) or summaries
   * (each window's quantiles from its sketch, cumulative `_sum`/`_count`), as statsd_exporter's `observer_type`.
   */
  observerType?: ObserverType;
  /** Quantiles summaries expose, each in (0, 1), ascending. Default {@link DEFAULT_QUANTILES}. */
  quantiles?: readonly number[];
  /** Serve the scrape endpoint. Default true; false with `remoteWrite` for remote write alone. */
  scrape?: boolean;
  /** Also send every window to a remote-write receiver (see {@link RemoteWriteOptions}). */
  remoteWrite?: RemoteWriteOptions;
  /** Items applied per look at the clock while exporting (a turn every 5 ms). Default 128. */
  sliceCheckEvery?: number;
  /** Series rendered at most between two event-loop turns during a scrape (a turn also comes every 5 ms). Default 2000; 0 renders in one go. */
  renderYieldEvery?: number;
}

/** What the sink needs from its host process. */
export interface PrometheusSinkDeps {
  /** The `sink-prometheus` context (`sinkContext(root, 'prometheus')`): logger, stats and drops. */
  context: ComponentContext<'sink'>;
  /** Clock for the TTL, injectable for tests. Default `Date.now`. */
  now?: () => number;
  /** Where the remote-write retry path counts `received`/`sent`/`failed` (e.g. `sink-prometheus-retry`). */
  retryStats?: ComponentStats;
}

function positive(name: string, v: number | undefined, def: number, allowZero = false): number {
  const x = v ?? def;
  if (!Number.isFinite(x) || x < 0 || (!allowZero && x === 0)) throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus ${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(v)}`);
  return x;
}

/** Milliseconds to 3 decimals, as self-metric gauges show durations. */
function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Items of a batch this sink takes: series, distributions and timer/histogram sketches. */
function itemsOf(batch: MetricBatch): number {
  return batch.series.length + batch.sketches.length + (batch.histogramSketches?.length ?? 0);
}

/** A window the shut-down sink will not send: its items not yet delivered stay on disk for the next start. */
function keepUndone(batch: MetricBatch, delivery: BatchDelivery): void {
  for (const [kind, n] of batchItemCounts(batch)) {
    let left = 0;
    for (let i = 0; i < n; i++) if (!delivery.replay || !delivery.done(kind, i)) left++;
    if (left > 0) delivery.kept(kind, left);
  }
}

/** Checks bucket bounds: finite, strictly ascending, at least one. */
export function validateBuckets(b: readonly number[]): readonly number[] {
  if (b.length === 0) throw new MdError('MD_ERR_CONFIG_INVALID', 'prometheus buckets must not be empty');
  for (let i = 0; i < b.length; i++) {
    if (!Number.isFinite(b[i]!)) throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus bucket ${String(b[i])} is not finite (+Inf is always added)`);
    if (i > 0 && !(b[i]! > b[i - 1]!)) throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus buckets must be strictly ascending: ${b[i - 1]} then ${b[i]}`);
  }
  return Object.freeze([...b]);
}

/** Checks summary quantiles: at least one, each strictly inside (0, 1), strictly ascending. */
export function validateQuantiles(q: readonly number[]): readonly number[] {
  if (q.length === 0) throw new MdError('MD_ERR_CONFIG_INVALID', 'prometheus quantiles must not be empty');
  for (let i = 0; i < q.length; i++) {
    if (!(q[i]! > 0 && q[i]! < 1)) throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus quantile ${String(q[i])} must be strictly between 0 and 1`);
    if (i > 0 && !(q[i]! > q[i - 1]!)) throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus quantiles must be strictly ascending: ${q[i - 1]} then ${q[i]}`);
  }
  return Object.freeze([...q]);
}

/** A sink exposing every window's metrics on an HTTP endpoint in the Prometheus formats (scrape mode). */
export class PrometheusSink implements Sink {
  /** Component id: the context is `sink-prometheus`. */
  readonly name = 'prometheus';
  private readonly state: ExpositionState;
  private readonly context: ComponentContext<'sink'>;
  private readonly now: () => number;
  private readonly host: string;
  private readonly port: number;
  private readonly path: string;
  private readonly buckets: readonly number[];
  private readonly ttlMs: number;
  private readonly sketchScale: number;
  private readonly sliceCheckEvery: number;
  private readonly renderYieldEvery: number;
  private readonly summaries: boolean;
  private readonly quantiles: readonly number[];
  private server: Server | undefined;
  private readonly scrape: boolean;
  private readonly remote: RemoteWriter | undefined;
  private closed = false;
  /** Exports run one after the other, so a batch is never interleaved with the next. */
  private tail: Promise<unknown> = Promise.resolve();
  private lastSweepMs: number;

  constructor(opts: PrometheusSinkOptions, deps: PrometheusSinkDeps) {
    this.context = deps.context;
    this.now = deps.now ?? Date.now;
    this.host = opts.listenHost ?? '127.0.0.1';
    this.port = opts.listenPort ?? 9102;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus listenPort must be 0..65535, got ${this.port}`);
    this.path = opts.path ?? '/metrics';
    if (!this.path.startsWith('/')) throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus path must start with /, got ${this.path}`);
    this.ttlMs = positive('ttlMs', opts.ttlMs, 300_000);
    this.buckets = validateBuckets(opts.buckets ?? DEFAULT_BUCKETS);
    this.sliceCheckEvery = Math.max(1, Math.trunc(positive('sliceCheckEvery', opts.sliceCheckEvery, 128)));
    this.renderYieldEvery = Math.trunc(positive('renderYieldEvery', opts.renderYieldEvery, 2000, true));
    const observer = opts.observerType ?? 'histogram';
    if (observer !== 'histogram' && observer !== 'summary') throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus observerType must be histogram or summary, got ${String(observer)}`);
    this.summaries = observer === 'summary';
    this.quantiles = validateQuantiles(opts.quantiles ?? DEFAULT_QUANTILES);
    this.state = new ExpositionState(
      {
        ttlMs: this.ttlMs,
        maxSeries: Math.trunc(positive('maxSeries', opts.maxSeries, 200_000)),
        buckets: this.buckets,
        sketchScale: (this.sketchScale = positive('sketchScale', opts.sketchScale, 1)),
        trackTouched: opts.remoteWrite !== undefined,
        quantiles: this.quantiles,
      },
      this.context,
    );
    this.scrape = opts.scrape ?? true;
    if (!this.scrape && opts.remoteWrite === undefined) throw new MdError('MD_ERR_CONFIG_INVALID', 'prometheus sink with neither a scrape endpoint nor remote write');
    this.remote = opts.remoteWrite === undefined ? undefined : new RemoteWriter(opts.remoteWrite, { buckets: this.buckets, quantiles: this.quantiles }, this.context, deps.retryStats);
    this.lastSweepMs = this.now();
  }

  /** Starts listening; rejects with `MD_ERR_SINK_LISTEN` when the address cannot be bound. Idempotent. */
  async start(): Promise<void> {
    if (this.server !== undefined || !this.scrape) return;
    const server = createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 65_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        this.server = undefined;
        reject(new MdError('MD_ERR_SINK_LISTEN', `prometheus sink cannot listen on ${this.host}:${this.port}: ${err.message}`, { cause: err }));
      };
      server.once('error', onError);
      server.listen(this.port, this.host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.context.logger.error({ err }, 'Prometheus listener error.'));
        resolve();
      });
    });
  }

  /** `host:port` actually bound (IPv6 in brackets), or undefined before {@link start}. */
  address(): string | undefined {
    const a = this.server?.address() as AddressInfo | null | undefined;
    if (a === undefined || a === null) return undefined;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  /** The scrape URL (`http://host:port/metrics`) once listening, for the server's start-up line. */
  addresses(): readonly string[] {
    const a = this.address();
    return a === undefined ? [] : [`http://${a}${this.path}`];
  }

  /** The bound port, or undefined before {@link start}. */
  get boundPort(): number | undefined {
    const a = this.server?.address() as AddressInfo | null | undefined;
    return a === undefined || a === null ? undefined : a.port;
  }

  /**
   * With remote write, items are reported per request on the window's {@link BatchDelivery}
   * (`--data-dir`), so a replay skips what was delivered. Scrape alone settles a window once applied.
   */
  get tracksDelivery(): boolean {
    return this.remote !== undefined;
  }

  /** Live series in the state. */
  get seriesCount(): number {
    return this.state.size;
  }

  /**
   * Applies a window to the state (and sends it with remote write). Never fails once started; after
   * shutdown the window is counted as `closed`, or left on disk for the next start when it is there.
   */
  export(batch: MetricBatch, delivery?: BatchDelivery): Promise<ExportResult> {
    const run = this.tail.then(() => this.apply(batch, delivery)).catch((err: unknown): ExportResult => {
      // A bug, not an expected failure: the window is lost for this sink, the chain must go on.
      const items = itemsOf(batch);
      this.context.drop('internal_error', items, { code: 'MD_ERR_SINK_EXPORT', level: 'error', cause: err });
      return { code: 'failure', error: new MdError('MD_ERR_SINK_EXPORT', undefined, { cause: err }) };
    });
    this.tail = run;
    return run;
  }

  private async apply(batch: MetricBatch, delivery: BatchDelivery | undefined): Promise<ExportResult> {
    const items = itemsOf(batch);
    // Delivery is recorded only for remote write: scrape state has no receiver to confirm anything.
    const tracked = this.remote !== undefined && delivery !== undefined ? delivery : undefined;
    if (this.closed) {
      if (tracked !== undefined) keepUndone(batch, tracked);
      else this.context.drop('closed', items);
      return { code: 'failure', error: new MdError('MD_ERR_SINK_EXPORT', 'prometheus sink is shut down') };
    }
    this.context.stats.received += items;
    const clock = new Slicer({ checkEvery: this.sliceCheckEvery });
    let nowMs = this.now();
    // Without scrapes nothing else removes expired series, so exports sweep now and then.
    if (nowMs - this.lastSweepMs >= Math.min(this.ttlMs, 60_000)) {
      this.lastSweepMs = nowMs;
      this.state.sweep(nowMs);
    }
    // With their sketches in the batch, h/ms contexts are histograms: their aggregate gauges are left out.
    const skipAggregates = batch.histogramSketches !== undefined;
    const ledger = tracked === undefined ? undefined : new WindowLedger(batch, tracked, skipAggregates);
    const state = this.state;
    state.beginExport(ledger !== undefined);
    const series = batch.series;
    for (let i = 0; i < series.length; i++) {
      const s = series[i]!;
      if (ledger === undefined) {
        if (!skipAggregates || s.aggregateOf === undefined) state.applySeries(s, nowMs);
      } else if (ledger.series(i, s)) {
        state.unit = i;
        state.applySeries(s, nowMs);
      }
      if (clock.tick()) {
        await clock.pause();
        nowMs = this.now();
      }
    }
    const observe = this.summaries ? state.applySummary.bind(state) : state.applySketch.bind(state);
    const sketches = batch.sketches;
    for (let i = 0; i < sketches.length; i++) {
      const s = sketches[i]!;
      // On a replay, what was delivered is neither applied nor sent: the state after a restart is empty.
      if (ledger === undefined || (state.unit = ledger.sketch(i)) !== DONE) observe(s.metric, s.host, s.tags, s.sketch, nowMs);
      if (clock.tick()) {
        await clock.pause();
        nowMs = this.now();
      }
    }
    // Timers and histograms as observers: ms in seconds, as statsd_exporter; h in the unit sent.
    const hs = batch.histogramSketches ?? [];
    for (let j = 0; j < hs.length; j++) {
      const s = hs[j]!;
      if (ledger === undefined || (state.unit = ledger.histogram(j, s)) !== DONE) observe(s.metric, s.host, s.tags, s.sketch, nowMs, s.sourceType === 'ms' ? 0.001 : 1);
      if (clock.tick()) {
        await clock.pause();
        nowMs = this.now();
      }
    }
    this.context.stats.gauge('prometheus_series', this.state.size);
    const slices = clock.finish();
    if (this.remote === undefined) {
      this.sliceGauges('export', slices);
      this.context.stats.sent += items;
      return SUCCESS;
    }
    // The window's series go out with their cumulative values; what the receiver refuses is counted there.
    const tally: LossTally = { lost: 0, reasons: new Set() };
    const touched = state.takeTouched();
    if (ledger !== undefined) {
      const { units, more } = state.takeUnits();
      ledger.applied(units, more);
    }
    this.sliceGauges('export', longestSlice(slices, await this.remote.write(touched, batch.windowStartMs, tally, ledger)));
    this.context.stats.sent += items;
    if (tally.lost === 0) return SUCCESS;
    return { code: 'failure', error: new MdError('MD_ERR_SINK_EXPORT', `prometheus remote write: ${tally.lost} sample(s) of the window dropped (${[...tally.reasons].join(', ')})`) };
  }

  /** The longest synchronous slice of the last export (with its remote write) or scrape, as self-metric gauges. */
  private sliceGauges(of: 'export' | 'scrape', slice: SliceFigures): void {
    this.context.stats.gauge(`prometheus_${of}_longest_slice_ms`, round3(slice.wallMs));
    this.context.stats.gauge(`prometheus_${of}_longest_slice_cpu_ms`, round3(slice.cpuMs));
  }

  /** Renders the exposition as a scrape would get it, without HTTP (tests, benchmarks, embedders). */
  renderText(format: ExpositionFormat = 'text'): Promise<string> {
    return render(this.state, format, this.renderOptions());
  }

  /** Sweeps expired series (a scrape is the natural time) and fixes the clock for one render. */
  private renderOptions(): RenderOptions {
    const nowMs = this.now();
    this.state.sweep(nowMs);
    this.lastSweepMs = nowMs;
    return {
      buckets: this.buckets,
      nowMs,
      yieldEvery: this.renderYieldEvery,
      quantiles: this.quantiles,
      onLongestSlice: (slice) => this.sliceGauges('scrape', slice),
    };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path !== this.path) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`Not found; the metrics are at ${this.path}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('Method not allowed\n');
      return;
    }
    const format = negotiate(req.headers.accept);
    this.context.stats.count(format === 'openmetrics' ? 'scrapes_openmetrics' : 'scrapes_text');
    const headers: Record<string, string> = { 'content-type': CONTENT_TYPES[format], vary: 'Accept, Accept-Encoding' };
    if (req.method === 'HEAD') {
      res.writeHead(200, headers).end();
      return;
    }
    const gz = /\bgzip\b/i.test(req.headers['accept-encoding'] ?? '');
    if (gz) headers['content-encoding'] = 'gzip';
    // A scraper going away shows up as `close`; an error on the response must not become an uncaught one.
    res.on('error', () => undefined);
    res.writeHead(200, headers);
    // zlib's gzip stream compresses on the libuv pool, off the event loop.
    let out: Writable = res;
    if (gz) {
      const zip = createGzip();
      // Errors end up on `res` (destroyed), which is all a scrape needs; the callback only keeps them from throwing.
      pipeline(zip, res, () => undefined);
      out = zip;
    }
    this.stream(renderChunks(this.state, format, this.renderOptions()), out).catch((err: unknown) => {
      // The status line is gone already: a cut-off body is how the scraper learns (its parse fails).
      this.context.logger.error({ err }, 'Prometheus scrape: render failed.');
      res.destroy();
    });
  }

  /** Writes rendered chunks with backpressure, so a slow scraper never makes the sink buffer the whole exposition. */
  private async stream(chunks: AsyncGenerator<string, void, boolean | undefined>, out: Writable): Promise<void> {
    // The render is told when a chunk waited for `drain`, which is where its synchronous slice ended.
    for (let r = await chunks.next(); r.done !== true; ) {
      if (out.destroyed) {
        await chunks.return();
        return;
      }
      let waited = false;
      if (!out.write(r.value)) {
        waited = true;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            out.off('drain', done);
            out.off('close', done);
            resolve();
          };
          out.on('drain', done);
          out.on('close', done);
        });
      }
      r = await chunks.next(waited);
    }
    out.end();
  }

  /** Stops listening (in-flight scrapes may finish until `deadlineMs`) and retries buffered remote writes until then. Idempotent. */
  async shutdown(deadlineMs: number): Promise<void> {
    this.closed = true;
    await Promise.all([this.remote?.shutdown(deadlineMs, this.tail), this.closeListener(deadlineMs)]);
  }

  private async closeListener(deadlineMs: number): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    server.closeIdleConnections();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const wait = Math.max(0, deadlineMs - Date.now());
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        server.closeAllConnections();
        resolve();
      }, wait);
    });
    await Promise.race([closed, late]);
    clearTimeout(timer);
    server.closeAllConnections();
    await closed;
  }
}
