/** Options of the Graphite sink; the naming ones carry etsy statsd's graphite backend names. */
import { fail, oneOf, parseBool, parseDurationMs, parseInteger, parseString, type OptionsOf } from './parse.js';

/** Where carbon's line receiver is. */
export interface CarbonAddress {
  host: string;
  port: number;
}

/** The validated settings of this part; durations are milliseconds, sizes bytes. */
export interface GraphiteConfig {
  graphiteAddress: CarbonAddress;
  graphiteLegacyNamespace: boolean;
  graphiteGlobalPrefix: string;
  graphitePrefixCounter: string;
  graphitePrefixTimer: string;
  graphitePrefixGauge: string;
  graphitePrefixSet: string;
  graphiteGlobalSuffix: string;
  graphiteFlushCounts: boolean;
  graphiteTags: 'graphite' | 'name' | 'drop';
  graphiteHostTag: boolean;
  graphiteMaxPayloadBytes: number;
  graphiteRetryBufferBytes: number;
  graphiteRetryBaseMs: number;
  graphiteRetryMaxMs: number;
  graphiteRetryMaxAgeMs: number;
  graphiteConnectTimeoutMs: number;
  graphiteWriteTimeoutMs: number;
}

/** `host:port` or `[v6]:port`; unlike a listen address a destination needs a host. */
function parseAddress(raw: unknown): CarbonAddress {
  const s = parseString(raw);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (m === null) fail(`expected host:port, got '${s}'`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) fail(`port out of range in '${s}'`);
  return { host: m[1] ?? m[2] ?? '', port };
}

/** Dot-separated Graphite nodes, or empty for none (etsy's `''`). */
function parseNodes(raw: unknown): string {
  if (typeof raw !== 'string' || !/^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)?$/.test(raw)) {
    fail(`expected dot-separated nodes of letters, digits, '_' and '-' (or '' for none), got ${JSON.stringify(raw)}`);
  }
  return raw;
}

function atLeast1ms(raw: unknown): number {
  const ms = parseDurationMs(raw);
  if (ms < 1) fail('must be at least 1ms');
  return ms;
}

/** This part's options, in help order. */
export const GRAPHITE_OPTIONS: readonly OptionsOf<GraphiteConfig>[] = [
  { key: 'graphiteAddress', flag: '--graphite-address', arg: '<host:port>', description: "carbon's plaintext line receiver for --sink graphite (default 127.0.0.1:2003)", parse: parseAddress, default: () => ({ host: '127.0.0.1', port: 2003 }) },
  { key: 'graphiteLegacyNamespace', flag: '--graphite-legacy-namespace', arg: '<true|false>', description: "etsy's legacy names stats.<name> and stats_counts.<name>, per-type prefixes ignored (default true); false: stats.counters.<name>.rate/.count", parse: parseBool, default: () => true },
  { key: 'graphiteGlobalPrefix', flag: '--graphite-global-prefix', arg: '<nodes>', description: "first node of every name but legacy counts (default stats; '' for none)", parse: parseNodes, default: () => 'stats' },
  { key: 'graphitePrefixCounter', flag: '--graphite-prefix-counter', arg: '<nodes>', description: 'counter node with the legacy namespace off (default counters)', parse: parseNodes, default: () => 'counters' },
  { key: 'graphitePrefixTimer', flag: '--graphite-prefix-timer', arg: '<nodes>', description: 'timer and distribution node with the legacy namespace off (default timers)', parse: parseNodes, default: () => 'timers' },
  { key: 'graphitePrefixGauge', flag: '--graphite-prefix-gauge', arg: '<nodes>', description: 'gauge node with the legacy namespace off (default gauges)', parse: parseNodes, default: () => 'gauges' },
  { key: 'graphitePrefixSet', flag: '--graphite-prefix-set', arg: '<nodes>', description: 'set node with the legacy namespace off (default sets; sets are <node>.<name>.count)', parse: parseNodes, default: () => 'sets' },
  { key: 'graphiteGlobalSuffix', flag: '--graphite-global-suffix', arg: '<nodes>', description: 'last node of every name, e.g. the host (default none)', parse: parseNodes, default: () => '' },
  { key: 'graphiteFlushCounts', flag: '--graphite-flush-counts', arg: '<true|false>', description: "also send counter counts, etsy's flush_counts (default true)", parse: parseBool, default: () => true },
  { key: 'graphiteTags', flag: '--graphite-tags', arg: '<graphite|name|drop>', description: 'tags as Graphite 1.1 tags name;k=v, folded into the name as .k_v, or dropped (default graphite)', parse: oneOf(['graphite', 'name', 'drop'] as const), default: () => 'graphite' },
  { key: 'graphiteHostTag', flag: '--graphite-host-tag', description: 'add the series host as a host tag (off: etsy names carry no host)', parse: parseBool, default: () => false },
  { key: 'graphiteMaxPayloadBytes', flag: '--graphite-max-payload-bytes', arg: '<bytes>', description: 'bytes of whole lines per write at most (default 65536)', parse: parseInteger(256), default: () => 65_536 },
  { key: 'graphiteRetryBufferBytes', flag: '--graphite-retry-buffer-bytes', arg: '<bytes>', description: 'line bytes kept while carbon is away; oldest dropped beyond (default 16777216)', parse: parseInteger(0), default: () => 16 * 1024 * 1024 },
  { key: 'graphiteRetryBaseMs', flag: '--graphite-retry-base', arg: '<duration>', description: 'first reconnect backoff; doubles per consecutive failure (default 1s)', parse: atLeast1ms, default: () => 1000 },
  { key: 'graphiteRetryMaxMs', flag: '--graphite-retry-max', arg: '<duration>', description: 'longest reconnect backoff (default 30s)', parse: atLeast1ms, default: () => 30_000 },
  { key: 'graphiteRetryMaxAgeMs', flag: '--graphite-retry-max-age', arg: '<duration>', description: 'lines of windows older than this are dropped from the retry buffer (default 1h)', parse: atLeast1ms, default: () => 3_600_000 },
  { key: 'graphiteConnectTimeoutMs', flag: '--graphite-connect-timeout', arg: '<duration>', description: 'time to connect to carbon (default 5s)', parse: atLeast1ms, default: () => 5000 },
  { key: 'graphiteWriteTimeoutMs', flag: '--graphite-write-timeout', arg: '<duration>', description: 'a write carbon does not take in this long drops the connection and is retried (default 10s)', parse: atLeast1ms, default: () => 10_000 },
];
