/**
 * The Datadog sink's options, their defaults and checks, and the intake's limits: payload sizes per
 * route and how old data each route still accepts.
 */
import { MdError } from '@metrics-distributor/core';
import { KINDS, type PayloadKind } from './kinds.js';

/** Options of the `DatadogSink`. Durations are milliseconds, sizes bytes. */
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
  /** Check the key with `GET /api/v1/validate` in `DatadogSink.start`. Default true. */
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

/** Size limits of one request body of a kind. */
export interface PayloadLimits {
  /** Compressed body bytes at most. */
  maxCompressedBytes: number;
  /** Uncompressed body bytes at most. */
  maxUncompressedBytes: number;
  /** Items per body at most (for series, points: each series carries one point). */
  maxItems: number;
}

/** Datadog's limits (`datadog.md` §3.2–3.4; the agent's serializer caps for the generic routes). */
export const DEFAULT_LIMITS: Readonly<Record<PayloadKind, Readonly<PayloadLimits>>> = Object.freeze({
  series: { maxCompressedBytes: 512_000, maxUncompressedBytes: 5_242_880, maxItems: 10_000 },
  sketches: { maxCompressedBytes: 2_621_440, maxUncompressedBytes: 4_194_304, maxItems: Number.POSITIVE_INFINITY },
  // The events API takes one event per request.
  events: { maxCompressedBytes: 2_621_440, maxUncompressedBytes: 4_194_304, maxItems: 1 },
  checks: { maxCompressedBytes: 2_621_440, maxUncompressedBytes: 4_194_304, maxItems: Number.POSITIVE_INFINITY },
});

/** The intake refuses service checks more than 10 minutes in the past (`datadog.md` §3.6). */
const CHECKS_MAX_AGE_MS = 10 * 60_000;
/** The events API takes `date_happened` no older than 18 hours (`datadog.md` §3.5). */
const EVENTS_MAX_AGE_MS = 18 * 3_600_000;

/** Every option checked and defaulted. */
export interface ResolvedOptions {
  readonly apiKey: string;
  readonly url: URL;
  readonly compression: 'gzip' | 'deflate';
  readonly timeoutMs: number;
  readonly retryBufferBytes: number;
  readonly maxConcurrent: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly retryMaxAgeMs: number;
  readonly validateOnStart: boolean;
  readonly limits: Readonly<Record<PayloadKind, PayloadLimits>>;
}

/** `***` plus the last 4 characters, and only for keys long enough that 4 characters reveal little. */
export function maskKey(key: string): string {
  return key.length >= 16 ? `***${key.slice(-4)}` : '***';
}

function positive(name: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new MdError('MD_ERR_CONFIG_INVALID', `datadog sink: ${name} must be a number ≥ ${min}, got ${String(v)}`);
  return v;
}

/** Checks the options and fills in defaults; throws `MD_ERR_CONFIG_INVALID` (a configuration error, at start-up only). */
export function resolveOptions(opts: DatadogSinkOptions): ResolvedOptions {
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
  const retryBaseMs = positive('retryBaseMs', opts.retryBaseMs, 2_000);
  const limits = {} as Record<PayloadKind, PayloadLimits>;
  for (const k of KINDS) limits[k] = { ...DEFAULT_LIMITS[k], ...opts.limits?.[k] };
  return {
    apiKey: opts.apiKey,
    url,
    compression: opts.compression ?? 'gzip',
    timeoutMs: positive('timeoutMs', opts.timeoutMs, 20_000),
    retryBufferBytes: positive('retryBufferBytes', opts.retryBufferBytes, 16 * 1024 * 1024, 0),
    maxConcurrent: Math.floor(positive('maxConcurrentRequests', opts.maxConcurrentRequests, 10)),
    retryBaseMs,
    retryMaxMs: Math.max(retryBaseMs, positive('retryMaxMs', opts.retryMaxMs, 64_000)),
    retryMaxAgeMs: positive('retryMaxAgeMs', opts.retryMaxAgeMs, 3_600_000),
    validateOnStart: opts.validateKey ?? true,
    limits,
  };
}

/** How old data of `kind` may get before the intake refuses it: the option for points, the intake's own limits otherwise. */
export function maxAgeOf(kind: PayloadKind, retryMaxAgeMs: number): number {
  if (kind === 'series' || kind === 'sketches') return retryMaxAgeMs;
  return kind === 'checks' ? Math.min(retryMaxAgeMs, CHECKS_MAX_AGE_MS) : EVENTS_MAX_AGE_MS;
}
