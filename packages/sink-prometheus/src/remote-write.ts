/**
 * Remote write 1.0: after each export, the series the window touched are sent with their cumulative
 * values (the scrape state's own: one implementation of counters and histograms) as snappy-compressed
 * protobuf `WriteRequest`s, through core's shared DeliveryPolicy — the only retry loop: 5xx and 429 are
 * retried with backoff (Retry-After honoured), 413 splits the request, other 4xx drop it, counted.
 */
import { Pool } from 'undici';
import {
  DeliveryPolicy,
  MdError,
  readBodyHead,
  retryAfterMs,
  Slicer,
  type ComponentContext,
  type ComponentStats,
  type DeliveryTarget,
  type LossTally,
  type SendOutcome,
  type SliceFigures,
} from '@metrics-distributor/core';
import { formatValue } from './names.js';
import { snappyCompress } from './snappy.js';
import { WindowLedger, type Cover } from './ledger.js';
import type { Family, SeriesState, Touched } from './state.js';
import { WriteRequestBuilder, encodeLabel, encodeLabelSet, splitRequest, type EncodedLabelSet, type LabelPair, type RawWriteRequest } from './write-request.js';

/** Settings of remote write. Durations are milliseconds. */
export interface RemoteWriteOptions {
  /** Receiver URL, e.g. `http://prometheus:9090/api/v1/write`; `user:password@` in it becomes Basic auth. */
  url: string;
  /** Extra request headers (tenant ids, bearer tokens). */
  headers?: Readonly<Record<string, string>>;
  /** Per-request timeout. Default 30000. */
  timeoutMs?: number;
  /** Samples per request at most; a window with more is sent in several. Default 2000. */
  maxSamplesPerRequest?: number;
  /** Compressed bytes kept for retries (plus their encoded series); oldest dropped beyond. Default 16 MiB. */
  retryBufferBytes?: number;
  /** First retry backoff; doubles per consecutive failure. Default 1000. */
  retryBaseMs?: number;
  /** Longest backoff. Default 30000. */
  retryMaxMs?: number;
  /** Windows older than this are dropped instead of retried (Prometheus' TSDB refuses samples older than its head). Default 3600000. */
  maxAgeMs?: number;
}

/** One request: its uncompressed body with entry boundaries (kept for a split) and its compressed body. */
interface WritePayload {
  readonly request: RawWriteRequest;
  readonly body: Buffer;
  readonly windowStartMs: number;
  readonly bytes: number;
  /** The window's delivery records (`--data-dir`), and the touched entries this request's samples cover. */
  readonly ledger: WindowLedger | undefined;
  readonly cover: Cover | undefined;
}

/** Response bodies of refused requests are logged up to this many characters. */
const LOGGED_BODY_CHARS = 300;
/** Longest Retry-After honoured: a misbehaving proxy must not park data for days. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;
/** Encoded label sets shared between series at most (label sets are user input: the cache must be bounded). */
const LABEL_SETS_MAX = 100_000;
/** Series encoded between two looks at the clock (a histogram is 14 samples). */
const ENCODE_CHECK_EVERY = 32;
/** What the User-Agent says. */
const USER_AGENT = 'metrics-distributor-sink-prometheus/0.1.0';

/** Label pairs of a rendered label string (`host="a",env="p\"q"`), unescaped. */
export function parseLabels(rendered: string): LabelPair[] {
  const out: LabelPair[] = [];
  let i = 0;
  while (i < rendered.length) {
    const eq = rendered.indexOf('="', i);
    const name = rendered.slice(i, eq);
    let value = '';
    let j = eq + 2;
    for (; rendered[j] !== '"'; j++) {
      const c = rendered[j]!;
      if (c !== '\\') value += c;
      else value += rendered[++j] === 'n' ? '\n' : rendered[j]!;
    }
    out.push([name, value]);
    i = j + 2; // past `",`
  }
  return out;
}

/** Suffixes of sample names, as bytes appended to the family name's. */
const SUFFIX_NONE = Buffer.alloc(0);
const SUFFIX_TOTAL = Buffer.from('_total');
const SUFFIX_BUCKET = Buffer.from('_bucket');
const SUFFIX_SUM = Buffer.from('_sum');
const SUFFIX_COUNT = Buffer.from('_count');

/** Sends windows to a remote-write receiver through the shared delivery policy. */
export class RemoteWriter {
  /** Where requests go (origin and path, no credentials), for logs. */
  private readonly url: string;
  private readonly path: string;
  /** One keep-alive connection: requests go one at a time anyway, and a fetch per request cost more than its encode. */
  private readonly pool: Pool;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly maxSamples: number;
  private readonly policy: DeliveryPolicy<WritePayload>;
  private readonly les: readonly string[];
  private readonly qls: readonly string[];
  /** Aborts every request in flight once the shutdown deadline has passed. */
  private readonly abort = new AbortController();
  /** Label sets by rendered label string, so series sharing one (a tag set across names) encode it once. */
  private readonly labelSets = new Map<string, EncodedLabelSet>();
  private readonly leFields: readonly Buffer[];
  private readonly quantileFields: readonly Buffer[];
  /** Built into between requests; exports run one after another, so one builder serves them all. */
  private readonly builder = new WriteRequestBuilder();
  /** Requests filled by the encode and not yet handed to the policy. */
  private readonly ready: WritePayload[] = [];
  /** The delivery records of the window being encoded, if it has any. */
  private track: WindowLedger | undefined;
  /** Entry the request being built starts with; whether that entry began in the previous request (counted there). */
  private openFrom = 0;
  private openCarried = false;
  /** First sample (in the request being built) of each entry begun in it. */
  private starts: number[] = [];

  constructor(
    opts: RemoteWriteOptions,
    shape: { buckets: readonly number[]; quantiles?: readonly number[] },
    private readonly context: ComponentContext<'sink'>,
    retryStats?: ComponentStats,
  ) {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch (cause) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus remote write URL is not a URL: ${opts.url.replace(/\/\/[^@/]*@/, '//***@')}`, { cause });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus remote write URL must be http(s), got ${url.protocol}`);
    this.headers = {
      'content-encoding': 'snappy',
      'content-type': 'application/x-protobuf',
      'x-prometheus-remote-write-version': '0.1.0',
      'user-agent': USER_AGENT,
      ...opts.headers,
    };
    // Credentials in the URL become the Authorization header, never part of a logged URL.
    if (url.username !== '' || url.password !== '') {
      const basic = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
      this.headers['authorization'] ??= `Basic ${basic}`;
      url.username = '';
      url.password = '';
    }
    this.url = url.toString();
    this.path = url.pathname + url.search;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.pool = new Pool(url.origin, {
      connections: 1,
      keepAliveTimeout: 15_000,
      keepAliveMaxTimeout: 60_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: { timeout: this.timeoutMs },
    });
    this.maxSamples = opts.maxSamplesPerRequest ?? 2000;
    if (!Number.isInteger(this.maxSamples) || this.maxSamples < 1) throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus maxSamplesPerRequest must be a positive integer, got ${this.maxSamples}`);
    this.les = [...shape.buckets.map(formatValue), '+Inf'];
    this.qls = (shape.quantiles ?? []).map(formatValue);
    this.leFields = this.les.map((le) => encodeLabel('le', le));
    this.quantileFields = this.qls.map((q) => encodeLabel('quantile', q));
    const target: DeliveryTarget<WritePayload> = {
      send: (p) => this.send(p),
      split: (p) => Promise.resolve(this.halves(p)),
      bytes: (p) => p.bytes,
      items: (p) => p.request.ends.length,
      dataMs: (p) => p.windowStartMs,
      logFields: (p) => ({ samples: p.request.ends.length, bodyBytes: p.body.length }),
      onLost: (p) => p.ledger?.settle(p.cover!, 'lost'),
      // Only a shutdown lets go of a window kept on disk: the next start replays it into an empty state.
      // An eviction stays a loss: exported again in this process, its deltas would be added twice.
      keep: (p, reason) => {
        if (p.ledger === undefined || reason !== 'shutdown_unsent') return false;
        p.ledger.settle(p.cover!, 'kept');
        return true;
      },
    };
    this.policy = new DeliveryPolicy(target, context, {
      retryBufferBytes: opts.retryBufferBytes ?? 16 * 1024 * 1024,
      retryBaseMs: opts.retryBaseMs ?? 1000,
      retryMaxMs: opts.retryMaxMs ?? 30_000,
      maxAgeMs: opts.maxAgeMs ?? 3_600_000,
      // One at a time keeps a series' samples in time order, which Prometheus' TSDB insists on.
      concurrency: 1,
      destination: 'Prometheus remote write',
      ...(retryStats !== undefined ? { retryStats } : {}),
      hints: { retryBufferBytes: '--prometheus-remote-write-retry-buffer-bytes', maxAge: '--prometheus-remote-write-max-age' },
    });
  }

  /** Payloads held for retry (tests, self-metrics). */
  get bufferedPayloads(): number {
    return this.policy.bufferedPayloads;
  }

  /**
   * Sends the window's touched series at `windowStartMs`; losses of this first attempt go to `tally`.
   * With `ledger`, each request reports its entries there once settled. Returns the longest synchronous slice of the encode.
   */
  async write(touched: readonly Touched[], windowStartMs: number, tally: LossTally, ledger?: WindowLedger): Promise<SliceFigures> {
    const clock = new Slicer({ checkEvery: ENCODE_CHECK_EVERY });
    // Left over only if a previous write threw (counted there as internal_error): never send them with this window.
    this.ready.length = 0;
    if (this.builder.samples > 0) this.builder.take();
    this.track = ledger;
    this.openFrom = 0;
    this.openCarried = false;
    this.starts = [];
    for (let i = 0; i < touched.length; i++) {
      const { family, series } = touched[i]!;
      if (ledger !== undefined) this.starts.push(this.builder.samples);
      this.encode(family, series, windowStartMs);
      if (this.ready.length > 0) await this.deliverReady(tally, clock);
      // A delivery that only buffers (retries pending) resolves without I/O: the encode of a large
      // window must still give the event loop turns, as export does.
      else if (clock.tick()) await clock.pause();
    }
    if (this.builder.samples > 0) this.ready.push(this.built(windowStartMs, false));
    this.track = undefined;
    await this.deliverReady(tally, clock);
    return clock.finish();
  }

  /** Hands the filled requests to the policy, one after another, each followed by an event-loop turn. */
  private async deliverReady(tally: LossTally, clock: Slicer): Promise<void> {
    for (let p = this.ready.shift(); p !== undefined; p = this.ready.shift()) {
      await this.policy.deliver(p, tally);
      // The await may or may not have waited on I/O; a turn makes the next slice start on a fresh clock either way.
      await clock.pause();
    }
  }

  /** Retries what is buffered until `deadlineMs` after `inFlight`, then aborts requests still running. */
  async shutdown(deadlineMs: number, inFlight: Promise<unknown>): Promise<void> {
    const timer = setTimeout(() => this.abort.abort(), Math.max(0, deadlineMs - Date.now()));
    try {
      await this.policy.shutdown(deadlineMs, inFlight);
    } finally {
      clearTimeout(timer);
      await this.pool.destroy().catch(() => undefined);
    }
  }

  private labelsOf(st: SeriesState): EncodedLabelSet {
    let enc = st.remoteLabels;
    if (enc === undefined) {
      enc = this.labelSets.get(st.labels);
      if (enc === undefined) {
        if (this.labelSets.size >= LABEL_SETS_MAX) this.labelSets.clear();
        enc = encodeLabelSet(parseLabels(st.labels));
        this.labelSets.set(st.labels, enc);
      }
      st.remoteLabels = enc;
    }
    return enc;
  }

  /** A series' samples: counter `_total`, gauge, histogram `_bucket` (cumulative), `_sum`, `_count`, or summary quantiles, `_sum`, `_count`. */
  private encode(fam: Family, st: SeriesState, ts: number): void {
    const l = this.labelsOf(st);
    // The family name's bytes, kept with the family: one small Buffer each, not one per sample name.
    const name = (fam.remoteName ??= Buffer.from(fam.name));
    const b = this.builder;
    const max = this.maxSamples;
    switch (fam.type) {
      case 'counter':
      case 'gauge':
        b.add(l, name, fam.type === 'counter' ? SUFFIX_TOTAL : SUFFIX_NONE, undefined, 0, st.value, ts);
        if (b.samples >= max) this.cut(ts, false);
        return;
      case 'histogram': {
        const buckets = st.buckets!;
        let cum = 0;
        for (let i = 0; i < buckets.length; i++) {
          cum += buckets[i]!;
          b.add(l, name, SUFFIX_BUCKET, this.leFields[i], l.leAt, cum, ts);
          if (b.samples >= max) this.cut(ts);
        }
        break;
      }
      case 'summary': {
        const qs = st.quantiles!;
        for (let i = 0; i < qs.length; i++) {
          b.add(l, name, SUFFIX_NONE, this.quantileFields[i], l.quantileAt, qs[i]!, ts);
          if (b.samples >= max) this.cut(ts);
        }
        break;
      }
    }
    b.add(l, name, SUFFIX_SUM, undefined, 0, st.scale === 1 ? st.value : st.value * st.scale, ts);
    if (b.samples >= max) this.cut(ts);
    b.add(l, name, SUFFIX_COUNT, undefined, 0, st.count, ts);
    if (b.samples >= max) this.cut(ts, false);
  }

  /**
   * Ends the request being built at the sample limit (a histogram's samples may run past it: the rest start the next).
   * `continues`: the series being encoded has samples left for the next request.
   */
  private cut(windowStartMs: number, continues = true): void {
    this.ready.push(this.built(windowStartMs, continues));
  }

  /** The request being built as a payload, with the entries it covers counted on the window's ledger. */
  private built(windowStartMs: number, continues: boolean): WritePayload {
    const request = this.builder.take();
    const ledger = this.track;
    if (ledger === undefined) return this.payload(request, windowStartMs, undefined, undefined);
    // A request taking up a series begun in the previous one starts with it at sample 0.
    const starts = this.openCarried ? Uint32Array.from([0, ...this.starts]) : Uint32Array.from(this.starts);
    const cover: Cover = { from: this.openFrom, starts };
    // Counted before any request of the window is sent, so no entry settles while samples of it are still to come.
    ledger.open(cover, this.openCarried, continues);
    const to = cover.from + starts.length - 1;
    this.openFrom = continues ? to : to + 1;
    this.openCarried = continues;
    this.starts = [];
    return this.payload(request, windowStartMs, ledger, cover);
  }

  private payload(request: RawWriteRequest, windowStartMs: number, ledger: WindowLedger | undefined, cover: Cover | undefined): WritePayload {
    const body = snappyCompress(request.raw);
    const bytes = body.length + request.raw.length + request.ends.byteLength + (cover?.starts.byteLength ?? 0);
    return { request, body, windowStartMs, bytes, ledger, cover };
  }

  private halves(p: WritePayload): WritePayload[] {
    const n = Math.ceil(p.request.ends.length / 2);
    const [a, b] = splitRequest(p.request, n);
    if (p.ledger === undefined || p.cover === undefined) return [this.payload(a, p.windowStartMs, undefined, undefined), this.payload(b, p.windowStartMs, undefined, undefined)];
    const [ca, cb] = WindowLedger.halves(p.cover, n);
    // The halves are counted before the whole lets go of its entries, so none settles in between.
    p.ledger.open(ca, false, false);
    p.ledger.open(cb, false, false);
    p.ledger.settle(p.cover, 'replaced');
    return [this.payload(a, p.windowStartMs, p.ledger, ca), this.payload(b, p.windowStartMs, p.ledger, cb)];
  }

  private async send(p: WritePayload): Promise<SendOutcome> {
    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let text = '';
    try {
      const res = await this.pool.request({ path: this.path, method: 'POST', headers: this.headers, body: p.body, signal: this.abort.signal });
      status = res.statusCode;
      headers = res.headers;
      // The body is read (its head kept for the log) so the connection can carry the next request.
      const head = await readBodyHead(res.body, LOGGED_BODY_CHARS * 4).catch(() => Buffer.alloc(0));
      if (status < 200 || status >= 300) text = head.toString('utf8').slice(0, LOGGED_BODY_CHARS);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
      return { kind: 'retryable', error: new MdError(timeout ? 'MD_ERR_SINK_TIMEOUT' : 'MD_ERR_SINK_EXPORT', `remote write request failed: ${(err as Error).message}`, { cause: err }) };
    }
    if (status >= 200 && status < 300) {
      this.context.stats.count('remote_write_requests');
      this.context.stats.count('remote_write_samples', p.request.ends.length);
      p.ledger?.settle(p.cover!, 'delivered');
      return { kind: 'ok' };
    }
    const fields = { status, body: text, samples: p.request.ends.length };
    if (status === 413) return { kind: 'too_large', log: { code: 'MD_ERR_SINK_PAYLOAD_TOO_LARGE', level: 'error', fields } };
    if (status === 429 || status >= 500) {
      const retryAfter = retryAfterMs(headers, MAX_RETRY_AFTER_MS);
      return { kind: 'retryable', error: new MdError('MD_ERR_SINK_EXPORT', `remote write answered ${status}`), fields, ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}) };
    }
    const auth = status === 401 || status === 403;
    return {
      kind: 'rejected',
      reason: auth ? 'forbidden' : 'bad_request',
      log: {
        code: auth ? 'MD_ERR_SINK_AUTH' : 'MD_ERR_SINK_REJECTED',
        level: 'error',
        fields,
        message: `Prometheus remote write refused a request with ${status}; its samples are dropped.`,
      },
    };
  }
}
