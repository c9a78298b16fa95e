/**
 * logfmt tokenising and the l2met convention (`count#`, `sample#`, `measure#`), as pure functions.
 * Values are stricter than l2met's scanner (which reads `1,000` as 1) and also broader: signs and
 * exponents parse, which l2met rejects or misreads.
 */

/** One logfmt pair; `value` is undefined for a bare key (`count#signups`). */
export interface Pair {
  key: string;
  value: string | undefined;
}

/**
 * Splits a logfmt line into pairs: `k=v`, `k="quoted \" value"`, bare `k`. Never throws: an unclosed
 * quote runs to the end of the line, as in kr/logfmt's lenient reading.
 */
export function logfmt(line: string): Pair[] {
  const out: Pair[] = [];
  const n = line.length;
  let i = 0;
  while (i < n) {
    while (i < n && (line[i] === ' ' || line[i] === '\t')) i++;
    if (i >= n) break;
    const keyStart = i;
    while (i < n && line[i] !== '=' && line[i] !== ' ' && line[i] !== '\t') i++;
    const key = line.slice(keyStart, i);
    if (line[i] !== '=') {
      if (key.length > 0) out.push({ key, value: undefined });
      continue;
    }
    i++; // '='
    let value: string;
    if (line[i] === '"') {
      i++;
      let v = '';
      let chunk = i;
      while (i < n && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < n) {
          v += line.slice(chunk, i);
          chunk = i + 1;
          i += 2;
          continue;
        }
        i++;
      }
      value = v + line.slice(chunk, i);
      if (i < n) i++; // closing quote
    } else {
      const valueStart = i;
      while (i < n && line[i] !== ' ' && line[i] !== '\t') i++;
      value = line.slice(valueStart, i);
    }
    if (key.length > 0) out.push({ key, value });
  }
  return out;
}

/** A number and the unit written right after it (`40.9MB` → 40.9, `MB`). */
export interface UnitValue {
  value: number;
  /** Letters (or `%`) after the number; undefined when none. Never converted. */
  unit: string | undefined;
}

/** Longest unit kept; longer letter runs are not units but garbage. */
const MAX_UNIT_LENGTH = 24;
const VALUE_RE = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)([A-Za-z%]*)$/;

/**
 * Parses an l2met value: optional sign, decimals, exponent, then an optional unit of letters or `%`.
 * Anything else (`1,000`, `5ms!`, `NaN`, a literal `\n`, an overflow to Infinity) is undefined.
 */
export function parseUnitValue(raw: string): UnitValue | undefined {
  const m = VALUE_RE.exec(raw);
  if (m === null) return undefined;
  const value = Number(m[1]);
  if (!Number.isFinite(value)) return undefined;
  const unit = m[2]!;
  if (unit.length > MAX_UNIT_LENGTH) return undefined;
  return { value, unit: unit.length > 0 ? unit : undefined };
}

/** Metric kinds of the l2met convention. */
export type L2metKind = 'count' | 'sample' | 'measure';

/** One metric found in an app line. */
export interface L2metMetric {
  kind: L2metKind;
  name: string;
  value: number;
  unit: string | undefined;
}

/** Why an l2met pair was skipped; each is counted as `dropped{reason:…}`. */
export type L2metBadReason = 'bad_value' | 'bad_name';

/** Longest metric name accepted (the Datadog limit). */
export const MAX_NAME_LENGTH = 200;

/**
 * Units l2meter writes as a trailing name segment (`measure#db-query.ms=235`). Only taken off the name
 * when the value itself has no unit, and only these, so `count#api.v2=1` keeps its name.
 */
const NAME_UNITS = new Set(['ms', 's', 'us', 'ns', 'bytes', 'kB', 'KB', 'MB', 'GB']);

/** Characters kept in metric names; others become `_` so a name never breaks a StatsD-style sink. */
const NAME_BAD_CHARS = /[^A-Za-z0-9_.\-/]/g;

/** Returns the name with unsafe characters replaced, or undefined when it is empty or too long. */
export function cleanName(raw: string): string | undefined {
  if (raw.length === 0 || raw.length > MAX_NAME_LENGTH) return undefined;
  return raw.replace(NAME_BAD_CHARS, '_');
}

function kindOf(key: string): L2metKind | undefined {
  if (key.startsWith('count#')) return 'count';
  if (key.startsWith('sample#')) return 'sample';
  if (key.startsWith('measure#')) return 'measure';
  return undefined;
}

/**
 * Reads every `count#`/`sample#`/`measure#` pair of a line (several per line are fine) and the
 * `source=` value. A bare key counts as 1; an empty value (`count#x=`) is skipped as bad, never read as 1.
 * `unique#` and the pre-2.0 `measure.x=` forms are ignored.
 */
export function extractL2met(pairs: readonly Pair[], onBad: (reason: L2metBadReason, key: string) => void): { metrics: L2metMetric[]; source: string | undefined } {
  const metrics: L2metMetric[] = [];
  let source: string | undefined;
  for (const { key, value } of pairs) {
    if (key === 'source') {
      if (value !== undefined && value !== '') source ??= value;
      continue;
    }
    const kind = kindOf(key);
    if (kind === undefined) continue;
    let name = cleanName(key.slice(kind.length + 1));
    if (name === undefined) {
      onBad('bad_name', key);
      continue;
    }
    let parsed: UnitValue | undefined = value === undefined ? { value: 1, unit: undefined } : parseUnitValue(value);
    if (parsed === undefined) {
      onBad('bad_value', key);
      continue;
    }
    if (parsed.unit === undefined) {
      const dot = name.lastIndexOf('.');
      const suffix = dot > 0 ? name.slice(dot + 1) : '';
      if (NAME_UNITS.has(suffix)) {
        name = name.slice(0, dot);
        parsed = { value: parsed.value, unit: suffix };
      }
    }
    metrics.push({ kind, name, value: parsed.value, unit: parsed.unit });
  }
  return { metrics, source };
}
