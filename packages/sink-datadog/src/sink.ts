/**
 * The Datadog sink: splits each window into payloads that fit the intake limits, compresses them off
 * the event loop, posts them over a keep-alive undici Pool, and handles every intake answer itself
 * (drop, split, or retry from a byte-bounded buffer) so that core's queue never re-sends a whole window.
 */
import { deflate, gunzip, gzip, inflate } from 'node:zlib';
import { promisify } from 'node:util';
import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import {
  ComponentStats,
  MdError,
  RateLimitedLog,
  SUCCESS,
  type ExportResult,
  type Logger,
  type MetricBatch,
  type Series,
  type ServiceCheck,
  type Sink,
  type SketchSeries,
  type StatsdEvent,
} from '@metrics-distributor/core';
import { DEFAULT_LIMITS, KIND_SPECS, encodeCheck, encodeEvent, sketchIsValid, type PayloadKind, type PayloadLimits } from './encode.js';
import { SketchEncoder } from './proto.js';
import { BufferPool, PayloadWriter, SeriesEncoder, itemBytes, splitPayload } from './writer.js';

const gzipAsync = promisify(gzip);
const deflateAsync = promisify(deflate);
const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

/** Options of the {@link DatadogSink}. Durations are milliseconds, sizes bytes. */
export interface DatadogSinkOptions {
  /** The Datadog API key; sent only in the `DD-API-KEY` header, logged at most as `***` + its last 4 characters. */
  apiKey: string;
  /** Datadog site; the intake is `https://api.<site>`. Default `datadoghq.com`. */
  site?: string;
  /** Base URL overriding the site (proxies, tests); a path is kept as a prefix. */
  url?: string;
  /** Per-request timeout. Default 20000. */
  timeoutMs?: number;
  /** Bytes of payloads held for retry (uncompressed plus compressed size); oldest dropped beyond. Default 16 MiB. */
  retryBufferBytes?: number;
  /** Body compression: `gzip`, or `deflate` (zlib-wrapped, as the agent's zlib). Default `gzip`, as the CLI. */
  compression?: 'gzip' | 'deflate';
  /** Requests in flight at most (also the Pool's connection count). Default 10, as an agent forwarder worker. */
  maxConcurrentRequests?: number;
  /** Check the key with `GET /api/v1/validate` in {@link DatadogSink.start}. Default true. */
  validateKey?: boolean;
  /** First retry delay; doubles per consecutive failure, jittered to [t/2, t]. Default 2000. */
  retryBaseMs?: number;
  /** Longest retry delay. Default 64000. */
  retryMaxMs?: number;
  /**
   * Series and sketches whose window started longer ago than this are dropped from the retry buffer
   * (reason `expired`) instead of being sent: Datadog does not accept points more than one hour in
   * the past. Service checks keep at most 10 minutes, the intake's own limit. Default 3600000.
   */
  retryMaxAgeMs?: number;
  /** Payload limits per kind, for tests or a proxy with smaller limits; default Datadog's ({@link DEFAULT_LIMITS}). */
  limits?: { [K in PayloadKind]?: Partial<PayloadLimits> };
}

/** What the sink needs from its host process. */
export interface DatadogSinkDeps {
  /** Logger (the CLI passes a `component: sink-datadog` child). */
  logger: Logger;
  /** The `sink-datadog` stats core's queue also uses: the sink adds payloads, bytes, drops by reason and retry-buffer gauges. */
  stats: ComponentStats;
  /**
   * Stats for the sink's detail components (`sink-datadog-series`, `sink-datadog-http-5xx`, …; see the
   * README), e.g. `(c) => aggregator.stats.component(c)`. Without it they are kept but not published.
   */
  extraStats?: (component: string) => ComponentStats;
}

/** Outcome of the start-up key check: `unknown` when Datadog could not be asked. */
export type KeyStatus = 'valid' | 'invalid' | 'unknown';

/** The intake refuses service checks more than 10 minutes in the past (`datadog.md` §3.6). */
const CHECKS_MAX_AGE_MS = 10 * 60_000;
/** The events API takes `date_happened` no older than 18 hours (`datadog.md` §3.5). */
const EVENTS_MAX_AGE_MS = 18 * 3_600_000;

/** Retry-After / X-RateLimit-Reset longer than this is treated as this: a misbehaving proxy must not park data for days. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;
/** Compressed bodies aim this far under the limit, so a slightly worse ratio than estimated rarely forces a re-split. */
const COMPRESSED_HEADROOM = 0.9;
/**
 * Encoding yields to the event loop after this much time. Short on purpose: each loop turn reads at most
 * 32 datagrams per UDP socket, so with 200k lines/s arriving, slices of 4 ms let the receive queue grow
 * through the whole flush (and overflow), where 1 ms slices leave ingestion enough turns to keep up.
 */
const SLICE_MS = 1;
/** Items encoded between two looks at the clock: small enough that the slice overshoots by well under a millisecond. */
const SLICE_CHECK_EVERY = 32;
/** Payloads of one export holding a pooled scratch Buffer, not yet compressed, at most: the encoder waits beyond. */
const MAX_POOLED_PAYLOADS = 3;
/** Scratch Buffers kept for reuse: those payloads, the one being written, and one spare. */
const POOLED_BUFFERS = MAX_POOLED_PAYLOADS + 2;
/** Bodies at least this large are compressed one at a time (see `compress`). */
const SERIAL_COMPRESSION_BYTES = 64 * 1024;
/** Response bodies of rejected payloads are logged up to this many characters. */
const LOGGED_BODY_CHARS = 500;
const KINDS: readonly PayloadKind[] = ['series', 'sketches', 'events', 'checks'];
const USER_AGENT = 'metrics-distributor-sink-datadog';

/** One request body: the uncompressed body with its item offsets (kept so it can be split), and the compressed bytes once built. */
interface Payload {
  readonly kind: PayloadKind;
  /** Start of the window the items come from (unix ms): how old the data is, for the intake's age limits. */
  readonly dataMs: number;
  /** The uncompressed body; dropped once compressed when it lives in a pooled scratch Buffer (see `rawOf`). */
  raw: Buffer | undefined;
  /** Offset of each item in the uncompressed body; its length is the item count. */
  readonly starts: Uint32Array;
  /** The pooled Buffer `raw` lives in, until it goes back to the pool. */
  scratch: Buffer | undefined;
  body: Buffer | undefined;
}

/** One kind of a window's items to encode into payloads. */
interface GroupJob<T> {
  readonly kind: PayloadKind;
  /** The window's start: the data's age for the retry buffer's age limit. */
  readonly dataMs: number;
  readonly items: readonly T[];
  readonly encoder: ItemEncoder<T>;
  /** The item's name, for logs about a dropped item. */
  readonly nameOf: (item: T) => string;
}

/**
 * Payloads from the encoder to the senders, so that sending starts while a big window is still being
 * encoded. The encoder waits while `maxPooled` payloads hold a pooled scratch Buffer not yet compressed,
 * which bounds the pool (and the memory of a window's uncompressed bodies) to a few Buffers.
 */
class PayloadQueue {
  private readonly items: (Payload | undefined)[] = [];
  private head = 0;
  private ended = false;
  private pooled = 0;
  private readonly takers: ((p: Payload | undefined) => void)[] = [];
  private readonly putters: (() => void)[] = [];

  constructor(private readonly maxPooled: number) {}

  async put(p: Payload): Promise<void> {
    if (p.scratch !== undefined) {
      while (this.pooled >= this.maxPooled) await new Promise<void>((r) => this.putters.push(r));
      this.pooled++;
    }
    const taker = this.takers.shift();
    if (taker !== undefined) taker(p);
    else this.items.push(p);
  }

  /** Called once per pooled payload when its scratch went back to the pool. */
  released(): void {
    this.pooled--;
    this.putters.shift()?.();
  }

  /** The next payload, or undefined once the queue is ended and empty. */
  take(): Promise<Payload | undefined> {
    if (this.head < this.items.length) {
      const p = this.items[this.head];
      this.items[this.head++] = undefined;
      return Promise.resolve(p);
    }
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((r) => this.takers.push(r));
  }

  end(): void {
    this.ended = true;
    for (const t of this.takers.splice(0)) t(undefined);
  }
}

/** Encodes one item at a time: `encode` sizes it (-1: not encodable), `write` then appends that same item. */
interface ItemEncoder<T> {
  encode(item: T): number;
  write(w: PayloadWriter): void;
}

/** An {@link ItemEncoder} over a function that returns each item as its own Buffer. */
function bufferEncoder<T>(fn: (item: T) => Buffer | undefined): ItemEncoder<T> {
  let last: Buffer | undefined;
  return {
    encode(item) {
      last = fn(item);
      return last === undefined ? -1 : last.length;
    },
    write(w) {
      if (last !== undefined) w.addBytes(last);
    },
  };
}

const count = (p: { readonly starts: Uint32Array }): number => p.starts.length;

/** What one POST came back with. */
type Outcome =
  | { readonly ok: true; readonly status: number }
  | { readonly ok: false; readonly status: number | undefined; readonly retryAfterMs: number | undefined; readonly body: string; readonly error: unknown };

/** Items one export lost for good, so it can report `failure` with the reasons. */
interface Tally {
  lost: number;
  readonly reasons: Set<string>;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** `***` plus the last 4 characters, and only for keys long enough that 4 characters reveal little. */
export function maskKey(key: string): string {
  return key.length >= 16 ? `***${key.slice(-4)}` : '***';
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${err.name} ${code}: ${err.message}` : `${err.name}: ${err.message}`;
  }
  return String(err);
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Wait asked for by `Retry-After` (seconds or HTTP date) or Datadog's `X-RateLimit-Reset` (seconds). */
export function retryAfterMs(h: IncomingHttpHeaders, now = Date.now()): number | undefined {
  const clamp = (ms: number) => Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
  const ra = header(h, 'retry-after')?.trim();
  if (ra !== undefined && ra !== '') {
    const s = Number(ra);
    if (Number.isFinite(s)) return clamp(s * 1000);
    const at = Date.parse(ra);
    if (!Number.isNaN(at)) return clamp(at - now);
  }
  const reset = header(h, 'x-ratelimit-reset')?.trim();
  if (reset !== undefined && reset !== '') {
    const s = Number(reset);
    if (Number.isFinite(s)) return clamp(s * 1000);
  }
  return undefined;
}

async function readLimited(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  // Read to the end so the connection can be reused, but keep only the head.
  for await (const chunk of body) {
    if (n < limit) {
      chunks.push(chunk);
      n += chunk.length;
    }
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, limit);
}

function positive(name: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new MdError('MD_ERR_CONFIG_INVALID', `datadog sink: ${name} must be a number ≥ ${min}, got ${String(v)}`);
  return v;
}

/**
 * Delivers windows to Datadog as the agent would: series to `/api/v2/series` (JSON), distributions to
 * `/api/beta/sketches` (agent protobuf), events to `/api/v1/events`, service checks to `/api/v1/check_run`.
 * `export` never throws and never returns `retryable`: retries happen per payload, inside the sink.
 */
export class DatadogSink implements Sink {
  /** Sink id: core names its queue and stats `sink-datadog` after it. */
  readonly name = 'datadog';
  /** Base URL requests go to, for the start-up log line (holds no secret). */
  readonly baseUrl: string;

  private readonly logger: Logger;
  private readonly stats: ComponentStats;
  private readonly kindStats: Record<PayloadKind, ComponentStats>;
  private readonly statsFor: (component: string) => ComponentStats;
  private readonly retryStats: ComponentStats;
  private readonly pool: Pool;
  private readonly pathPrefix: string;
  private readonly apiKey: string;
  private readonly maskedKey: string;
  private readonly compression: 'gzip' | 'deflate';
  private readonly timeoutMs: number;
  private readonly retryBufferBytes: number;
  private readonly maxConcurrent: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly retryMaxAgeMs: number;
  private readonly validateOnStart: boolean;
  private readonly limits: Record<PayloadKind, PayloadLimits>;
  /** Compressed/uncompressed ratio per kind, learnt from large bodies; starts pessimistic-ish. */
  private readonly ratio: Record<PayloadKind, number> = { series: 0.5, sketches: 0.7, events: 0.7, checks: 0.5 };
  /** Scratch Buffers for bodies, reused across windows (see {@link BufferPool}). */
  private readonly scratchPool = new BufferPool(POOLED_BUFFERS);
  /** Kept for the sink's lifetime: its cache of identity JSON is what makes later windows cheap. */
  private readonly seriesEncoder = new SeriesEncoder();
  private readonly sketchEncoder = new SketchEncoder();
  private readonly itemEncoders: {
    readonly sketches: ItemEncoder<SketchSeries>;
    readonly events: ItemEncoder<StatsdEvent>;
    readonly checks: ItemEncoder<ServiceCheck>;
  } = {
    sketches: {
      encode: (s) => (sketchIsValid(s) ? this.sketchEncoder.size(s) : -1),
      write: (w) => w.addWith(this.sketchEncoder.bytes, this.sketchEncoder.fill),
    },
    events: bufferEncoder(encodeEvent),
    checks: bufferEncoder(encodeCheck),
  };

  /** Settles when the compression in progress (and every one queued before it) is done. */
  private compressing: Promise<void> = Promise.resolve();
  private active = 0;
  private readonly slotWaiters: (() => void)[] = [];

  private readonly retry: Payload[] = [];
  private retryBytes = 0;
  private errorCount = 0;
  private blockedUntil = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;

  private readonly exports = new Set<Promise<ExportResult>>();
  private readonly inflight = new Set<AbortController>();
  private closing = false;
  /** After shutdown: anything that would be buffered is counted as lost at once. */
  private final = false;
  private deadlineMs = Number.POSITIVE_INFINITY;
  private shutdownPromise: Promise<void> | undefined;

  private readonly badRequestLog = new RateLimitedLog(10_000);
  private readonly forbiddenLog = new RateLimitedLog(60_000);
  private readonly tooLargeLog = new RateLimitedLog(60_000);
  private readonly invalidLog = new RateLimitedLog(60_000);
  private readonly retryLog = new RateLimitedLog(60_000);
  private readonly bufferFullLog = new RateLimitedLog(60_000);
  private readonly expiredLog = new RateLimitedLog(60_000);

  constructor(opts: DatadogSinkOptions, deps: DatadogSinkDeps) {
    if (typeof opts.apiKey !== 'string' || opts.apiKey.length === 0) {
      throw new MdError('MD_ERR_CONFIG_INVALID', 'datadog sink: an API key is required (--datadog-api-key or DD_API_KEY)');
    }
    // A key undici refuses as a header value would fail every request and be retried forever.
    if (!/^[\x21-\x7e]+$/.test(opts.apiKey)) throw new MdError('MD_ERR_CONFIG_INVALID', 'datadog sink: the API key holds characters not allowed in an HTTP header');
    const site = opts.site ?? 'datadoghq.com';
    if (opts.url === undefined && !/^[a-z0-9.-]+$/i.test(site)) throw new MdError('MD_ERR_CONFIG_INVALID', `datadog sink: invalid site '${site}' (e.g. datadoghq.eu)`);
    let url: URL;
    try {
      url = new URL(opts.url ?? `https://api.${site}`);
    } catch (err) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `datadog sink: invalid URL '${opts.url ?? ''}'`, { cause: err });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MdError('MD_ERR_CONFIG_INVALID', `datadog sink: URL must be http(s), got '${url.protocol}'`);
    if (opts.compression !== undefined && opts.compression !== 'gzip' && opts.compression !== 'deflate') {
      throw new MdError('MD_ERR_CONFIG_INVALID', `datadog sink: compression must be gzip or deflate, got '${String(opts.compression)}'`);
    }
    this.apiKey = opts.apiKey;
    this.maskedKey = maskKey(opts.apiKey);
    this.compression = opts.compression ?? 'gzip';
    this.timeoutMs = positive('timeoutMs', opts.timeoutMs, 20_000);
    this.retryBufferBytes = positive('retryBufferBytes', opts.retryBufferBytes, 16 * 1024 * 1024, 0);
    this.maxConcurrent = Math.floor(positive('maxConcurrentRequests', opts.maxConcurrentRequests, 10));
    this.retryBaseMs = positive('retryBaseMs', opts.retryBaseMs, 2_000);
    this.retryMaxMs = Math.max(this.retryBaseMs, positive('retryMaxMs', opts.retryMaxMs, 64_000));
    this.retryMaxAgeMs = positive('retryMaxAgeMs', opts.retryMaxAgeMs, 3_600_000);
    this.validateOnStart = opts.validateKey ?? true;
    this.limits = {} as Record<PayloadKind, PayloadLimits>;
    for (const k of KINDS) this.limits[k] = { ...DEFAULT_LIMITS[k], ...opts.limits?.[k] };

    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    this.baseUrl = `${url.origin}${this.pathPrefix}`;
    this.pool = new Pool(url.origin, {
      connections: this.maxConcurrent,
      keepAliveTimeout: 15_000,
      keepAliveMaxTimeout: 60_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: { timeout: this.timeoutMs },
    });

    this.logger = deps.logger;
    this.stats = deps.stats;
    const own = new Map<string, ComponentStats>();
    this.statsFor =
      deps.extraStats ??
      ((c: string) => {
        let s = own.get(c);
        if (s === undefined) own.set(c, (s = new ComponentStats(c)));
        return s;
      });
    this.kindStats = {
      series: this.statsFor('sink-datadog-series'),
      sketches: this.statsFor('sink-datadog-sketches'),
      events: this.statsFor('sink-datadog-events'),
      checks: this.statsFor('sink-datadog-checks'),
    };
    this.retryStats = this.statsFor('sink-datadog-retry');
    this.updateRetryGauges();
  }

  // ------------------------------------------------------------------ start-up

  /**
   * Runs the start-up key check unless `validateKey: false`. Never rejects; the server keeps running
   * whatever the answer (fail open, as the agent does), so callers need not await it.
   */
  async start(): Promise<KeyStatus | undefined> {
    if (!this.validateOnStart) return undefined;
    return this.validateKey();
  }

  /** `GET /api/v1/validate`: 2xx valid; 403 loud error; anything else or no answer a warning. Never rejects. */
  async validateKey(): Promise<KeyStatus> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new MdError('MD_ERR_SINK_TIMEOUT', `no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    this.inflight.add(ac);
    try {
      const res = await this.pool.request({
        path: `${this.pathPrefix}/api/v1/validate`,
        method: 'GET',
        headers: { 'dd-api-key': this.apiKey, 'user-agent': USER_AGENT },
        signal: ac.signal,
      });
      const body = await readLimited(res.body, LOGGED_BODY_CHARS).catch(() => '');
      if (res.statusCode >= 200 && res.statusCode < 300) {
        this.logger.info({ key: this.maskedKey, url: this.baseUrl }, 'Datadog API key is valid.');
        return 'valid';
      }
      if (res.statusCode === 403) {
        this.logger.error(
          { err: new MdError('MD_ERR_SINK_AUTH', 'invalid API key'), status: 403, key: this.maskedKey, url: this.baseUrl },
          'Datadog says the API key is invalid (403 on /api/v1/validate): invalid API key. Metrics will be rejected until --datadog-api-key / DD_API_KEY is fixed; continuing.',
        );
        return 'invalid';
      }
      this.logger.warn({ status: res.statusCode, body, key: this.maskedKey, url: this.baseUrl }, 'Could not validate the Datadog API key; continuing.');
      return 'unknown';
    } catch (err) {
      this.logger.warn({ error: describe(err), url: this.baseUrl }, 'Could not reach Datadog to validate the API key; continuing.');
      return 'unknown';
    } finally {
      clearTimeout(timer);
      this.inflight.delete(ac);
    }
  }

  // ------------------------------------------------------------------ export

  /**
   * Splits the window into payloads and sends them. Resolves `success` once every payload was accepted or
   * parked for retry, `failure` when some items were dropped for good (each counted by reason). Never throws.
   */
  async export(batch: MetricBatch): Promise<ExportResult> {
    const job = this.runExport(batch);
    this.exports.add(job);
    try {
      return await job;
    } finally {
      this.exports.delete(job);
    }
  }

  private async runExport(batch: MetricBatch): Promise<ExportResult> {
    const tally: Tally = { lost: 0, reasons: new Set() };
    if (this.final) {
      const counts: [PayloadKind, number][] = [
        ['series', batch.series.length],
        ['sketches', batch.sketches.length],
        ['events', batch.events.length],
        ['checks', batch.serviceChecks.length],
      ];
      for (const [kind, n] of counts) {
        this.kindStats[kind].received += n;
        this.lose(kind, n, 'shutdown_unsent', tally);
      }
    } else {
      try {
        const queue = new PayloadQueue(MAX_POOLED_PAYLOADS);
        const worker = async (): Promise<void> => {
          for (let p = await queue.take(); p !== undefined; p = await queue.take()) {
            const pooled = p.scratch !== undefined;
            await this.process(p, tally, pooled ? () => queue.released() : undefined);
          }
        };
        const workers = Array.from({ length: this.maxConcurrent }, worker);
        try {
          const series = this.seriesEncoder;
          const seriesItems: ItemEncoder<Series> = {
            encode: (s) => (series.encode(s) ? series.bytes : -1),
            write: (w) => w.addText(series.text, series.bytes),
          };
          const dataMs = batch.windowStartMs;
          await this.group({ kind: 'series', dataMs, items: batch.series, encoder: seriesItems, nameOf: (s) => s.metric }, queue, tally);
          await this.group({ kind: 'sketches', dataMs, items: batch.sketches, encoder: this.itemEncoders.sketches, nameOf: (s) => s.metric }, queue, tally);
          await this.group({ kind: 'events', dataMs, items: batch.events, encoder: this.itemEncoders.events, nameOf: (e) => e.title }, queue, tally);
          await this.group({ kind: 'checks', dataMs, items: batch.serviceChecks, encoder: this.itemEncoders.checks, nameOf: (c) => c.name }, queue, tally);
        } finally {
          queue.end();
          await Promise.all(workers);
        }
      } catch (err) {
        // Only a bug gets here (process() catches per payload); the window is then partly unaccounted for.
        this.logger.error({ err }, 'Datadog sink: unexpected error while exporting a window.');
        return { code: 'failure', error: new MdError('MD_ERR_SINK_EXPORT', 'datadog sink: unexpected error', { cause: err }) };
      }
    }
    if (tally.lost === 0) return SUCCESS;
    return {
      code: 'failure',
      error: new MdError('MD_ERR_SINK_EXPORT', `datadog sink: ${tally.lost} item(s) of the window dropped (${[...tally.reasons].join(', ')})`),
    };
  }

  /** Encodes items one by one and groups them into payloads under the limits, yielding to the loop regularly. */
  private async group<T>(job: GroupJob<T>, out: PayloadQueue, tally: Tally): Promise<void> {
    if (job.items.length === 0) return;
    this.kindStats[job.kind].received += job.items.length;
    const writer = new PayloadWriter(job.kind, this.scratchPool);
    try {
      await this.fill(job, out, tally, writer);
    } finally {
      writer.dispose();
    }
  }

  private async fill<T>({ kind, dataMs, items, encoder, nameOf }: GroupJob<T>, out: PayloadQueue, tally: Tally, writer: PayloadWriter): Promise<void> {
    const limits = this.limits[kind];
    const spec = KIND_SPECS[kind];
    const envelope = spec.prefix.length + spec.suffix.length;
    // Compression is only known afterwards: aim the raw size at what the learnt ratio says fits compressed.
    const rawTarget = Math.min(limits.maxUncompressedBytes, Math.floor((COMPRESSED_HEADROOM * limits.maxCompressedBytes) / this.ratio[kind]));
    const push = async (): Promise<void> => {
      const raw = writer.close();
      if (raw !== undefined) await out.put({ kind, dataMs, raw: raw.raw, starts: raw.starts, scratch: raw.scratch, body: undefined });
    };
    let sliceStart = performance.now();
    for (let i = 0; i < items.length; i++) {
      if (i % SLICE_CHECK_EVERY === SLICE_CHECK_EVERY - 1 && performance.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
      const item = items[i]!;
      let bytes: number;
      try {
        bytes = encoder.encode(item);
      } catch {
        bytes = -1;
      }
      if (bytes < 0) {
        this.lose(kind, 1, 'invalid_value', tally);
        this.invalidLog.maybe((suppressed) =>
          this.logger.warn({ kind, name: nameOf(item).slice(0, 200), suppressed }, 'Datadog sink: dropped an item with a non-finite value.'),
        );
        continue;
      }
      if (envelope + bytes > limits.maxUncompressedBytes) {
        this.lose(kind, 1, 'payload_too_large', tally);
        this.logTooLarge(kind, nameOf(item), 'uncompressed', envelope + bytes, limits.maxUncompressedBytes);
        continue;
      }
      if (writer.items > 0 && (writer.items >= limits.maxItems || writer.sizeWith(bytes) > rawTarget)) {
        await push();
        sliceStart = performance.now();
        // The encoders are shared: another export may have used this one while we waited.
        encoder.encode(item);
      }
      encoder.write(writer);
    }
    await push();
  }

  /**
   * Compresses (re-splitting what still exceeds the compressed limit) and delivers one payload.
   * `prepared` runs once the payload's scratch Buffer, if any, is back in the pool.
   */
  private async process(p: Payload, tally: Tally | undefined, prepared?: () => void): Promise<void> {
    try {
      let ready: Payload[];
      try {
        ready = await this.prepare(p, tally);
      } finally {
        this.dropScratch(p);
        prepared?.();
      }
      for (const r of ready) await this.deliver(r, tally);
    } catch (err) {
      this.lose(p.kind, count(p), 'internal_error', tally);
      this.logger.error({ err, kind: p.kind, items: count(p) }, 'Datadog sink: unexpected error while sending a payload; dropped.');
    }
  }

  /** Gives a compressed payload's scratch Buffer back to the pool; its raw body is rebuilt by `rawOf` if ever needed. */
  private dropScratch(p: Payload): void {
    if (p.scratch === undefined) return;
    this.scratchPool.give(p.scratch);
    p.scratch = undefined;
    p.raw = undefined;
  }

  /** The uncompressed body: kept, or inflated back from the compressed one (only after a 413, so rarely). */
  private async rawOf(p: Payload): Promise<Buffer> {
    if (p.raw !== undefined) return p.raw;
    if (p.body === undefined) throw new Error('datadog sink: a payload has neither its raw nor its compressed body');
    return this.compression === 'gzip' ? gunzipAsync(p.body) : inflateAsync(p.body);
  }

  private async prepare(p: Payload, tally: Tally | undefined): Promise<Payload[]> {
    const raw = await this.rawOf(p);
    const body = await this.compress(raw);
    this.learnRatio(p.kind, raw.length, body.length);
    const limit = this.limits[p.kind].maxCompressedBytes;
    if (body.length <= limit) {
      p.body = body;
      return [p];
    }
    if (count(p) === 1) {
      this.lose(p.kind, 1, 'payload_too_large', tally);
      this.logTooLarge(p.kind, this.snippet(p.kind, raw), 'compressed', body.length, limit);
      return [];
    }
    const [a, b] = this.halves(p, raw);
    return [...(await this.prepare(a, tally)), ...(await this.prepare(b, tally))];
  }

  /**
   * Compresses on the libuv pool, large bodies one at a time. With up to `maxConcurrentRequests` large
   * bodies at once, the pool's 4 threads took every core of a 2-core machine from the event loop for the
   * length of a flush; one at a time leaves the loop a core, and a window's bodies still compress in well
   * under a second. Small bodies take microseconds and go straight through.
   */
  private async compress(raw: Buffer): Promise<Buffer> {
    if (raw.length < SERIAL_COMPRESSION_BYTES) return this.compression === 'gzip' ? gzipAsync(raw) : deflateAsync(raw);
    const previous = this.compressing;
    let release!: () => void;
    this.compressing = new Promise<void>((r) => (release = r));
    try {
      await previous;
      return this.compression === 'gzip' ? await gzipAsync(raw) : await deflateAsync(raw);
    } finally {
      release();
    }
  }

  private learnRatio(kind: PayloadKind, raw: number, compressed: number): void {
    // Small bodies compress badly and would make the estimate needlessly pessimistic.
    if (raw < 16_384) return;
    const r = compressed / raw;
    const cur = this.ratio[kind];
    this.ratio[kind] = r > cur ? r : cur * 0.7 + r * 0.3;
  }

  private halves(p: Payload, raw: Buffer): [Payload, Payload] {
    const [a, b] = splitPayload(p.kind, { raw, starts: p.starts });
    return [
      { kind: p.kind, dataMs: p.dataMs, raw: a.raw, starts: a.starts, scratch: undefined, body: undefined },
      { kind: p.kind, dataMs: p.dataMs, raw: b.raw, starts: b.starts, scratch: undefined, body: undefined },
    ];
  }

  /** Sends now, or parks in the retry buffer while the intake is backing off (as the agent's circuit breaker). */
  private async deliver(p: Payload, tally: Tally | undefined): Promise<void> {
    if (!this.closing && this.isBlocked()) {
      this.enqueueRetry(p);
      return;
    }
    await this.handle(p, await this.send(p), tally);
  }

  /** The error table of the README, in one place. Says whether the payload went back to the retry buffer. */
  private async handle(p: Payload, out: Outcome, tally: Tally | undefined): Promise<'done' | 'retry'> {
    if (out.ok) {
      this.delivered(p);
      this.onSuccess();
      return 'done';
    }
    const path = KIND_SPECS[p.kind].path;
    switch (out.status) {
      case 400:
        this.lose(p.kind, count(p), 'bad_request', tally);
        this.badRequestLog.maybe((suppressed) =>
          this.logger.error(
            { err: new MdError('MD_ERR_SINK_REJECTED', 'rejected by Datadog'), status: 400, endpoint: path, items: count(p), body: out.body.slice(0, LOGGED_BODY_CHARS), suppressed },
            'Datadog rejected a payload as malformed (400 Bad Request); dropped.',
          ),
        );
        return 'done';
      case 403:
        this.lose(p.kind, count(p), 'forbidden', tally);
        this.forbiddenLog.maybe((suppressed) =>
          this.logger.error(
            { err: new MdError('MD_ERR_SINK_AUTH', 'invalid API key'), status: 403, endpoint: path, key: this.maskedKey, items: count(p), suppressed },
            'Datadog answered 403 Forbidden: invalid API key. Payloads are dropped until --datadog-api-key / DD_API_KEY is fixed.',
          ),
        );
        return 'done';
      case 413:
        if (count(p) > 1) {
          const [a, b] = this.halves(p, await this.rawOf(p));
          await this.process(a, tally);
          await this.process(b, tally);
        } else {
          this.lose(p.kind, 1, 'payload_too_large', tally);
          this.logTooLarge(p.kind, this.snippet(p.kind, await this.rawOf(p)), '413 from Datadog', p.body?.length ?? 0, this.limits[p.kind].maxCompressedBytes);
        }
        return 'done';
      case undefined:
      default:
        // No answer (timeout, connection error), 408, 429, 5xx, other statuses (the agent retries those too), timeouts and connection errors.
        this.onRetryableFailure(out);
        this.retryLog.maybe((suppressed) =>
          this.logger.warn(
            {
              err: new MdError(out.status === undefined && out.error instanceof MdError ? out.error.code : 'MD_ERR_SINK_EXPORT', 'Datadog request failed'),
              status: out.status,
              error: out.status === undefined ? describe(out.error) : undefined,
              endpoint: path,
              retryInMs: Math.max(0, this.blockedUntil - Date.now()),
              retryBufferBytes: this.retryBytes,
              suppressed,
            },
            'Datadog request failed; the payload is kept for retry.',
          ),
        );
        this.enqueueRetry(p);
        return 'retry';
    }
  }

  /** POSTs one compressed payload, within a concurrency slot and the per-request (or shutdown) deadline. */
  private async send(p: Payload): Promise<Outcome> {
    await this.acquire();
    const ac = new AbortController();
    const budget = Math.max(0, Math.min(this.timeoutMs, this.deadlineMs - Date.now()));
    const timer = setTimeout(() => ac.abort(new MdError('MD_ERR_SINK_TIMEOUT', `no response from Datadog within ${Math.round(budget)} ms`)), budget);
    this.inflight.add(ac);
    const spec = KIND_SPECS[p.kind];
    try {
      const headers: Record<string, string> = {
        'dd-api-key': this.apiKey,
        'content-type': spec.contentType,
        'content-encoding': this.compression,
        'user-agent': USER_AGENT,
      };
      // The agent-payload version whose SketchPayload layout this sink writes (what Vector sends too).
      if (p.kind === 'sketches') headers['dd-agent-payload'] = '4.87.0';
      const res = await this.pool.request({ path: this.pathPrefix + spec.path, method: 'POST', headers, body: p.body ?? null, signal: ac.signal });
      const status = res.statusCode;
      this.statsFor(`sink-datadog-http-${Math.floor(status / 100)}xx`).received++;
      if (status >= 200 && status < 300) {
        // The answer is known; a body cut short changes nothing.
        await res.body.dump().catch(() => undefined);
        return { ok: true, status };
      }
      const body = await readLimited(res.body, LOGGED_BODY_CHARS).catch(() => '');
      return { ok: false, status, retryAfterMs: retryAfterMs(res.headers), body, error: undefined };
    } catch (err) {
      this.statsFor('sink-datadog-http-error').received++;
      return { ok: false, status: undefined, retryAfterMs: undefined, body: '', error: err };
    } finally {
      clearTimeout(timer);
      this.inflight.delete(ac);
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.active < this.maxConcurrent) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  private release(): void {
    const next = this.slotWaiters.shift();
    // The slot passes straight to the next waiter, so `active` stays exact.
    if (next !== undefined) next();
    else this.active--;
  }

  // ------------------------------------------------------------------ accounting

  private delivered(p: Payload): void {
    const bytes = p.body?.length ?? 0;
    const ks = this.kindStats[p.kind];
    ks.sent += count(p);
    ks.packets++;
    ks.bytes += bytes;
    this.stats.packets++;
    this.stats.bytes += bytes;
  }

  /** Every loss goes through here: `dropped{reason}` on sink-datadog and `failed` on the kind's component. */
  private lose(kind: PayloadKind, items: number, reason: string, tally: Tally | undefined): void {
    if (items <= 0) return;
    this.stats.drop(reason, items);
    this.kindStats[kind].failed += items;
    if (tally !== undefined) {
      tally.lost += items;
      tally.reasons.add(reason);
    }
  }

  private snippet(kind: PayloadKind, raw: Buffer): string {
    if (kind === 'sketches') return '';
    const { prefix, suffix } = KIND_SPECS[kind];
    // Only the start of the first item matters; the offsets table is not needed for that.
    return itemBytes(kind, { raw, starts: Uint32Array.of(prefix.length) }, 0)
      .subarray(0, Math.min(120, raw.length - prefix.length - suffix.length))
      .toString('utf8');
  }

  private logTooLarge(kind: PayloadKind, what: string, which: string, bytes: number, limit: number): void {
    this.tooLargeLog.maybe((suppressed) =>
      this.logger.error(
        { err: new MdError('MD_ERR_SINK_PAYLOAD_TOO_LARGE', 'item too large'), kind, item: what.slice(0, 200), limit: which, bytes, maxBytes: limit, suppressed },
        `Datadog sink: a single ${kind} item is too large for one payload (${which}); dropped.`,
      ),
    );
  }

  // ------------------------------------------------------------------ retries

  private isBlocked(): boolean {
    return Date.now() < this.blockedUntil;
  }

  /** Jittered exponential backoff for the n-th consecutive failure: t = base·2^(n-1), random in [t/2, t], capped. */
  private backoff(n: number): number {
    const t = this.retryBaseMs * 2 ** Math.max(0, n - 1);
    if (t >= this.retryMaxMs) return this.retryMaxMs;
    return t / 2 + Math.random() * (t / 2);
  }

  private onRetryableFailure(out: Outcome): void {
    const now = Date.now();
    // Requests that were already in flight when the first one failed do not escalate the backoff again.
    if (now >= this.blockedUntil) this.errorCount = Math.min(this.errorCount + 1, 40);
    const wait = Math.max(out.ok ? 0 : (out.retryAfterMs ?? 0), this.backoff(this.errorCount));
    this.blockedUntil = Math.max(this.blockedUntil, now + wait);
  }

  private onSuccess(): void {
    // The agent's recovery interval: one success forgives two failures.
    this.errorCount = Math.max(0, this.errorCount - 2);
    if (this.blockedUntil === 0) return;
    this.blockedUntil = 0;
    if (this.retryTimer !== undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.scheduleRetry();
  }

  private cost(p: Payload): number {
    // What the payload holds in memory: the raw body only until it is compressed, if it was pooled.
    return (p.raw?.length ?? 0) + (p.body?.length ?? 0) + p.starts.byteLength;
  }

  private enqueueRetry(p: Payload): void {
    if (this.final) {
      this.lose(p.kind, count(p), 'shutdown_unsent', undefined);
      return;
    }
    if (this.expired(p, Date.now())) {
      // It entered the retry path and leaves it as failed, so received = sent + failed still holds.
      this.retryStats.received++;
      this.expire([p]);
      return;
    }
    this.retry.push(p);
    this.retryBytes += this.cost(p);
    this.retryStats.received++;
    while (this.retryBytes > this.retryBufferBytes && this.retry.length > 0) {
      const old = this.retry.shift()!;
      this.retryBytes -= this.cost(old);
      this.retryStats.failed++;
      this.lose(old.kind, count(old), 'retry_buffer_full', undefined);
      this.bufferFullLog.maybe((suppressed) =>
        this.logger.error(
          { err: new MdError('MD_ERR_SINK_RETRY_BUFFER_FULL', 'retry buffer full'), kind: old.kind, items: count(old), maxBytes: this.retryBufferBytes, suppressed },
          'Datadog retry buffer full; dropped the oldest payload (see --datadog-retry-buffer-bytes).',
        ),
      );
    }
    this.updateRetryGauges();
    this.scheduleRetry();
  }

  /** How old a payload of `kind` may get in the retry buffer. */
  private maxAgeOf(kind: PayloadKind): number {
    return kind === 'series' || kind === 'sketches' ? this.retryMaxAgeMs : kind === 'checks' ? Math.min(this.retryMaxAgeMs, CHECKS_MAX_AGE_MS) : EVENTS_MAX_AGE_MS;
  }

  /** Whether the intake would refuse the payload's points for their age. */
  private expired(p: Payload, now: number): boolean {
    return now - p.dataMs > this.maxAgeOf(p.kind);
  }

  /** Removes buffered payloads the intake would refuse for their age, counting them as `expired`. */
  private dropExpired(): void {
    const now = Date.now();
    const gone: Payload[] = [];
    let kept = 0;
    for (const p of this.retry) {
      if (this.expired(p, now)) gone.push(p);
      else this.retry[kept++] = p;
    }
    if (gone.length === 0) return;
    this.retry.length = kept;
    for (const p of gone) this.retryBytes -= this.cost(p);
    this.updateRetryGauges();
    this.expire(gone);
  }

  private expire(gone: readonly Payload[]): void {
    let items = 0;
    const maxAgeMs: Partial<Record<PayloadKind, number>> = {};
    for (const p of gone) {
      items += count(p);
      maxAgeMs[p.kind] = this.maxAgeOf(p.kind);
      this.retryStats.failed++;
      this.lose(p.kind, count(p), 'expired', undefined);
    }
    this.expiredLog.maybe((suppressed) =>
      this.logger.error(
        { err: new MdError('MD_ERR_SINK_EXPIRED', 'payload too old for the intake'), payloads: gone.length, items, maxAgeMs, suppressed },
        'Datadog payloads waited in the retry buffer longer than the intake accepts old points; dropped them (see --datadog-retry-max-age).',
      ),
    );
  }

  private takeNewest(): Payload | undefined {
    // Newest first, as the agent: after an outage the freshest data matters most and old points expire.
    const p = this.retry.pop();
    if (p !== undefined) {
      this.retryBytes -= this.cost(p);
      this.updateRetryGauges();
    }
    return p;
  }

  private updateRetryGauges(): void {
    this.stats.gauge('retry_buffer_bytes', this.retryBytes);
    this.stats.gauge('retry_buffer_payloads', this.retry.length);
  }

  private scheduleRetry(): void {
    if (this.closing || this.draining !== undefined || this.retryTimer !== undefined || this.retry.length === 0) return;
    const wait = Math.max(0, this.blockedUntil - Date.now());
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.drain();
    }, wait);
    // Retries alone must not keep a library user's process alive; the CLI's servers do that.
    this.retryTimer.unref();
  }

  private drain(): Promise<void> {
    this.draining ??= this.drainLoop().finally(() => {
      this.draining = undefined;
      this.scheduleRetry();
    });
    return this.draining;
  }

  private async drainLoop(): Promise<void> {
    if (this.isBlocked() || this.closing) return;
    await this.drainRound();
  }

  /**
   * Sends one probe, newest first; only if it goes through, the rest of the buffer follows with full
   * concurrency. So while the intake is still down, each round costs one request, not the whole buffer.
   * False when something went back to the buffer.
   */
  private async drainRound(): Promise<boolean> {
    this.dropExpired();
    const probe = this.takeNewest();
    if (probe === undefined) return true;
    if ((await this.resend(probe)) === 'retry') return false;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!failed && (this.closing || !this.isBlocked())) {
        const p = this.takeNewest();
        if (p === undefined) return;
        if ((await this.resend(p)) === 'retry') failed = true;
      }
    };
    await Promise.all(Array.from({ length: this.maxConcurrent }, worker));
    return !failed;
  }

  private async resend(p: Payload): Promise<'done' | 'retry'> {
    try {
      const out = await this.send(p);
      if (out.ok) this.retryStats.sent++;
      return await this.handle(p, out, undefined);
    } catch (err) {
      this.lose(p.kind, count(p), 'internal_error', undefined);
      this.logger.error({ err, kind: p.kind }, 'Datadog sink: unexpected error while retrying a payload; dropped.');
      return 'done';
    }
  }

  // ------------------------------------------------------------------ shutdown

  /**
   * Finishes exports in progress, then retries every buffered payload (ignoring the backoff) until
   * `deadlineMs`; what is still undelivered is counted as `shutdown_unsent` and logged. Idempotent.
   */
  shutdown(deadlineMs: number): Promise<void> {
    this.shutdownPromise ??= this.shutdownOnce(deadlineMs);
    return this.shutdownPromise;
  }

  private async shutdownOnce(deadlineMs: number): Promise<void> {
    this.closing = true;
    this.deadlineMs = deadlineMs;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const abortAll = () => {
      for (const ac of this.inflight) ac.abort(new MdError('MD_ERR_SINK_TIMEOUT', 'shutdown deadline passed'));
    };
    const deadlineTimer = setTimeout(abortAll, Math.max(0, deadlineMs - Date.now()));
    try {
      await this.untilDeadline(Promise.allSettled([...this.exports, this.draining ?? Promise.resolve()]));
      // The backoff is ignored (there is no later), but rounds still start with a probe and pause between.
      while (this.retry.length > 0 && Date.now() < deadlineMs) {
        if (!(await this.drainRound())) await this.untilDeadline(new Promise((r) => setTimeout(r, this.backoff(1))));
      }
    } catch (err) {
      this.logger.error({ err }, 'Datadog sink: unexpected error during shutdown.');
    } finally {
      clearTimeout(deadlineTimer);
      abortAll();
      this.final = true;
      const lost = { series: 0, sketches: 0, events: 0, checks: 0 };
      for (const p of this.retry.splice(0)) {
        lost[p.kind] += count(p);
        this.lose(p.kind, count(p), 'shutdown_unsent', undefined);
      }
      this.retryBytes = 0;
      this.updateRetryGauges();
      const total = lost.series + lost.sketches + lost.events + lost.checks;
      if (total > 0) {
        this.logger.error(
          { err: new MdError('MD_ERR_SINK_TIMEOUT', 'shutdown deadline passed'), lost },
          `Datadog sink: shutdown deadline passed with ${total} item(s) undelivered; they are lost.`,
        );
      }
      await this.pool.destroy().catch(() => undefined);
    }
  }

  private async untilDeadline(p: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, this.deadlineMs - Date.now()))))]);
    clearTimeout(timer);
  }
}
