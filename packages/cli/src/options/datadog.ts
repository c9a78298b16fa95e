/** Options of the Datadog sink. */
import { fail, parseDurationMs, parseInteger, parseString, oneOf, type OptionsOf } from './parse.js';

/** The validated settings of this part; durations are milliseconds. */
export interface DatadogConfig {
  datadogApiKey: string | undefined;
  datadogSite: string;
  datadogUrl: string | undefined;
  datadogTimeoutMs: number;
  datadogRetryBufferBytes: number;
  datadogRetryBaseMs: number;
  datadogRetryMaxMs: number;
  datadogRetryMaxAgeMs: number;
  datadogCompression: 'gzip' | 'deflate';
}

/** This part's options, in help order. */
export const DATADOG_OPTIONS: readonly OptionsOf<DatadogConfig>[] = [
  { key: 'datadogApiKey', flag: '--datadog-api-key', arg: '<key>', env: 'DD_API_KEY', secret: true, description: 'Datadog API key (or DD_API_KEY); when set, the default sink is datadog', parse: parseString, default: () => undefined },
  { key: 'datadogSite', flag: '--datadog-site', arg: '<site>', env: 'DD_SITE', description: 'Datadog site, e.g. datadoghq.eu (or DD_SITE; default datadoghq.com)', parse: parseString, default: () => 'datadoghq.com' },
  { key: 'datadogUrl', flag: '--datadog-url', arg: '<url>', description: 'override the intake base URL (proxies, tests)', parse: (raw) => { const u = parseString(raw); if (!/^https?:\/\/[^/]/.test(u)) fail(`expected an http(s) URL, got '${u}'`); return u.replace(/\/+$/, ''); }, default: () => undefined },
  { key: 'datadogTimeoutMs', flag: '--datadog-timeout', arg: '<duration>', description: 'per-request timeout (default 20s)', parse: parseDurationMs, default: () => 20_000 },
  { key: 'datadogRetryBufferBytes', flag: '--datadog-retry-buffer-bytes', arg: '<bytes>', description: 'payload bytes kept for retries; oldest dropped beyond (default 16777216)', parse: parseInteger(0), default: () => 16 * 1024 * 1024 },
  { key: 'datadogRetryBaseMs', flag: '--datadog-retry-base', arg: '<duration>', description: 'first retry backoff; doubles per consecutive failure (default 2s)', parse: (raw) => { const ms = parseDurationMs(raw); if (ms < 1) fail('must be at least 1ms'); return ms; }, default: () => 2000 },
  { key: 'datadogRetryMaxMs', flag: '--datadog-retry-max', arg: '<duration>', description: 'longest retry backoff (default 64s)', parse: (raw) => { const ms = parseDurationMs(raw); if (ms < 1) fail('must be at least 1ms'); return ms; }, default: () => 64_000 },
  { key: 'datadogRetryMaxAgeMs', flag: '--datadog-retry-max-age', arg: '<duration>', description: 'series and sketches whose window is older are dropped from the retry buffer (Datadog refuses points over 1 h old; checks keep 10m at most) (default 1h)', parse: (raw) => { const ms = parseDurationMs(raw); if (ms < 1) fail('must be at least 1ms'); return ms; }, default: () => 3_600_000 },
  { key: 'datadogCompression', flag: '--datadog-compression', arg: '<gzip|deflate>', description: 'request body compression (default gzip)', parse: oneOf(['gzip', 'deflate'] as const), default: () => 'gzip' },
];
