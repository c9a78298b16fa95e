/**
 * How the rarer lines of a drain become metrics: dyno runtime metrics, Heroku Postgres/Redis/PgBouncer
 * add-on samples, `Error R14 (…)`-style lines and logplex's own `Error L10` lines. They are a small
 * share of the traffic, so they are read into plain `Sample` objects (router and app lines, nearly all
 * of it, take the cached readers in `router-line.ts` and `app-line.ts`). Names, tags and value rules
 * come from `heroku-metrics.ts`.
 */
import type { Sample } from '@metrics-distributor/core';
import { ADDON_PREFIXES, DYNO_PREFIX, HEROKU_METRICS, dynoTags, herokuKey, tag, withTags, type OnBad } from './heroku-metrics.js';
import { logfmt, parseUnitValue, type Pair } from './logfmt.js';

/** The parts of a log line extraction looks at; plain-text and JSON lines have no app or proc id. */
export interface LogLine {
  /** Syslog APP-NAME: `heroku` for the platform, `app` for the application and add-ons. */
  appName?: string | undefined;
  /** Syslog PROCID: `router`, `web.1`, `heroku-postgres`, `logplex`… */
  procId?: string | undefined;
  /** The message text. */
  msg: string;
}

/** First value per key: Heroku lines never repeat keys, and first-wins keeps a forged suffix harmless. */
function toMap(pairs: readonly Pair[]): Map<string, string | undefined> {
  const m = new Map<string, string | undefined>();
  for (const p of pairs) if (!m.has(p.key)) m.set(p.key, p.value);
  return m;
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
function extractRuntime(msg: string, procId: string | undefined, base: readonly string[], out: Sample[], onBad: OnBad): void {
  const pairs = logfmt(msg);
  const source = toMap(pairs).get('source') ?? procId;
  extractSamples(pairs, DYNO_PREFIX, withTags(base, ...dynoTags(source)), out, onBad);
}

/**
 * Heroku Postgres, Redis and PgBouncer metric lines: gauges `heroku.<addon>.<key>` tagged `addon`
 * (`addon=postgresql-…`) and `source` (`DATABASE`, `HEROKU_POSTGRESQL_GREEN`, `REDIS`), when present.
 */
function extractAddon(msg: string, prefix: string, base: readonly string[], out: Sample[], onBad: OnBad): void {
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
function extractError(msg: string, procId: string | undefined, base: readonly string[], out: Sample[]): boolean {
  if (!msg.startsWith('Error ')) return false;
  const m = ERROR_RE.exec(msg);
  if (m === null) return false;
  out.push({ ...HEROKU_METRICS.error, value: 1, tags: withTags(base, tag('code', m[1]), ...dynoTags(procId)) });
  return true;
}

/**
 * Logplex's own lines: `Error L10 (output buffer overflow): N messages dropped since …` (and the newer
 * `drain '…' dropped N messages since …`) become `heroku.logplex.dropped` += N. Other `Error Lnn` lines
 * are `heroku.error`.
 */
function extractLogplex(msg: string, base: readonly string[], out: Sample[]): void {
  if (msg.startsWith('Error L10 ')) {
    const m = L10_RE.exec(msg);
    if (m !== null) {
      out.push({ ...HEROKU_METRICS.logplexDropped, value: Number(m[1] ?? m[2]), tags: base.slice() });
      return;
    }
  }
  extractError(msg, undefined, base, out);
}

/**
 * Which extractor takes a line: `router` and `app` lines are the common ones (see `router-line.ts` and
 * `app-line.ts`); `other` covers logplex, add-on, `Error Xnn` and platform dyno lines.
 */
export function routeOf(line: LogLine): 'router' | 'app' | 'other' {
  const { appName, procId, msg } = line;
  if (appName === 'heroku') return procId === 'router' ? 'router' : 'other';
  if (procId !== undefined && ADDON_PREFIXES.has(procId)) return 'other';
  return msg.startsWith('Error ') && ERROR_RE.test(msg) ? 'other' : 'app';
}

/**
 * A line {@link routeOf} calls `other`, by (APP-NAME, PROCID) then payload: logplex, add-on,
 * `Error Xnn`, or a platform dyno line (runtime metrics). Samples are appended to `out`; `base` holds
 * the drain-level tags (`app:`).
 */
export function platformLine(line: LogLine, base: readonly string[], out: Sample[], onBad: OnBad): void {
  const { appName, procId, msg } = line;
  if (procId === 'logplex' && appName === 'heroku') return extractLogplex(msg, base, out);
  const addon = procId === undefined ? undefined : ADDON_PREFIXES.get(procId);
  if (addon !== undefined) return extractAddon(msg, addon, base, out, onBad);
  if (extractError(msg, procId, base, out)) return;
  if (appName === 'heroku' && msg.includes('sample#')) extractRuntime(msg, procId, base, out, onBad);
}
