/**
 * Remote write 1.0: after each export, the series the window touched are sent with their cumulative
 * values (the scrape state's own: one implementation of counters and histograms) as snappy-compressed
 * protobuf `WriteRequest`s, through core's shared DeliveryPolicy — the only retry loop: 5xx and 429 are
 * retried with backoff (Retry-After honoured), 413 splits the request, other 4xx drop it, counted.
 */
import {
  DeliveryPolicy,
  MdError,
  retryAfterMs,
  type ComponentContext,
  type ComponentStats,
  type DeliveryTarget,
  type LossTally,
  type SendOutcome,
} from '@metrics-distributor/core';
import { formatValue } from './names.js';
import { snappyCompress } from './snappy.js';
import type { Family, SeriesState, Touched } from './state.js';
import { encodeLabel, encodeTimeSeriesFrom, type LabelPair } from './write-request.js';

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

/** One request: its encoded series (kept for a split) and its compressed body. */
interface WritePayload {
  readonly entries: readonly Buffer[];
  readonly body: Buffer;
  readonly windowStartMs: number;
  readonly bytes: number;
}

/** Response bodies of refused requests are logged up to this many characters. */
const LOGGED_BODY_CHARS = 300;
/** Longest Retry-After honoured: a misbehaving proxy must not park data for days. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;
/** `__name__` fields cached at most (sample names are user input: the cache must be bounded). */
const NAME_EXTRAS_MAX = 100_000;
/** Remote write encodes this long at most before it gives the event loop a turn. */
const ENCODE_SLICE_MS = 4;
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

/** A series' labels sorted by name, each with its encoded field. */
interface EncodedLabels {
  readonly names: readonly string[];
  readonly fields: readonly Buffer[];
}

/** An extra label (`__name__`, `le`, `quantile`) and its encoded field. */
interface Extra {
  readonly name: string;
  readonly field: Buffer;
}

/**
 * The encoded fields of a series' labels plus up to two extras, merged in name order as the spec
 * requires (`__name__` sorts before lower-case names, after upper-case ones).
 */
function merged(l: EncodedLabels, a: Extra, b?: Extra): Buffer[] {
  const out: Buffer[] = [];
  let ia = false;
  let ib = b === undefined;
  for (let i = 0; i < l.names.length; i++) {
    const n = l.names[i]!;
    if (!ia && a.name < n) {
      out.push(a.field);
      ia = true;
    }
    if (!ib && b!.name < n) {
      out.push(b!.field);
      ib = true;
    }
    out.push(l.fields[i]!);
  }
  if (!ia) out.push(a.field);
  if (!ib) out.push(b!.field);
  return out;
}

/** The extras' names never clash with a tag's (`le`, `quantile`, `__x` are renamed), so a only precedes b by name. */
function extraOf(name: string, value: string): Extra {
  return { name, field: encodeLabel(name, value) };
}

/** Sends windows to a remote-write receiver through the shared delivery policy. */
export class RemoteWriter {
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly maxSamples: number;
  private readonly policy: DeliveryPolicy<WritePayload>;
  private readonly les: readonly string[];
  private readonly qls: readonly string[];
  /** Aborts every request in flight once the shutdown deadline has passed. */
  private readonly abort = new AbortController();
  private readonly encoded = new WeakMap<SeriesState, EncodedLabels>();
  private readonly leExtras: readonly Extra[];
  private readonly quantileExtras: readonly Extra[];
  /** `__name__` fields by sample name; bounded by the state's families, cleared when it grows past that. */
  private readonly nameExtras = new Map<string, Extra>();

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
    // fetch refuses URLs with credentials: they become the Authorization header instead.
    if (url.username !== '' || url.password !== '') {
      const basic = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
      this.headers['authorization'] ??= `Basic ${basic}`;
      url.username = '';
      url.password = '';
    }
    this.url = url.toString();
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxSamples = opts.maxSamplesPerRequest ?? 2000;
    if (!Number.isInteger(this.maxSamples) || this.maxSamples < 1) throw new MdError('MD_ERR_CONFIG_INVALID', `prometheus maxSamplesPerRequest must be a positive integer, got ${this.maxSamples}`);
    this.les = [...shape.buckets.map(formatValue), '+Inf'];
    this.qls = (shape.quantiles ?? []).map(formatValue);
    this.leExtras = this.les.map((le) => extraOf('le', le));
    this.quantileExtras = this.qls.map((q) => extraOf('quantile', q));
    const target: DeliveryTarget<WritePayload> = {
      send: (p) => this.send(p),
      split: (p) => Promise.resolve(this.halves(p)),
      bytes: (p) => p.bytes,
      items: (p) => p.entries.length,
      dataMs: (p) => p.windowStartMs,
      logFields: (p) => ({ samples: p.entries.length, bodyBytes: p.body.length }),
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

  /** Sends the window's touched series at `windowStartMs`; losses of this first attempt go to `tally`. */
  async write(touched: readonly Touched[], windowStartMs: number, tally: LossTally): Promise<void> {
    const entries: Buffer[] = [];
    let sliceStart = performance.now();
    for (let i = 0; i < touched.length; i++) {
      const { family, series } = touched[i]!;
      this.encode(family, series, windowStartMs, entries);
      // A delivery that only buffers (retries pending) resolves without I/O: the encode of a large
      // window must still give the event loop turns, as export does.
      if ((i & 255) === 255 && performance.now() - sliceStart >= ENCODE_SLICE_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
      // A histogram's samples may run past the limit: the rest start the next request.
      while (entries.length >= this.maxSamples) await this.policy.deliver(this.payload(entries.splice(0, this.maxSamples), windowStartMs), tally);
    }
    if (entries.length > 0) await this.policy.deliver(this.payload(entries, windowStartMs), tally);
  }

  /** Retries what is buffered until `deadlineMs` after `inFlight`, then aborts requests still running. */
  async shutdown(deadlineMs: number, inFlight: Promise<unknown>): Promise<void> {
    const timer = setTimeout(() => this.abort.abort(), Math.max(0, deadlineMs - Date.now()));
    try {
      await this.policy.shutdown(deadlineMs, inFlight);
    } finally {
      clearTimeout(timer);
    }
  }

  private labelsOf(st: SeriesState): EncodedLabels {
    let enc = this.encoded.get(st);
    if (enc === undefined) {
      const pairs: LabelPair[] = parseLabels(st.labels).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      enc = { names: pairs.map((p) => p[0]), fields: pairs.map(([n, v]) => encodeLabel(n, v)) };
      this.encoded.set(st, enc);
    }
    return enc;
  }

  private nameOf(sample: string): Extra {
    let e = this.nameExtras.get(sample);
    if (e === undefined) {
      if (this.nameExtras.size >= NAME_EXTRAS_MAX) this.nameExtras.clear();
      e = extraOf('__name__', sample);
      this.nameExtras.set(sample, e);
    }
    return e;
  }

  /** A series' samples: counter `_total`, gauge, histogram `_bucket` (cumulative), `_sum`, `_count`, or summary quantiles, `_sum`, `_count`. */
  private encode(fam: Family, st: SeriesState, ts: number, out: Buffer[]): void {
    const l = this.labelsOf(st);
    switch (fam.type) {
      case 'counter':
        out.push(encodeTimeSeriesFrom(merged(l, this.nameOf(fam.name + '_total')), st.value, ts));
        return;
      case 'gauge':
        out.push(encodeTimeSeriesFrom(merged(l, this.nameOf(fam.name)), st.value, ts));
        return;
      case 'histogram': {
        const buckets = st.buckets!;
        const bucketName = this.nameOf(fam.name + '_bucket');
        let cum = 0;
        for (let i = 0; i < buckets.length; i++) {
          cum += buckets[i]!;
          out.push(encodeTimeSeriesFrom(merged(l, bucketName, this.leExtras[i]), cum, ts));
        }
        break;
      }
      case 'summary': {
        const qs = st.quantiles!;
        const name = this.nameOf(fam.name);
        for (let i = 0; i < qs.length; i++) out.push(encodeTimeSeriesFrom(merged(l, name, this.quantileExtras[i]), qs[i]!, ts));
        break;
      }
    }
    out.push(encodeTimeSeriesFrom(merged(l, this.nameOf(fam.name + '_sum')), st.scale === 1 ? st.value : st.value * st.scale, ts));
    out.push(encodeTimeSeriesFrom(merged(l, this.nameOf(fam.name + '_count')), st.count, ts));
  }

  private payload(entries: readonly Buffer[], windowStartMs: number): WritePayload {
    const body = snappyCompress(Buffer.concat(entries));
    let raw = 0;
    for (const e of entries) raw += e.length;
    return { entries, body, windowStartMs, bytes: body.length + raw };
  }

  private halves(p: WritePayload): WritePayload[] {
    const mid = Math.ceil(p.entries.length / 2);
    return [this.payload(p.entries.slice(0, mid), p.windowStartMs), this.payload(p.entries.slice(mid), p.windowStartMs)];
  }

  private async send(p: WritePayload): Promise<SendOutcome> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: this.headers,
        body: p.body,
        signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.abort.signal]),
      });
    } catch (err) {
      const timeout = err instanceof Error && err.name === 'TimeoutError';
      return { kind: 'retryable', error: new MdError(timeout ? 'MD_ERR_SINK_TIMEOUT' : 'MD_ERR_SINK_EXPORT', `remote write request failed: ${(err as Error).message}`, { cause: err }) };
    }
    const status = res.status;
    if (status >= 200 && status < 300) {
      await res.body?.cancel();
      this.context.stats.count('remote_write_requests');
      this.context.stats.count('remote_write_samples', p.entries.length);
      return { kind: 'ok' };
    }
    const body = (await res.text().catch(() => '')).slice(0, LOGGED_BODY_CHARS);
    const fields = { status, body, samples: p.entries.length };
    if (status === 413) return { kind: 'too_large', log: { code: 'MD_ERR_SINK_PAYLOAD_TOO_LARGE', level: 'error', fields } };
    if (status === 429 || status >= 500) {
      const retryAfter = retryAfterMs(res.headers, MAX_RETRY_AFTER_MS);
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
