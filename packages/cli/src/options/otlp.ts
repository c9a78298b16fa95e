/** Options of the OTLP sink. */
import { fail, oneOf, parseDurationMs, parseInteger, parseList, parseString, type OptionsOf } from './parse.js';

/** The validated settings of this part; durations are milliseconds. */
export interface OtlpConfig {
  otlpEndpoint: string;
  otlpHeaders: Readonly<Record<string, string>>;
  otlpProtocol: 'http/protobuf' | 'http/json';
  otlpCompression: 'gzip' | 'none';
  otlpHistogram: 'exponential' | 'explicit';
  otlpBuckets: readonly number[] | undefined;
  otlpExponentialScale: number;
  otlpMaxPointsPerRequest: number;
  otlpTimeoutMs: number;
  otlpRetryBufferBytes: number;
  otlpRetryBaseMs: number;
  otlpRetryMaxMs: number;
  otlpRetryMaxAgeMs: number;
}

/** `k=v` strings (repeated flags) or a `{ k: v }` object (config file) as headers. */
function parseHeaders(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string') fail(`header '${k}' must have a string value`);
      out[k] = v;
    }
    return out;
  }
  for (const item of Array.isArray(raw) ? (raw as unknown[]) : [raw]) {
    if (typeof item !== 'string') fail('expected key=value');
    const i = item.indexOf('=');
    // The value may hold secrets: the message names the key only.
    if (i <= 0) fail(`expected key=value, got a header without '=' or without a key${i > 0 ? ` ('${item.slice(0, i)}')` : ''}`);
    out[item.slice(0, i).trim()] = item.slice(i + 1).trim();
  }
  return out;
}

function positiveMs(raw: unknown): number {
  const ms = parseDurationMs(raw);
  if (ms < 1) fail('must be at least 1ms');
  return ms;
}

/** This part's options, in help order. */
export const OTLP_OPTIONS: readonly OptionsOf<OtlpConfig>[] = [
  { key: 'otlpEndpoint', flag: '--otlp-endpoint', arg: '<url>', description: 'OTLP/HTTP receiver base URL; metrics go to <url>/v1/metrics (default http://127.0.0.1:4318)', parse: (raw) => { const u = parseString(raw); if (!/^https?:\/\/[^/]/.test(u)) fail(`expected an http(s) URL, got '${u}'`); return u.replace(/\/+$/, ''); }, default: () => 'http://127.0.0.1:4318' },
  { key: 'otlpHeaders', flag: '--otlp-header', arg: '<key=value>', repeatable: true, secret: true, description: 'request header for the OTLP receiver, repeatable (vendors\' auth, e.g. api-key=…)', parse: parseHeaders, default: () => ({}) },
  { key: 'otlpProtocol', flag: '--otlp-protocol', arg: '<http/protobuf|http/json>', description: 'OTLP body encoding (default http/protobuf)', parse: oneOf(['http/protobuf', 'http/json'] as const), default: () => 'http/protobuf' },
  { key: 'otlpCompression', flag: '--otlp-compression', arg: '<gzip|none>', description: 'OTLP request body compression (default gzip)', parse: oneOf(['gzip', 'none'] as const), default: () => 'gzip' },
  { key: 'otlpHistogram', flag: '--otlp-histogram', arg: '<exponential|explicit>', description: 'distributions as ExponentialHistogram or explicit-bucket Histogram (default exponential)', parse: oneOf(['exponential', 'explicit'] as const), default: () => 'exponential' },
  { key: 'otlpBuckets', flag: '--otlp-buckets', arg: '<list>', description: 'explicit bucket upper bounds, ascending, with --otlp-histogram explicit (default the OpenTelemetry SDK\'s 0,5,10,25,…,10000)', parse: (raw) => parseList(raw).map((b) => { const n = Number(b); if (!Number.isFinite(n)) fail(`bucket bound must be a number, got '${b}'`); return n; }), default: () => undefined },
  { key: 'otlpExponentialScale', flag: '--otlp-exponential-scale', arg: '<0-8>', description: 'scale of exponential histograms; 6 keeps every sketch bin apart (default 6)', parse: (raw) => { const n = parseInteger(0)(raw); if (n > 8) fail('must be at most 8'); return n; }, default: () => 6 },
  { key: 'otlpMaxPointsPerRequest', flag: '--otlp-max-points-per-request', arg: '<n>', description: 'data points per OTLP request at most (default 2000)', parse: parseInteger(1), default: () => 2000 },
  { key: 'otlpTimeoutMs', flag: '--otlp-timeout', arg: '<duration>', description: 'per-request timeout (default 10s)', parse: positiveMs, default: () => 10_000 },
  { key: 'otlpRetryBufferBytes', flag: '--otlp-retry-buffer-bytes', arg: '<bytes>', description: 'request bytes kept for retries; oldest dropped beyond (default 16777216)', parse: parseInteger(0), default: () => 16 * 1024 * 1024 },
  { key: 'otlpRetryBaseMs', flag: '--otlp-retry-base', arg: '<duration>', description: 'first retry backoff; doubles per consecutive failure (default 5s)', parse: positiveMs, default: () => 5000 },
  { key: 'otlpRetryMaxMs', flag: '--otlp-retry-max', arg: '<duration>', description: 'longest retry backoff (default 30s)', parse: positiveMs, default: () => 30_000 },
  { key: 'otlpRetryMaxAgeMs', flag: '--otlp-retry-max-age', arg: '<duration>', description: 'windows older than this are dropped from the retry buffer (default 5m)', parse: positiveMs, default: () => 300_000 },
];
