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
  statsdUdpKernelDropsPollMs: number;
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
  workers: number | 'auto';
  statsdTcp: ListenAddress | undefined;
  statsdUnix: string | undefined;
  statsdUnixMode: number;
  statsdTcpMaxLineBytes: number;
  statsdTcpMaxConnections: number;
  statsdTcpIdleTimeoutMs: number;
  http: ListenAddress | undefined;
  httpAuth: readonly HttpCredential[];
  httpMaxBodyBytes: number;
  httpAllowUnauthenticated: boolean;
  vercelSecret: string | undefined;
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

/** One HTTP Basic credential for log drains, optionally mapped to an `app` tag. */
export interface HttpCredential {
  user?: string;
  password?: string;
  app?: string;
}

type Raw = unknown;

/** One option: its config-file key, its CLI flag and how a raw value becomes a typed one. */
export interface OptionSpec<K extends keyof ServerConfig = keyof ServerConfig> {
  key: K;
  flag: string;
  arg?: string;
  description: string;
  repeatable?: boolean;
  /** Environment variable read when neither a flag nor the file sets the option (flags > env > file). */
  env?: string;
  /** Never echo the value in errors or logs. */
  secret?: boolean;
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

function parseString(raw: Raw): string {
  if (typeof raw !== 'string' || raw.length === 0) fail('expected a non-empty string');
  return raw;
}

function parseOctal(raw: Raw): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^0?o?[0-7]{3,4}$/.test(raw) ? parseInt(raw.replace(/^0?o?/, ''), 8) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 0o7777) fail(`expected an octal file mode such as 660, got ${JSON.stringify(raw)}`);
  return n;
}

/** `user:pass`, `token@`-style bare user, `:password`, or `{ user, password, app }` objects in a file. */
function parseCredentials(raw: Raw): HttpCredential[] {
  const items = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  return items.map((item) => {
    if (typeof item === 'string') {
      const i = item.indexOf(':');
      const user = i < 0 ? item : item.slice(0, i);
      const password = i < 0 ? undefined : item.slice(i + 1);
      if (user === '' && (password === undefined || password === '')) fail('a credential needs a user or a password');
      return { ...(user !== '' ? { user } : {}), ...(password !== undefined && password !== '' ? { password } : {}) };
    }
    if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      const o = item as Record<string, unknown>;
      for (const k of Object.keys(o)) if (!['user', 'password', 'app'].includes(k)) fail(`unknown credential field '${k}'`);
      const cred: HttpCredential = {};
      for (const k of ['user', 'password', 'app'] as const) {
        const v = o[k];
        if (v === undefined) continue;
        if (typeof v !== 'string') fail(`credential field '${k}' must be a string`);
        cred[k] = v;
      }
      if (cred.user === undefined && cred.password === undefined) fail('a credential needs a user or a password');
      return cred;
    }
    return fail('expected user:pass or { user, password, app }');
  });
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
  { key: 'statsdUdpKernelDropsPollMs', flag: '--statsd-udp-kernel-drops-poll', arg: '<duration>', description: "how often the kernel's count of datagrams dropped on the UDP socket (Linux) is read into dropped{reason:kernel_rcvbuf}; 0 turns it off (default 10s)", parse: (raw) => (raw === '0' || raw === 0 ? 0 : parseDurationMs(raw)), default: () => 10_000 },
  { key: 'flushIntervalMs', flag: '--flush-interval', arg: '<duration>', description: 'window length, aligned to the wall clock, e.g. 10s or 500ms (default 10s)', parse: (raw) => { const ms = parseDurationMs(raw); if (ms < 1) fail('must be at least 1ms'); return ms; }, default: () => 10_000 },
  { key: 'sinks', flag: '--sink', arg: '<name>', repeatable: true, description: 'sink to send windows to, repeatable: console, datadog (default datadog when DD_API_KEY is set, else console)', parse: (raw) => { const l = parseList(raw); if (l.length === 0) fail('at least one sink is needed'); return l; }, default: () => ['console'] },
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
  { key: 'statsdTcp', flag: '--statsd-tcp', arg: '<host:port|off>', description: 'StatsD TCP listener, newline framed (default 127.0.0.1:8125)', parse: parseListen, default: () => ({ host: '127.0.0.1', port: 8125 }) },
  { key: 'statsdUnix', flag: '--statsd-unix', arg: '<path|off>', description: 'StatsD Unix stream socket path (default off)', parse: (raw) => (raw === 'off' ? undefined : parseString(raw)), default: () => undefined },
  { key: 'statsdUnixMode', flag: '--statsd-unix-mode', arg: '<octal>', description: 'file mode of the Unix socket (default 660)', parse: parseOctal, default: () => 0o660 },
  { key: 'statsdTcpMaxLineBytes', flag: '--statsd-tcp-max-line-bytes', arg: '<bytes>', description: 'longer TCP lines are discarded and counted (default 65536)', parse: parseInteger(1), default: () => 65_536 },
  { key: 'statsdTcpMaxConnections', flag: '--statsd-tcp-max-connections', arg: '<n>', description: 'concurrent TCP/Unix connections at most (default 1024)', parse: parseInteger(1), default: () => 1024 },
  { key: 'statsdTcpIdleTimeoutMs', flag: '--statsd-tcp-idle-timeout', arg: '<duration>', description: 'close connections idle this long (default 5m)', parse: parseDurationMs, default: () => 300_000 },
  { key: 'http', flag: '--http', arg: '<host:port|off>', description: 'HTTP log-drain listener (default 127.0.0.1:8080)', parse: parseListen, default: () => ({ host: '127.0.0.1', port: 8080 }) },
  { key: 'httpAuth', flag: '--http-auth', arg: '<user:pass>', repeatable: true, secret: true, description: 'HTTP Basic credential for drains, repeatable (user:pass, token@ as user, or :password)', parse: parseCredentials, default: () => [] },
  { key: 'httpMaxBodyBytes', flag: '--http-max-body-bytes', arg: '<bytes>', description: 'largest drain body, decompressed (default 5242880)', parse: parseInteger(1), default: () => 5 * 1024 * 1024 },
  { key: 'httpAllowUnauthenticated', flag: '--http-allow-unauthenticated', description: 'allow a non-loopback HTTP listener without credentials', parse: parseBool, default: () => false },
  { key: 'vercelSecret', flag: '--vercel-secret', arg: '<secret>', secret: true, description: 'verify x-vercel-signature with this secret', parse: parseString, default: () => undefined },
  { key: 'datadogApiKey', flag: '--datadog-api-key', arg: '<key>', env: 'DD_API_KEY', secret: true, description: 'Datadog API key (or DD_API_KEY); when set, the default sink is datadog', parse: parseString, default: () => undefined },
  { key: 'datadogSite', flag: '--datadog-site', arg: '<site>', env: 'DD_SITE', description: 'Datadog site, e.g. datadoghq.eu (or DD_SITE; default datadoghq.com)', parse: parseString, default: () => 'datadoghq.com' },
  { key: 'datadogUrl', flag: '--datadog-url', arg: '<url>', description: 'override the intake base URL (proxies, tests)', parse: (raw) => { const u = parseString(raw); if (!/^https?:\/\/[^/]/.test(u)) fail(`expected an http(s) URL, got '${u}'`); return u.replace(/\/+$/, ''); }, default: () => undefined },
  { key: 'datadogTimeoutMs', flag: '--datadog-timeout', arg: '<duration>', description: 'per-request timeout (default 20s)', parse: parseDurationMs, default: () => 20_000 },
  { key: 'datadogRetryBufferBytes', flag: '--datadog-retry-buffer-bytes', arg: '<bytes>', description: 'payload bytes kept for retries; oldest dropped beyond (default 16777216)', parse: parseInteger(0), default: () => 16 * 1024 * 1024 },
  { key: 'datadogRetryBaseMs', flag: '--datadog-retry-base', arg: '<duration>', description: 'first retry backoff; doubles per consecutive failure (default 2s)', parse: (raw) => { const ms = parseDurationMs(raw); if (ms < 1) fail('must be at least 1ms'); return ms; }, default: () => 2000 },
  { key: 'datadogRetryMaxMs', flag: '--datadog-retry-max', arg: '<duration>', description: 'longest retry backoff (default 64s)', parse: (raw) => { const ms = parseDurationMs(raw); if (ms < 1) fail('must be at least 1ms'); return ms; }, default: () => 64_000 },
  { key: 'datadogRetryMaxAgeMs', flag: '--datadog-retry-max-age', arg: '<duration>', description: 'series and sketches whose window is older are dropped from the retry buffer (Datadog refuses points over 1 h old; checks keep 10m at most) (default 1h)', parse: (raw) => { const ms = parseDurationMs(raw); if (ms < 1) fail('must be at least 1ms'); return ms; }, default: () => 3_600_000 },
  { key: 'datadogCompression', flag: '--datadog-compression', arg: '<gzip|deflate>', description: 'request body compression (default gzip)', parse: oneOf(['gzip', 'deflate'] as const), default: () => 'gzip' },
  { key: 'workers', flag: '--workers', arg: '<n|auto>', description: 'processes receiving UDP on the one port; windows are merged before flushing (default 1; auto = one per core)', parse: (raw) => (raw === 'auto' ? 'auto' : parseInteger(1)(raw)), default: () => 1 },
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
export function buildConfig(
  fromFile: Record<string, unknown>,
  fromFlags: Partial<Record<keyof ServerConfig, unknown>>,
  source = 'config file',
  env: NodeJS.ProcessEnv = process.env,
): ServerConfig {
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
    const fromEnv = opt.env !== undefined && env[opt.env] !== undefined && env[opt.env] !== '' ? env[opt.env] : undefined;
    const raw = fromFlag ?? fromEnv ?? fromFile[opt.key];
    const where = fromFlag !== undefined ? `option ${opt.flag}` : fromEnv !== undefined ? `environment variable ${opt.env}` : `key '${opt.key}' in ${source}`;
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
  // The Datadog agent's habit: an API key in the environment means "ship to Datadog".
  if (fromFlags.sinks === undefined && fromFile['sinks'] === undefined && out['datadogApiKey'] !== undefined) out['sinks'] = ['datadog'];
  const sinks = out['sinks'] as string[];
  if (sinks.includes('datadog') && out['datadogApiKey'] === undefined) {
    throw new MdError('MD_ERR_CONFIG_INVALID', 'invalid option --sink: the datadog sink needs --datadog-api-key or DD_API_KEY');
  }
  return Object.freeze(out) as unknown as ServerConfig;
}
