/** The value parsers every option module shares: each throws a config MdError saying what it expected. */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MdError, type HistogramAggregate } from '@metrics-distributor/core';

/** A listener address, or `undefined` when the listener is off. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** One HTTP Basic credential for log drains, optionally mapped to an `app` tag. */
export interface HttpCredential {
  user?: string;
  password?: string;
  app?: string;
}

type Raw = unknown;

/** One option: its config-file key, its CLI flag and how a raw value becomes a typed one. */
export interface OptionSpec<C, K extends keyof C = keyof C> {
  key: K;
  /** Other config-file names of the key: the Datadog agent's, so a `datadog.yaml` block can be pasted. */
  fileKeys?: readonly string[];
  /** Absent for blocks only a config file can hold (mapper profiles, tag filter rules). */
  flag?: string;
  arg?: string;
  description: string;
  repeatable?: boolean;
  /** Environment variable read when neither a flag nor the file sets the option (flags > env > file). */
  env?: string;
  /** Never echo the value in errors or logs. */
  secret?: boolean;
  parse: (raw: Raw) => C[K];
  default: () => C[K];
}

/** The options of one config part `C`, each typed by its own key. */
export type OptionsOf<C> = { [K in keyof C]: OptionSpec<C, K> }[keyof C];

/** pino level names accepted by `--log-level`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
/** Histogram aggregates accepted by `--histogram-aggregates`. */
export const HISTOGRAM_AGGREGATES: readonly HistogramAggregate[] = ['max', 'min', 'median', 'avg', 'sum', 'count'];

/** Throws the config error every parser raises; `buildConfig` adds where the value came from. */
export function fail(msg: string): never {
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

/** A parser of integers at least `min`, from a number or a string of digits. */
export function parseInteger(min: number) {
  return (raw: Raw): number => {
    const n = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : raw;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min) fail(`expected an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
}

/** A non-empty string. */
export function parseString(raw: Raw): string {
  if (typeof raw !== 'string' || raw.length === 0) fail('expected a non-empty string');
  return raw;
}

/** A file mode in octal, e.g. `660`. */
export function parseOctal(raw: Raw): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^0?o?[0-7]{3,4}$/.test(raw) ? parseInt(raw.replace(/^0?o?/, ''), 8) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 0o7777) fail(`expected an octal file mode such as 660, got ${JSON.stringify(raw)}`);
  return n;
}

/** `user:pass`, `token@`-style bare user, `:password`, or `{ user, password, app }` objects in a file. */
export function parseCredentials(raw: Raw): HttpCredential[] {
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

/** `true`/`false`, as booleans or strings. */
export function parseBool(raw: Raw): boolean {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  return fail(`expected true or false, got ${JSON.stringify(raw)}`);
}

/** A comma-separated string or a list, trimmed, empty items left out. */
export function parseList(raw: Raw): string[] {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : fail(`expected a list, got ${JSON.stringify(raw)}`);
  return items.map((x) => {
    if (typeof x !== 'string' && typeof x !== 'number') fail(`expected a list of strings, got ${JSON.stringify(raw)}`);
    return String(x).trim();
  }).filter((x) => x.length > 0);
}

/** A parser accepting exactly one of `values`. */
export function oneOf<T extends string>(values: readonly T[]) {
  return (raw: Raw): T => {
    if (typeof raw !== 'string' || !values.includes(raw as T)) fail(`expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
    return raw as T;
  };
}

/** Reads a JSON (`.json`) or YAML file that must hold an object (empty: `{}`); `what` names it in errors. */
export function readDataFile(path: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new MdError('MD_ERR_CONFIG_INVALID', `cannot read ${what} ${path}`, { cause });
  }
  let data: unknown;
  try {
    data = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (cause) {
    throw new MdError('MD_ERR_CONFIG_INVALID', `${what} ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}`, { cause });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new MdError('MD_ERR_CONFIG_INVALID', `${what} ${path} must hold an object`);
  return data as Record<string, unknown>;
}
