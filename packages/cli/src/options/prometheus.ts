/** Options of the Prometheus sink (scrape endpoint). */
import { DEFAULT_BUCKETS, validateBuckets } from '@metrics-distributor/sink-prometheus';
import { fail, parseBool, parseDurationMs, parseInteger, parseList, parseListen, type ListenAddress, type OptionsOf } from './parse.js';

/** The validated settings of this part; durations are milliseconds. */
export interface PrometheusConfig {
  prometheusListen: ListenAddress;
  prometheusPath: string;
  prometheusTtlMs: number;
  prometheusMaxSeries: number;
  prometheusBuckets: readonly number[];
  prometheusDistributionsMs: boolean;
}

/** Bucket bounds from `0.1,0.5,1` or a list in the file; validated by the sink's own rules. */
function parseBuckets(raw: unknown): readonly number[] {
  const items = Array.isArray(raw) && raw.every((x) => typeof x === 'number') ? raw : parseList(raw).map((b) => {
    const n = Number(b);
    if (b === '' || Number.isNaN(n)) fail(`expected a number, got '${b}'`);
    return n;
  });
  return validateBuckets(items);
}

/** This part's options, in help order. */
export const PROMETHEUS_OPTIONS: readonly OptionsOf<PrometheusConfig>[] = [
  { key: 'prometheusListen', flag: '--prometheus-listen', arg: '<host:port>', description: 'scrape endpoint of the prometheus sink (default 127.0.0.1:9102, statsd_exporter\'s port)', parse: (raw) => parseListen(raw) ?? fail('the prometheus sink needs a listener; off is not accepted'), default: () => ({ host: '127.0.0.1', port: 9102 }) },
  { key: 'prometheusPath', flag: '--prometheus-path', arg: '<path>', description: 'path of the exposition (default /metrics)', parse: (raw) => { if (typeof raw !== 'string' || !raw.startsWith('/')) fail(`expected a path starting with /, got ${JSON.stringify(raw)}`); return raw; }, default: () => '/metrics' },
  { key: 'prometheusTtlMs', flag: '--prometheus-ttl', arg: '<duration>', description: 'a series not updated this long disappears; keep it ≥ --counter-expiry (default 5m)', parse: (raw) => { const ms = parseDurationMs(raw); if (ms < 1) fail('must be at least 1ms'); return ms; }, default: () => 300_000 },
  { key: 'prometheusMaxSeries', flag: '--prometheus-max-series', arg: '<n>', description: 'series kept at most; new ones beyond are dropped and counted (default 200000)', parse: parseInteger(1), default: () => 200_000 },
  { key: 'prometheusBuckets', flag: '--prometheus-buckets', arg: '<b1,b2,…>', description: 'histogram upper bounds, strictly ascending; seconds for ms timers (default 0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10)', parse: parseBuckets, default: () => DEFAULT_BUCKETS },
  { key: 'prometheusDistributionsMs', flag: '--prometheus-distributions-ms', description: 'distributions (|d) are milliseconds: expose them in seconds, as timers', parse: parseBool, default: () => false },
];
