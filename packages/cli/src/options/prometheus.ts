/** Options of the Prometheus sink: its scrape endpoint and remote write. */
import { DEFAULT_BUCKETS, DEFAULT_QUANTILES, validateBuckets, validateQuantiles, type ObserverType } from '@metrics-distributor/sink-prometheus';
import { fail, oneOf, parseBool, parseDurationMs, parseInteger, parseList, parseListen, parseString, type ListenAddress, type OptionsOf } from './parse.js';

/** The validated settings of this part; durations are milliseconds. */
export interface PrometheusConfig {
  prometheusListen: ListenAddress | undefined;
  prometheusPath: string;
  prometheusTtlMs: number;
  prometheusMaxSeries: number;
  prometheusBuckets: readonly number[];
  prometheusDistributionsMs: boolean;
  prometheusTimerType: ObserverType;
  prometheusQuantiles: readonly number[];
  prometheusRemoteWriteUrl: string | undefined;
  prometheusRemoteWriteHeaders: Readonly<Record<string, string>>;
  prometheusRemoteWriteTimeoutMs: number;
  prometheusRemoteWriteMaxSamplesPerRequest: number;
  prometheusRemoteWriteRetryBufferBytes: number;
  prometheusRemoteWriteMaxAgeMs: number;
}

/** `k=v` items (repeated flag, or a list in the file), or a `{ k: v }` map in the file. */
function parseHeaders(raw: unknown): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  const set = (k: string, v: unknown): void => {
    const name = k.trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) fail(`'${k}' is not an HTTP header name`);
    if (typeof v !== 'string' || /[\r\n]/.test(v)) fail(`header ${name} needs a one-line string value`);
    out[name] = v.trim();
  };
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    for (const [k, v] of Object.entries(raw)) set(k, v);
    return out;
  }
  for (const item of Array.isArray(raw) ? (raw as unknown[]) : [raw]) {
    if (typeof item !== 'string' || item.indexOf('=') <= 0) fail('expected name=value');
    const i = item.indexOf('=');
    set(item.slice(0, i), item.slice(i + 1));
  }
  return out;
}

function atLeastOneMs(raw: unknown): number {
  const ms = parseDurationMs(raw);
  if (ms < 1) fail('must be at least 1ms');
  return ms;
}

/** Numbers from `0.5,0.9` or a list of numbers in the file. */
function parseNumbers(raw: unknown): number[] {
  if (Array.isArray(raw) && raw.every((x) => typeof x === 'number')) return raw;
  return parseList(raw).map((b) => {
    const n = Number(b);
    if (b === '' || Number.isNaN(n)) fail(`expected a number, got '${b}'`);
    return n;
  });
}

/** Bucket bounds from `0.1,0.5,1` or a list in the file; validated by the sink's own rules. */
function parseBuckets(raw: unknown): readonly number[] {
  return validateBuckets(parseNumbers(raw));
}

/** This part's options, in help order. */
export const PROMETHEUS_OPTIONS: readonly OptionsOf<PrometheusConfig>[] = [
  { key: 'prometheusListen', flag: '--prometheus-listen', arg: '<host:port>', description: 'scrape endpoint of the prometheus sink, or off with --prometheus-remote-write-url (default 127.0.0.1:9102, statsd_exporter\'s port)', parse: parseListen, default: () => ({ host: '127.0.0.1', port: 9102 }) },
  { key: 'prometheusPath', flag: '--prometheus-path', arg: '<path>', description: 'path of the exposition (default /metrics)', parse: (raw) => { if (typeof raw !== 'string' || !raw.startsWith('/')) fail(`expected a path starting with /, got ${JSON.stringify(raw)}`); return raw; }, default: () => '/metrics' },
  { key: 'prometheusTtlMs', flag: '--prometheus-ttl', arg: '<duration>', description: 'a series not updated this long disappears; keep it ≥ --counter-expiry (default 5m)', parse: atLeastOneMs, default: () => 300_000 },
  { key: 'prometheusMaxSeries', flag: '--prometheus-max-series', arg: '<n>', description: 'series kept at most; new ones beyond are dropped and counted (default 200000)', parse: parseInteger(1), default: () => 200_000 },
  { key: 'prometheusBuckets', flag: '--prometheus-buckets', arg: '<b1,b2,…>', description: 'histogram upper bounds, strictly ascending; seconds for ms timers (default 0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10)', parse: parseBuckets, default: () => DEFAULT_BUCKETS },
  { key: 'prometheusDistributionsMs', flag: '--prometheus-distributions-ms', description: 'distributions (|d) are milliseconds: expose them in seconds, as timers', parse: parseBool, default: () => false },
  { key: 'prometheusTimerType', flag: '--prometheus-timer-type', arg: '<histogram|summary>', description: 'expose ms timers, h histograms and d distributions as Prometheus histograms or summaries (statsd_exporter\'s observer_type; default histogram)', parse: oneOf<ObserverType>(['histogram', 'summary']), default: () => 'histogram' },
  { key: 'prometheusQuantiles', flag: '--prometheus-quantiles', arg: '<q1,q2,…>', description: 'quantiles of summaries, each window\'s, strictly between 0 and 1, ascending (default 0.5,0.9,0.99, statsd_exporter\'s)', parse: (raw) => validateQuantiles(parseNumbers(raw)), default: () => DEFAULT_QUANTILES },
  { key: 'prometheusRemoteWriteUrl', flag: '--prometheus-remote-write-url', arg: '<url>', secret: true, description: 'also remote-write every window there (Prometheus remote write 1.0), e.g. http://prometheus:9090/api/v1/write; user:password@ in it is Basic auth', parse: (raw) => { const u = parseString(raw); if (!/^https?:\/\/[^/]/.test(u)) fail('expected an http(s) URL'); return u; }, default: () => undefined },
  { key: 'prometheusRemoteWriteHeaders', flag: '--prometheus-remote-write-header', arg: '<name=value>', repeatable: true, secret: true, description: 'header sent with every remote write, repeatable (auth tokens, X-Scope-OrgID)', parse: parseHeaders, default: () => ({}) },
  { key: 'prometheusRemoteWriteTimeoutMs', flag: '--prometheus-remote-write-timeout', arg: '<duration>', description: 'per-request timeout (default 30s)', parse: atLeastOneMs, default: () => 30_000 },
  { key: 'prometheusRemoteWriteMaxSamplesPerRequest', flag: '--prometheus-remote-write-max-samples-per-request', arg: '<n>', description: 'samples per request at most; larger windows go in several (default 2000)', parse: parseInteger(1), default: () => 2000 },
  { key: 'prometheusRemoteWriteRetryBufferBytes', flag: '--prometheus-remote-write-retry-buffer-bytes', arg: '<bytes>', description: 'request bytes kept for retries; oldest dropped beyond (default 16777216)', parse: parseInteger(0), default: () => 16 * 1024 * 1024 },
  { key: 'prometheusRemoteWriteMaxAgeMs', flag: '--prometheus-remote-write-max-age', arg: '<duration>', description: 'windows older than this are dropped from the retry buffer, not sent late (default 1h)', parse: atLeastOneMs, default: () => 3_600_000 },
];
