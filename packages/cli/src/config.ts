import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MdError, type HistogramAggregate } from '@metrics-distributor/core';

/** A listener address, or `undefined` when the listener is off. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** The validated, frozen server configuration. Durations are milliseconds. */
export interface ServerConfig {
  statsdUdp: ListenAddress | undefined;
  statsdUdpRecvBufferBytes: number;
  statsdUdpMaxDatagramBytes: number;
  flushIntervalMs: number;
  sinks: readonly string[];
  hostname: string;
  logLevel: string;
  histogramAggregates: readonly HistogramAggregate[];
  histogramPercentiles: readonly number[];
  maxContexts: number;
  gaugeDeltas: boolean;
  countersAs: 'rate' | 'count';
  counterExpiryMs: number;
  shutdownTimeoutMs: number;
  tags: readonly string[];
  selfMetrics: boolean;
  sinkQueueMaxBatches: number;
}

type Raw = unknown;

/** One option: its config-file key, its CLI flag and how a raw value becomes a typed one. */
export interface OptionSpec<K extends keyof ServerConfig = keyof ServerConfig> {
  key: K;
  flag: string;
  arg?: string;
  description: string;
  repeatable?: boolean;
  parse: (raw: Raw) => ServerConfig[K];
  default: () => ServerConfig[K];
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const HISTOGRAM_AGGREGATES: readonly HistogramAggregate[] = ['max', 'min', 'median', 'avg', 'sum', 'count'];

function fail(msg: string): never {
  throw new MdError('MD_ERR_CONFIG_INVALID', msg);
}

/** Parses `10s`, `500ms`, `1m`, `1h` (or a number of milliseconds from a config file). */
export function parseDurationMs(raw: Raw): number {
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0) return Math.round(raw);
  if (typeof raw !== 'string') fail(`expected a duration such as 10s or 500ms, got ${JSON.stringify(raw)}`);
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(raw.trim());
  if (m === null) fail(`expected a duration such as 10s or 500ms, got '${raw}'`);
  const n = Number(m[1]);
  const unit = m[2] as 'ms' | 's' | 'm' | 'h';
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit];
  return Math.round(n * factor);
}

/** Parses `host:port`, `[v6]:port`, `:port` or `off`. */
export function parseListen(raw: Raw): ListenAddress | undefined {
  if (typeof raw !== 'string') fail(`expected host:port or off, got ${JSON.stringify(raw)}`);
  if (raw === 'off') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(raw);
  if (m === null) fail(`expected host:port or off, got '${raw}'`);
  const port = Number(m[3]);
  if (port > 65535) fail(`port out of range in '${raw}'`);
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

function parseInteger(min: number) {
  return (raw: Raw): number => {
    const n = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : raw;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min) fail(`expected an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
}

function parseBool(raw: Raw): boolean {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  return fail(`expected true or false, got ${JSON.stringify(raw)}`);
}

function parseList(raw: Raw): string[] {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : fail(`expected a list, got ${JSON.stringify(raw)}`);
  return items.map((x) => {
    if (typeof x !== 'string' && typeof x !== 'number') fail(`expected a list of strings, got ${JSON.stringify(raw)}`);
    return String(x).trim();
  }).filter((x) => x.length > 0);
}

function oneOf<T extends string>(values: readonly T[]) {
  return (raw: Raw): T => {
    if (typeof raw !== 'string' || !values.includes(raw as T)) fail(`expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
    return raw as T;
  };
}

/** Every option, in help order. Later front-ends and sinks add theirs here. */
export const OPTIONS: readonly OptionSpec[] = [
  { key: 'statsdUdp', flag: '--statsd-udp', arg: '<host:port|off>', description: 'StatsD/DogStatsD UDP listener (default 127.0.0.1:8125)', parse: parseListen, default: () => ({ host: '127.0.0.1', port: 8125 }) },
  { key: 'statsdUdpRecvBufferBytes', flag: '--statsd-udp-recv-buffer-bytes', arg: '<bytes>', description: 'SO_RCVBUF requested for the UDP socket (default 8388608)', parse: parseInteger(0), default: () => 8 * 1024 * 1024 },
  { key: 'statsdUdpMaxDatagramBytes', flag: '--statsd-udp-max-datagram-bytes', arg: '<bytes>', description: 'longer datagrams are truncated and counted (default 8192)', parse: parseInteger(1), default: () => 8192 },
  { key: 'flushIntervalMs', flag: '--flush-interval', arg: '<duration>', description: 'window length, aligned to the wall clock, e.g. 10s or 500ms (default 10s)', parse: (raw) => { const ms = parseDurationMs(raw); if (ms < 1) fail('must be at least 1ms'); return ms; }, default: () => 10_000 },
  { key: 'sinks', flag: '--sink', arg: '<name>', repeatable: true, description: 'sink to send windows to, repeatable: console (default console)', parse: (raw) => { const l = parseList(raw); if (l.length === 0) fail('at least one sink is needed'); return l; }, default: () => ['console'] },
  { key: 'hostname', flag: '--hostname', arg: '<name>', description: 'host put on series without a host: tag (default: the OS hostname)', parse: (raw) => { if (typeof raw !== 'string') fail(`expected a string, got ${JSON.stringify(raw)}`); return raw; }, default: () => osHostname() },
  { key: 'logLevel', flag: '--log-level', arg: '<level>', description: `log level: ${LOG_LEVELS.join(', ')} (default info)`, parse: oneOf(LOG_LEVELS), default: () => 'info' },
  { key: 'histogramAggregates', flag: '--histogram-aggregates', arg: '<list>', description: 'comma list of max,min,median,avg,sum,count (default max,median,avg,count)', parse: (raw) => parseList(raw).map((a) => oneOf(HISTOGRAM_AGGREGATES)(a)), default: () => ['max', 'median', 'avg', 'count'] },
  { key: 'histogramPercentiles', flag: '--histogram-percentiles', arg: '<list>', description: 'comma list of quantiles in (0,1], e.g. 0.95,0.99 (default 0.95)', parse: (raw) => parseList(raw).map((p) => { const q = Number(p); if (!(q > 0 && q <= 1) || !/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(p)) fail(`percentile must be in (0, 1], got '${p}'`); return q; }), default: () => [0.95] },
  { key: 'maxContexts', flag: '--max-contexts', arg: '<n>', description: 'live contexts at most; new ones beyond are dropped and counted (default 200000)', parse: parseInteger(1), default: () => 200_000 },
  { key: 'gaugeDeltas', flag: '--gauge-deltas', description: 'Etsy-style signed gauge deltas (+4|g); off by default, as in the Datadog agent', parse: parseBool, default: () => false },
  { key: 'countersAs', flag: '--counters-as', arg: '<rate|count>', description: 'flush counters as a per-second rate (agent default) or a count', parse: oneOf(['rate', 'count'] as const), default: () => 'rate' },
  { key: 'counterExpiryMs', flag: '--counter-expiry', arg: '<duration>', description: 'an idle counter reports 0 for this long (default 300s)', parse: parseDurationMs, default: () => 300_000 },
  { key: 'shutdownTimeoutMs', flag: '--shutdown-timeout', arg: '<duration>', description: 'on SIGTERM/SIGINT, time given to sinks to deliver the last window (default 10s)', parse: parseDurationMs, default: () => 10_000 },
  { key: 'tags', flag: '--tags', arg: '<list>', description: 'comma list of tags added to every series, event and check', parse: parseList, default: () => [] },
  { key: 'selfMetrics', flag: '--self-metrics', arg: '<true|false>', description: 'emit metrics_distributor.* self-metrics each window (default true)', parse: parseBool, default: () => true },
  { key: 'sinkQueueMaxBatches', flag: '--sink-queue-max-batches', arg: '<n>', description: 'closed windows queued per sink before the oldest is dropped (default 16)', parse: parseInteger(1), default: () => 16 },
];

/** Finds the closest known key, for "did you mean" hints. */
function closest(key: string): string | undefined {
  const lower = key.toLowerCase().replace(/[-_]/g, '');
  return OPTIONS.find((o) => o.key.toLowerCase().startsWith(lower.slice(0, 6)))?.key;
}

/** Reads a JSON or YAML config file into a plain object, keys not yet validated. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new MdError('MD_ERR_CONFIG_INVALID', `cannot read config file ${path}`, { cause });
  }
  let data: unknown;
  try {
    data = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (cause) {
    throw new MdError('MD_ERR_CONFIG_INVALID', `config file ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}`, { cause });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new MdError('MD_ERR_CONFIG_INVALID', `config file ${path} must hold an object`);
  return data as Record<string, unknown>;
}

/**
 * Validates once and freezes: defaults < config file < command-line flags.
 * Unknown file keys are rejected with an error that names the key.
 */
export function buildConfig(fromFile: Record<string, unknown>, fromFlags: Partial<Record<keyof ServerConfig, unknown>>, source = 'config file'): ServerConfig {
  const byKey = new Map(OPTIONS.map((o) => [o.key as string, o]));
  for (const key of Object.keys(fromFile)) {
    if (!byKey.has(key)) {
      const hint = closest(key);
      throw new MdError('MD_ERR_CONFIG_UNKNOWN_KEY', `unknown key '${key}' in ${source}${hint !== undefined ? ` (did you mean '${hint}'?)` : ''}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const opt of OPTIONS) {
    const fromFlag = fromFlags[opt.key];
    const raw = fromFlag !== undefined ? fromFlag : fromFile[opt.key];
    const where = fromFlag !== undefined ? `option ${opt.flag}` : `key '${opt.key}' in ${source}`;
    if (raw === undefined) {
      out[opt.key] = opt.default();
      continue;
    }
    try {
      out[opt.key] = opt.parse(raw);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new MdError('MD_ERR_CONFIG_INVALID', `invalid ${where}: ${msg}`, { cause: err });
    }
  }
  return Object.freeze(out) as unknown as ServerConfig;
}
