/**
 * The one table of what Heroku and l2met lines become: metric names and StatsD types, the tag rules
 * and the value rules. The readers (`router-line.ts`, `app-line.ts`, `platform-lines.ts`) only find
 * fields in a line; every name, tag and accepted value comes from here, so a rule changes in one place.
 *
 * Naming rule: in Heroku's own keys `-` becomes `_` (`sample#active-connections` →
 * `heroku.postgres.active_connections`), so every `heroku.*` name is snake_case. App (l2met) names are
 * kept as written, except that characters outside `A-Za-z0-9_.-/` become `_`.
 *
 * Tag rule: only bounded values become tags. `request_id`, `fwd`, `path`, `host` and the per-run
 * `dyno=heroku.<app>.<uuid>` id are never tags.
 */
import type { DropReason, Sample } from '@metrics-distributor/core';
import { scanUnitValue, scanned } from './logfmt.js';

/** Every fixed-name metric a Heroku line becomes, with its StatsD type. */
export const HEROKU_METRICS = {
  /** +1 per router line; tagged method, status, status_class, dyno, dyno_type. */
  routerRequest: { name: 'heroku.router.request', type: 'c' },
  /** Router `connect=` (ms); tagged method, status_class, dyno, dyno_type. */
  routerConnect: { name: 'heroku.router.connect', type: 'ms' },
  /** Router `service=` (ms); tagged as the connect timer. */
  routerService: { name: 'heroku.router.service', type: 'ms' },
  /** Router `bytes=`; tagged as the connect timer. */
  routerBytes: { name: 'heroku.router.bytes', type: 'h' },
  /** +1 per router `at=error code=Hxx` line; tagged code. */
  routerError: { name: 'heroku.router.error', type: 'c' },
  /** +1 per Heroku error (router `code=`, `Error R14 (…)` lines, logplex `Error Lnn`); tagged code and dyno. */
  error: { name: 'heroku.error', type: 'c' },
  /** +N per logplex L10 line: messages logplex dropped for this drain. */
  logplexDropped: { name: 'heroku.logplex.dropped', type: 'c' },
} as const satisfies Record<string, { name: string; type: Sample['type'] }>;

/** Router value fields: the logfmt key, its metric, and the one unit it may be written with. */
export const ROUTER_VALUES = [
  { field: 'connect', metric: HEROKU_METRICS.routerConnect, unit: 'ms' },
  { field: 'service', metric: HEROKU_METRICS.routerService, unit: 'ms' },
  { field: 'bytes', metric: HEROKU_METRICS.routerBytes, unit: 'bytes' },
] as const;

/** Gauge family of dyno runtime metrics: `sample#k=v` → `heroku.dyno.<k>`. */
export const DYNO_PREFIX = 'heroku.dyno';

/** Add-on PROCIDs and the gauge family of each: `sample#k=v` → `<prefix>.<k>`. */
export const ADDON_PREFIXES: ReadonlyMap<string, string> = new Map([
  ['heroku-postgres', 'heroku.postgres'],
  ['heroku-redis', 'heroku.redis'],
  ['heroku-pgbouncer', 'heroku.pgbouncer'],
]);

// ---------------------------------------------------------------- tags

/** Characters kept in tag values; others become `_` so a tag never breaks `k:v,k:v` lists. */
const TAG_BAD_CHARS = /[^A-Za-z0-9_.\-/%]/g;
/** Longest tag value kept; longer ones are cut. */
const MAX_TAG_VALUE = 100;

/** `key:value` with the value cleaned and cut, or undefined for an empty value. */
export function tag(key: string, value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  return `${key}:${value.slice(0, MAX_TAG_VALUE).replace(TAG_BAD_CHARS, '_')}`;
}

/** A copy of `base` with the defined `extra` tags appended. */
export function withTags(base: readonly string[], ...extra: (string | undefined)[]): string[] {
  const out = base.slice();
  for (const t of extra) if (t !== undefined) out.push(t);
  return out;
}

/** `web.1`, `worker.12`, `run.1234`: a dyno name. */
const DYNO_RE = /^([A-Za-z0-9_-]{1,60})\.(\d{1,8})$/;
/** Dyno types whose number changes with every run: tagging the number would grow without bound. */
const ONE_OFF_TYPES = new Set(['run', 'scheduler', 'release']);

/** `dyno:` and `dyno_type:` tags for a dyno name; one-off dynos (`run.1234`) only get `dyno_type`. */
export function dynoTags(name: string | undefined): string[] {
  if (name === undefined) return [];
  const m = DYNO_RE.exec(name);
  if (m === null) return [];
  const type = m[1]!;
  const typeTag = tag('dyno_type', type)!;
  return ONE_OFF_TYPES.has(type) ? [typeTag] : [tag('dyno', name)!, typeTag];
}

/** Methods kept as tag values; anything else is `other`, so a client cannot invent new tag values. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE']);

/** The `method` tag value: one of the nine standard methods, `other`, or undefined when empty or absent. */
export function routerMethod(raw: string | undefined): string | undefined {
  return raw === undefined || raw === '' ? undefined : METHODS.has(raw) ? raw : 'other';
}

/** The `status` tag value: three digits starting 1–5, else undefined. */
export function routerStatus(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.length !== 3) return undefined;
  const a = raw.charCodeAt(0);
  const b = raw.charCodeAt(1);
  const c = raw.charCodeAt(2);
  return a >= 0x31 && a <= 0x35 && b >= 0x30 && b <= 0x39 && c >= 0x30 && c <= 0x39 ? raw : undefined;
}

/** The tag lists of one kind of router line. */
export interface RouterTags {
  /** `heroku.router.request`: base, method, status, status_class, dyno, dyno_type. */
  request: string[];
  /** Timers and `heroku.router.bytes`: base, method, status_class, dyno, dyno_type. */
  timer: string[];
  /** The dyno tags alone (for `heroku.error`). */
  dyno: string[];
}

/** Tags of a router line from its cleaned method and status (see {@link routerMethod}, {@link routerStatus}) and raw dyno. */
export function routerTags(base: readonly string[], method: string | undefined, status: string | undefined, dyno: string | undefined): RouterTags {
  const statusClass = status === undefined ? undefined : `${status[0]}xx`;
  const dynoList = dynoTags(dyno);
  const methodTag = tag('method', method);
  const classTag = tag('status_class', statusClass);
  return {
    request: withTags(base, methodTag, tag('status', status), classTag, ...dynoList),
    timer: withTags(base, methodTag, classTag, ...dynoList),
    dyno: dynoList,
  };
}

/** Heroku error codes: H (router), R (runtime), L (logging) and two digits. */
const CODE_RE = /^[HRL]\d{2}$/;

/** True for a Heroku error code (`H12`, `R14`, `L10`), the only `code:` tag values. */
export function isHerokuCode(code: string): boolean {
  return CODE_RE.test(code);
}

/** The two error counters of `code`: `heroku.router.error` tagged code, `heroku.error` tagged code and dyno. */
export function routerErrorSamples(code: string, base: readonly string[], dyno: readonly string[], out: Sample[]): void {
  const codeTag = tag('code', code);
  out.push({ ...HEROKU_METRICS.routerError, value: 1, tags: withTags(base, codeTag) });
  out.push({ ...HEROKU_METRICS.error, value: 1, tags: withTags(base, codeTag, ...dyno) });
}

// ---------------------------------------------------------------- values

/**
 * Reads a router timing or size `s[start, end)` into `scanned.value`; false when it does not parse.
 * Router timings are always whole ms and sizes bytes: another unit would mean a format change we
 * should not guess at, so only `unit` (or none) is accepted.
 */
export function scanRouterValue(s: string, start: number, end: number, unit: 'ms' | 'bytes'): boolean {
  if (!scanUnitValue(s, start, end)) return false;
  const unitStart = scanned.unitStart;
  const unitLen = end - unitStart;
  return unitLen === 0 || (unitLen === unit.length && s.startsWith(unit, unitStart));
}

// ---------------------------------------------------------------- names (l2met)

/** Metric kinds of the l2met convention. */
export type L2metKind = 'count' | 'sample' | 'measure';

/** l2met kinds → StatsD types: `count#` a counter, `sample#` a gauge, `measure#` a timer (`ms`). */
export const L2MET_TYPES = { count: 'c', sample: 'g', measure: 'ms' } as const;

/** The l2met kind of the key starting at `s[start]` (`count#…`, `sample#…`, `measure#…`), if any. */
export function l2metKindAt(s: string, start: number): L2metKind | undefined {
  if (s.startsWith('count#', start)) return 'count';
  if (s.startsWith('sample#', start)) return 'sample';
  if (s.startsWith('measure#', start)) return 'measure';
  return undefined;
}

/** Longest metric name accepted (the Datadog limit). */
export const MAX_NAME_LENGTH = 200;

/** Characters kept in metric names; others become `_` so a name never breaks a StatsD-style sink. */
const NAME_BAD_CHARS = /[^A-Za-z0-9_.\-/]/g;

/** Returns the name with unsafe characters replaced, or undefined when it is empty or too long. */
export function cleanName(raw: string): string | undefined {
  if (raw.length === 0 || raw.length > MAX_NAME_LENGTH) return undefined;
  return isCleanName(raw) ? raw : raw.replace(NAME_BAD_CHARS, '_');
}

/** True when every character is one {@link NAME_BAD_CHARS} keeps: the common case, checked without a regex. */
function isCleanName(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x2d && c <= 0x39) || c === 0x5f)) return false;
  }
  return true;
}

/** Heroku key → metric-name segment: `-` becomes `_` (the naming rule above), then cleaned. */
export function herokuKey(key: string): string | undefined {
  return cleanName(key.replace(/-/g, '_'));
}

/**
 * Units l2meter writes as a trailing name segment (`measure#db-query.ms=235`). Only taken off the name
 * when the value itself has no unit, and only these, so `count#api.v2=1` keeps its name.
 */
const NAME_UNITS = new Set(['ms', 's', 'us', 'ns', 'bytes', 'kB', 'KB', 'MB', 'GB']);
/** Longest entry of {@link NAME_UNITS}. */
const MAX_NAME_UNIT = 5;

/** The unit written as the last segment of `name` (its last dot at `dot`), or undefined when there is none. */
export function nameUnit(name: string, dot: number): string | undefined {
  if (dot <= 0 || name.length - dot - 1 > MAX_NAME_UNIT) return undefined;
  const suffix = name.slice(dot + 1);
  return NAME_UNITS.has(suffix) ? suffix : undefined;
}

/** Why a value in a line was skipped; each is counted as `dropped{reason:…}` on the `http` component. */
export type BadValueReason = Extract<DropReason<'http'>, 'bad_value' | 'bad_name'>;

/** Callback for skipped values; `key` is the logfmt key, never the value (which may be anything). */
export type OnBad = (reason: BadValueReason, key: string) => void;
