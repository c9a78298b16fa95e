/** The OTLP sink's options and their validation: everything is checked once, in the constructor. */
import { MdError } from '@metrics-distributor/core';

/** Default `sliceMs`: longest stretch of export work between two turns of the event loop (ms). */
const SLICE_MS = 4;

/** The two OTLP/HTTP encodings (the names `OTEL_EXPORTER_OTLP_PROTOCOL` uses). */
export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** How distributions are exported: base-2 exponential buckets, or fixed explicit bounds. */
export type OtlpHistogramMode = 'exponential' | 'explicit';

/** What the OTLP sink is configured with. Durations are milliseconds, sizes bytes. */
export interface OtlpSinkOptions {
  /** Base URL of the receiver, e.g. `http://127.0.0.1:4318`; requests go to `<endpoint>/v1/metrics`. */
  endpoint: string;
  /** Extra request headers (vendors' auth, e.g. `api-key`, `authorization`). */
  headers?: Readonly<Record<string, string>>;
  /** Body encoding; default `http/protobuf`, the spec's default. */
  protocol?: OtlpProtocol;
  /** Request body compression; default `gzip`. */
  compression?: 'gzip' | 'none';
  /** Distributions as `exponential` (default) or `explicit` Histograms. */
  histogram?: OtlpHistogramMode;
  /** Upper bounds of explicit buckets, ascending; default the OpenTelemetry SDK's (0 … 10000). */
  explicitBounds?: readonly number[];
  /** Scale of exponential histograms, 0…8; default 6 (see the README for the error). */
  exponentialScale?: number;
  /** Data points per request at most; bigger windows are sent as several requests. Default 2000. */
  maxPointsPerRequest?: number;
  /** Longest stretch of planning and encoding before the event loop gets a turn; default 4 ms (0: a turn every few points). */
  sliceMs?: number;
  /** Per-request timeout; default 10 s (the OTLP exporters' default). */
  timeoutMs?: number;
  /** Requests in flight at once, and connections kept; default 2. */
  maxConcurrent?: number;
  /** Bytes of payloads held for retry; default 16 MiB. */
  retryBufferBytes?: number;
  /** First retry backoff; default 5 s (the Collector's exporter default). */
  retryBaseMs?: number;
  /** Longest retry backoff; default 30 s (the Collector's exporter default). */
  retryMaxMs?: number;
  /** Windows older than this are dropped from the retry buffer; default 5 min (the Collector's max elapsed time). */
  retryMaxAgeMs?: number;
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly protocol: OtlpProtocol;
  readonly compression: 'gzip' | 'none';
  readonly histogram: OtlpHistogramMode;
  readonly explicitBounds: readonly number[];
  readonly exponentialScale: number;
  readonly maxPointsPerRequest: number;
  readonly sliceMs: number;
  readonly timeoutMs: number;
  readonly maxConcurrent: number;
  readonly retryBufferBytes: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly retryMaxAgeMs: number;
}

/** The OpenTelemetry SDKs' default explicit bucket bounds (milliseconds for timers, as StatsD sends them). */
export const DEFAULT_EXPLICIT_BOUNDS: readonly number[] = Object.freeze([0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]);

/** Headers the sink sets itself; a user header of the same name would corrupt the request. */
const RESERVED_HEADERS = new Set(['content-type', 'content-encoding', 'content-length', 'host', 'transfer-encoding', 'connection']);

function invalid(msg: string): never {
  throw new MdError('MD_ERR_CONFIG_INVALID', `otlp sink: ${msg}`);
}

function integer(name: string, v: number | undefined, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return def;
  if (!Number.isInteger(v) || v < min || v > max) invalid(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

/** Validates and fills defaults; throws `MD_ERR_CONFIG_INVALID` naming the option. */
export function resolveOptions(o: OtlpSinkOptions): ResolvedOptions {
  let url: URL;
  try {
    url = new URL(o.endpoint);
  } catch (cause) {
    throw new MdError('MD_ERR_CONFIG_INVALID', `otlp sink: endpoint is not a URL: '${o.endpoint}'`, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') invalid(`endpoint must be http(s), got '${o.endpoint}'`);
  if (url.search !== '' || url.hash !== '') invalid('endpoint must not carry a query or fragment');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.headers ?? {})) {
    const name = k.trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) invalid(`header name '${k}' is not a valid HTTP token`);
    if (RESERVED_HEADERS.has(name)) invalid(`header '${name}' is set by the sink itself`);
    if (/[\r\n]/.test(v)) invalid(`header '${name}' has a line break in its value`);
    headers[name] = v;
  }
  const bounds = o.explicitBounds ?? DEFAULT_EXPLICIT_BOUNDS;
  if (bounds.length === 0) invalid('explicitBounds needs at least one bound');
  for (let i = 0; i < bounds.length; i++) {
    const b = bounds[i]!;
    if (!Number.isFinite(b)) invalid(`explicitBounds must be finite, got ${b}`);
    if (i > 0 && !(b > bounds[i - 1]!)) invalid('explicitBounds must be strictly ascending');
  }
  const retryBaseMs = integer('retryBaseMs', o.retryBaseMs, 5000, 1);
  return {
    url,
    headers,
    protocol: o.protocol ?? 'http/protobuf',
    compression: o.compression ?? 'gzip',
    histogram: o.histogram ?? 'exponential',
    explicitBounds: Object.freeze([...bounds]),
    exponentialScale: integer('exponentialScale', o.exponentialScale, 6, 0, 8),
    maxPointsPerRequest: integer('maxPointsPerRequest', o.maxPointsPerRequest, 2000, 1),
    sliceMs: integer('sliceMs', o.sliceMs, SLICE_MS, 0, 1000),
    timeoutMs: integer('timeoutMs', o.timeoutMs, 10_000, 1),
    maxConcurrent: integer('maxConcurrent', o.maxConcurrent, 2, 1, 64),
    retryBufferBytes: integer('retryBufferBytes', o.retryBufferBytes, 16 * 1024 * 1024, 0),
    retryBaseMs,
    retryMaxMs: Math.max(retryBaseMs, integer('retryMaxMs', o.retryMaxMs, 30_000, 1)),
    retryMaxAgeMs: integer('retryMaxAgeMs', o.retryMaxAgeMs, 300_000, 1),
  };
}
