/**
 * Turns one log line into metric samples (logreference §3.6): Heroku router lines, dyno runtime
 * metrics, Postgres/Redis/PgBouncer add-on samples, `Error Xnn` lines, logplex L10, and l2met app lines.
 * Pure: lines in, `Sample` objects out; the caller feeds the aggregator and counts.
 *
 * Naming rule: in Heroku's own keys `-` becomes `_` (`sample#active-connections` →
 * `heroku.postgres.active_connections`), so every `heroku.*` name is snake_case. App (l2met) names are
 * kept as written, except that characters outside `A-Za-z0-9_.-/` become `_`.
 *
 * Tag rule: only bounded values become tags. `request_id`, `fwd`, `path`, `host` and the per-run
 * `dyno=heroku.<app>.<uuid>` id are never tags.
 */
import type { Sample } from '@metrics-distributor/core';
import { L2MET_TYPES, LogfmtCursor, cleanName, extractL2met, logfmt, parseUnitValue, scanUnitValue, scanned, unescapeValue, type L2metBadReason, type Pair } from './l2met.js';

/** The parts of a log line extraction looks at; plain-text and JSON lines have no app or proc id. */
export interface LogLine {
  /** Syslog APP-NAME: `heroku` for the platform, `app` for the application and add-ons. */
  appName?: string | undefined;
  /** Syslog PROCID: `router`, `web.1`, `heroku-postgres`, `logplex`… */
  procId?: string | undefined;
  /** The message text. */
  msg: string;
}

/** Why a value in a line was skipped: a bad l2met pair, or a router field that does not parse. */
export type ExtractBadReason = L2metBadReason;

/** Callback for skipped values; `key` is the logfmt key, never the value (which may be anything). */
export type OnBad = (reason: ExtractBadReason, key: string) => void;

/** Characters kept in tag values; others become `_` so a tag never breaks `k:v,k:v` lists. */
const TAG_BAD_CHARS = /[^A-Za-z0-9_.\-/%]/g;
/** Longest tag value kept; longer ones are cut. */
const MAX_TAG_VALUE = 100;

/** `key:value` with the value cleaned and cut, or undefined for an empty value. */
export function tag(key: string, value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  return `${key}:${value.slice(0, MAX_TAG_VALUE).replace(TAG_BAD_CHARS, '_')}`;
}

/** Heroku key → metric-name segment: `-` becomes `_` (the documented naming rule), then cleaned. */
export function herokuKey(key: string): string | undefined {
  return cleanName(key.replace(/-/g, '_'));
}

function withTags(base: readonly string[], ...extra: (string | undefined)[]): string[] {
  const out = base.slice();
  for (const t of extra) if (t !== undefined) out.push(t);
  return out;
}

/** First value per key: Heroku lines never repeat keys, and first-wins keeps a forged suffix harmless. */
function toMap(pairs: readonly Pair[]): Map<string, string | undefined> {
  const m = new Map<string, string | undefined>();
  for (const p of pairs) if (!m.has(p.key)) m.set(p.key, p.value);
  return m;
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

/** Heroku error codes: H (router), R (runtime), L (logging) and two digits. */
const CODE_RE = /^[HRL]\d{2}$/;

/**
 * Router line (`heroku router`): `heroku.router.request` +1 tagged method, status, status_class, dyno;
 * `heroku.router.connect` and `.service` timers (ms) and `heroku.router.bytes` histogram tagged method,
 * status_class, dyno; for `at=error code=Hxx` also `heroku.router.error` and `heroku.error` tagged code.
 * Empty fields (H10: `connect= service= bytes=`) are skipped, never read as 1.
 */
export function extractRouter(msg: string, base: readonly string[], out: Sample[], onBad: OnBad): void {
  const f = scanRouter(msg, routerScratch);
  if (!isRouterAt(f.at)) return;
  const t = routerTags(base, routerMethod(f.method), routerStatus(f.status), f.dyno);
  out.push({ name: 'heroku.router.request', type: 'c', value: 1, tags: t.request });
  for (const [field, name, type] of ROUTER_VALUES) {
    const raw = f[field];
    if (raw === undefined || raw === '') continue;
    const v = routerValue(raw, type);
    if (v === undefined) {
      onBad('bad_value', field);
      continue;
    }
    out.push({ name, type, value: v, tags: t.timer });
  }
  routerErrors(f, base, t.dyno, out);
}

/** The router fields extraction reads: the first value of each key, undefined when absent or bare. */
export interface RouterFields {
  at: string | undefined;
  method: string | undefined;
  status: string | undefined;
  dyno: string | undefined;
  connect: string | undefined;
  service: string | undefined;
  bytes: string | undefined;
  code: string | undefined;
}

/** A {@link RouterFields} to fill with {@link scanRouter}. */
export function routerFields(): RouterFields {
  return { at: undefined, method: undefined, status: undefined, dyno: undefined, connect: undefined, service: undefined, bytes: undefined, code: undefined };
}

const routerScratch = routerFields();
const routerCursor = new LogfmtCursor();
const offsetsScratch = routerOffsets();

/** Indexes of the router fields in {@link RouterOffsets}. */
export const enum RouterField {
  At,
  Method,
  Status,
  Dyno,
  Connect,
  Service,
  Bytes,
  Code,
}

/** Keys of the router fields, in {@link RouterField} order. */
const ROUTER_KEYS = ['at', 'method', 'status', 'dyno', 'connect', 'service', 'bytes', 'code'] as const;

/**
 * Where the router fields' values are in a line, filled by {@link scanRouterOffsets}: value `k` is
 * `line[at[2k], at[2k+1])`, with a start of -1 when the key is absent or bare; bit `k` of `escaped` is
 * set when that value is quoted with escapes, to be read with `unescapeValue`.
 */
export interface RouterOffsets {
  at: Int32Array;
  escaped: number;
}

/** A {@link RouterOffsets} to fill. */
export function routerOffsets(): RouterOffsets {
  return { at: new Int32Array(16), escaped: 0 };
}

/** The field a logfmt key names, or -1. The first character rules out most other keys without a string comparison. */
function routerField(c: LogfmtCursor): number {
  const first = c.line.charCodeAt(c.keyStart);
  switch (c.keyEnd - c.keyStart) {
    case 2:
      return first === 0x61 && c.keyIs('at') ? RouterField.At : -1;
    case 4:
      if (first === 0x64) return c.keyIs('dyno') ? RouterField.Dyno : -1;
      return first === 0x63 && c.keyIs('code') ? RouterField.Code : -1;
    case 5:
      return first === 0x62 && c.keyIs('bytes') ? RouterField.Bytes : -1;
    case 6:
      if (first === 0x6d) return c.keyIs('method') ? RouterField.Method : -1;
      return first === 0x73 && c.keyIs('status') ? RouterField.Status : -1;
    case 7:
      if (first === 0x63) return c.keyIs('connect') ? RouterField.Connect : -1;
      return first === 0x73 && c.keyIs('service') ? RouterField.Service : -1;
    default:
      return -1;
  }
}

/** Places in a router line whose key is remembered (Heroku writes about a dozen pairs). */
const MAX_ROUTER_KEY_MEMO = 16;
/** The key last seen at each place of a router line, and the field it names (-1: none). */
const routerKeyMemo: string[] = [];
const routerFieldMemo: number[] = [];

/** Every field but `code`, which only counts on `at=error` lines. */
const ALL_BUT_CODE = 0x7f;

/**
 * Finds the router fields of a logfmt line, looking only at the keys it needs. The first occurrence of
 * a key wins even when bare, as in a first-wins key/value map: Heroku never repeats a key, and
 * first-wins keeps a forged suffix (`… status=200 status=500`) harmless. On an `at=info` line the scan
 * stops once every other field is found, so a `code` after them is not read: only error lines use it.
 */
export function scanRouterOffsets(msg: string, o: RouterOffsets): RouterOffsets {
  const at = o.at;
  at.fill(-1);
  let escaped = 0;
  let seen = 0;
  let info = false;
  const c = routerCursor.reset(msg);
  const keys = routerKeyMemo;
  // Router lines repeat their keys in the same places: the cursor compares the key last seen at this
  // place instead of scanning it, and its field is then known.
  for (let pair = 0; c.next(pair < MAX_ROUTER_KEY_MEMO ? keys[pair] : undefined); pair++) {
    let k: number;
    if (c.matched) k = routerFieldMemo[pair]!;
    else {
      k = routerField(c);
      if (pair < MAX_ROUTER_KEY_MEMO) {
        keys[pair] = c.key();
        routerFieldMemo[pair] = k;
      }
    }
    if (k < 0 || (seen & (1 << k)) !== 0) continue;
    seen |= 1 << k;
    if (c.valueStart >= 0) {
      at[2 * k] = c.valueStart;
      at[2 * k + 1] = c.valueEnd;
      if (c.escaped) escaped |= 1 << k;
      else if (k === (RouterField.At as number)) info = c.valueEnd - c.valueStart === 4 && msg.startsWith('info', c.valueStart);
    }
    if (seen === 255 || (info && seen === ALL_BUT_CODE)) break;
  }
  o.escaped = escaped;
  return o;
}

/** Value `k` of a scanned line: undefined when absent or bare. */
export function routerString(msg: string, o: RouterOffsets, k: RouterField): string | undefined {
  const start = o.at[2 * k]!;
  if (start < 0) return undefined;
  const end = o.at[2 * k + 1]!;
  return (o.escaped & (1 << k)) !== 0 ? unescapeValue(msg, start, end) : msg.slice(start, end);
}

/** Reads the router fields of a logfmt line into `f` (overwritten); see {@link scanRouterOffsets}. */
export function scanRouter(msg: string, f: RouterFields): RouterFields {
  return routerStrings(msg, scanRouterOffsets(msg, offsetsScratch), f);
}

/** Fills `f` with the values of a scanned line. */
export function routerStrings(msg: string, o: RouterOffsets, f: RouterFields): RouterFields {
  for (let k = 0; k < ROUTER_KEYS.length; k++) f[ROUTER_KEYS[k]!] = routerString(msg, o, k);
  return f;
}

/** Only `at=info` and `at=error` router lines describe a request. */
export function isRouterAt(at: string | undefined): boolean {
  return at === 'info' || at === 'error';
}

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

/** Router value fields: field, metric name, StatsD type. */
export const ROUTER_VALUES = [
  ['connect', 'heroku.router.connect', 'ms'],
  ['service', 'heroku.router.service', 'ms'],
  ['bytes', 'heroku.router.bytes', 'h'],
] as const;

/**
 * A router timing or size, or undefined when it does not parse. Router timings are always whole ms and
 * sizes bytes; another unit would mean a format change we should not guess at.
 */
export function routerValue(raw: string, type: 'ms' | 'h'): number | undefined {
  if (!scanUnitValue(raw, 0, raw.length)) return undefined;
  const unitLen = raw.length - scanned.unitStart;
  if (unitLen === 0) return scanned.value;
  const unit = type === 'ms' ? 'ms' : 'bytes';
  return unitLen === unit.length && raw.endsWith(unit) ? scanned.value : undefined;
}

/** For `at=error code=Hxx`: `heroku.router.error` tagged code, and `heroku.error` tagged code and dyno. */
export function routerErrors(f: RouterFields, base: readonly string[], dyno: readonly string[], out: Sample[]): void {
  const code = f.code;
  if (f.at === 'error' && code !== undefined && CODE_RE.test(code)) {
    const codeTag = tag('code', code);
    out.push({ name: 'heroku.router.error', type: 'c', value: 1, tags: withTags(base, codeTag) });
    out.push({ name: 'heroku.error', type: 'c', value: 1, tags: withTags(base, codeTag, ...dyno) });
  }
}

/**
 * Gauges `<prefix>.<key>` for every `sample#key=value` of a line; the unit is dropped (it is fixed per
 * key, see the README). Used for dyno runtime metrics and add-on metrics.
 */
function extractSamples(pairs: readonly Pair[], prefix: string, tags: readonly string[], out: Sample[], onBad: OnBad): void {
  for (const { key, value } of pairs) {
    if (!key.startsWith('sample#')) continue;
    const name = herokuKey(key.slice(7));
    const v = value === undefined || value === '' ? undefined : parseUnitValue(value);
    if (name === undefined) {
      onBad('bad_name', key);
      continue;
    }
    if (v === undefined) {
      onBad('bad_value', key);
      continue;
    }
    out.push({ name: `${prefix}.${name}`, type: 'g', value: v.value, tags });
  }
}

/**
 * Dyno runtime metrics (`source=web.1 dyno=heroku.… sample#memory_total=…`): gauges `heroku.dyno.<key>`
 * tagged `dyno` (from `source=`, else the PROCID) and `dyno_type`; the `dyno=heroku.<uuid>` id is ignored.
 */
export function extractRuntime(msg: string, procId: string | undefined, base: readonly string[], out: Sample[], onBad: OnBad): void {
  const pairs = logfmt(msg);
  const source = toMap(pairs).get('source') ?? procId;
  extractSamples(pairs, 'heroku.dyno', withTags(base, ...dynoTags(source)), out, onBad);
}

/** Add-on PROCIDs and the metric prefix of each. */
export const ADDON_PREFIXES: ReadonlyMap<string, string> = new Map([
  ['heroku-postgres', 'heroku.postgres'],
  ['heroku-redis', 'heroku.redis'],
  ['heroku-pgbouncer', 'heroku.pgbouncer'],
]);

/**
 * Heroku Postgres, Redis and PgBouncer metric lines: gauges `heroku.<addon>.<key>` tagged `addon`
 * (`addon=postgresql-…`) and `source` (`DATABASE`, `HEROKU_POSTGRESQL_GREEN`, `REDIS`), when present.
 */
export function extractAddon(msg: string, prefix: string, base: readonly string[], out: Sample[], onBad: OnBad): void {
  const pairs = logfmt(msg);
  const kv = toMap(pairs);
  extractSamples(pairs, prefix, withTags(base, tag('addon', kv.get('addon')), tag('source', kv.get('source'))), out, onBad);
}

const ERROR_RE = /^Error ([HRL]\d{2}) \(/;
/**
 * N is at most 15 digits (always an exact integer) and must not follow another digit: an unbounded
 * `(\d+) messages` is retried from every digit of a long run, which made a 10 KiB line of digits cost
 * ~40 ms and one 5 MiB body ~20 s of blocked event loop. A longer N is no L10 count but a forged line.
 */
const L10_RE = /(?<!\d)(\d{1,15}) messages dropped since|dropped (\d{1,15}) messages since/;

/**
 * `Error R14 (Memory quota exceeded)`-style lines: `heroku.error` +1 tagged `code` and the dyno.
 * Returns true when the line was one.
 */
export function extractError(msg: string, procId: string | undefined, base: readonly string[], out: Sample[]): boolean {
  if (!msg.startsWith('Error ')) return false;
  const m = ERROR_RE.exec(msg);
  if (m === null) return false;
  out.push({ name: 'heroku.error', type: 'c', value: 1, tags: withTags(base, tag('code', m[1]), ...dynoTags(procId)) });
  return true;
}

/**
 * Logplex's own lines: `Error L10 (output buffer overflow): N messages dropped since …` (and the newer
 * `drain '…' dropped N messages since …`) become `heroku.logplex.dropped` += N. Other `Error Lnn` lines
 * are `heroku.error`.
 */
export function extractLogplex(msg: string, base: readonly string[], out: Sample[]): void {
  if (msg.startsWith('Error L10 ')) {
    const m = L10_RE.exec(msg);
    if (m !== null) {
      out.push({ name: 'heroku.logplex.dropped', type: 'c', value: Number(m[1] ?? m[2]), tags: base.slice() });
      return;
    }
  }
  extractError(msg, undefined, base, out);
}


/**
 * App lines: every l2met metric, named as written, tagged `source` (from `source=`) and `unit`
 * (from the value's suffix, unconverted).
 */
export function extractApp(msg: string, base: readonly string[], out: Sample[], onBad: OnBad): void {
  // Most app lines carry no metric: skip the tokeniser for them.
  if (!msg.includes('#')) return;
  const { metrics, source } = extractL2met(logfmt(msg), onBad);
  if (metrics.length === 0) return;
  const sourceTag = tag('source', source);
  for (const m of metrics) {
    out.push({ name: m.name, type: L2MET_TYPES[m.kind], value: m.value, tags: withTags(base, sourceTag, tag('unit', m.unit)) });
  }
}

/**
 * Which extractor takes a line: `router` and `app` lines are the common ones (see `extractRouter` and
 * `extractApp`); `other` covers logplex, add-on, `Error Xnn` and platform dyno lines.
 */
export function routeOf(line: LogLine): 'router' | 'app' | 'other' {
  const { appName, procId, msg } = line;
  if (appName === 'heroku') return procId === 'router' ? 'router' : 'other';
  if (procId !== undefined && ADDON_PREFIXES.has(procId)) return 'other';
  return msg.startsWith('Error ') && ERROR_RE.test(msg) ? 'other' : 'app';
}

/**
 * Routes a line by (APP-NAME, PROCID), then by payload: router, logplex, add-on, platform dyno line
 * (runtime metrics or `Error Xnn`), else an app line (`Error Xnn` or l2met).
 * `base` holds the drain-level tags (`app:`); samples are appended to `out`.
 */
export function extractLine(line: LogLine, base: readonly string[], out: Sample[], onBad: OnBad): void {
  const { appName, procId, msg } = line;
  const route = routeOf(line);
  if (route === 'router') return extractRouter(msg, base, out, onBad);
  if (route === 'app') return extractApp(msg, base, out, onBad);
  if (procId === 'logplex' && appName === 'heroku') return extractLogplex(msg, base, out);
  const addon = procId === undefined ? undefined : ADDON_PREFIXES.get(procId);
  if (addon !== undefined) return extractAddon(msg, addon, base, out, onBad);
  if (extractError(msg, procId, base, out)) return;
  if (appName === 'heroku') {
    if (msg.includes('sample#')) extractRuntime(msg, procId, base, out, onBad);
    return;
  }
  extractApp(msg, base, out, onBad);
}
