/**
 * The plain reading of router and l2met app lines, kept as a test oracle for the cached readers in
 * `src/router-line.ts` and `src/app-line.ts`: a line split into logfmt pairs, a first-wins map, one
 * new `Sample` per metric and no merging. It shares the rules table (`src/heroku-metrics.ts`) with
 * production, so what it checks is the reading: offsets, key memos, caches, escapes and merging.
 */
import type { Sample } from '@metrics-distributor/core';
import {
  HEROKU_METRICS,
  L2MET_TYPES,
  ROUTER_VALUES,
  cleanName,
  isHerokuCode,
  l2metKindAt,
  nameUnit,
  routerErrorSamples,
  routerMethod,
  routerStatus,
  routerTags,
  tag,
  withTags,
  type BadValueReason,
  type L2metKind,
  type OnBad,
} from '../src/heroku-metrics.js';
import { logfmt, parseUnitValue, type Pair, type UnitValue } from '../src/logfmt.js';
import { platformLine, routeOf, type LogLine } from '../src/platform-lines.js';

/** One metric found in an app line. */
export interface L2metMetric {
  kind: L2metKind;
  name: string;
  value: number;
  unit: string | undefined;
}

/** First value per key, bare keys included: Heroku never repeats a key, and a forged suffix loses. */
function firstWins(pairs: readonly Pair[]): Map<string, string | undefined> {
  const m = new Map<string, string | undefined>();
  for (const p of pairs) if (!m.has(p.key)) m.set(p.key, p.value);
  return m;
}

/** A router line: the request counter, the value fields that parse, and the error counters. */
export function extractRouter(msg: string, base: readonly string[], out: Sample[], onBad: OnBad): void {
  const f = firstWins(logfmt(msg));
  const at = f.get('at');
  if (at !== 'info' && at !== 'error') return;
  const t = routerTags(base, routerMethod(f.get('method')), routerStatus(f.get('status')), f.get('dyno'));
  out.push({ ...HEROKU_METRICS.routerRequest, value: 1, tags: t.request });
  for (const { field, metric, unit } of ROUTER_VALUES) {
    const raw = f.get(field);
    if (raw === undefined || raw === '') continue;
    const v = parseUnitValue(raw);
    if (v === undefined || (v.unit !== undefined && v.unit !== unit)) {
      onBad('bad_value', field);
      continue;
    }
    out.push({ ...metric, value: v.value, tags: t.timer });
  }
  const code = f.get('code');
  if (at === 'error' && code !== undefined && isHerokuCode(code)) routerErrorSamples(code, base, t.dyno, out);
}

/**
 * Every `count#`/`sample#`/`measure#` pair of a line and the first non-empty `source=` value. A bare
 * key counts as 1; an empty value (`count#x=`) is bad, never 1.
 */
export function extractL2met(pairs: readonly Pair[], onBad: (reason: BadValueReason, key: string) => void): { metrics: L2metMetric[]; source: string | undefined } {
  const metrics: L2metMetric[] = [];
  let source: string | undefined;
  for (const { key, value } of pairs) {
    if (key === 'source') {
      if (value !== undefined && value !== '') source ??= value;
      continue;
    }
    const kind = l2metKindAt(key, 0);
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
      const suffix = nameUnit(name, dot);
      if (suffix !== undefined) {
        name = name.slice(0, dot);
        parsed = { value: parsed.value, unit: suffix };
      }
    }
    metrics.push({ kind, name, value: parsed.value, unit: parsed.unit });
  }
  return { metrics, source };
}

/** An app line: every l2met metric, tagged `source` and `unit`. */
export function extractApp(msg: string, base: readonly string[], out: Sample[], onBad: OnBad): void {
  const { metrics, source } = extractL2met(logfmt(msg), onBad);
  const sourceTag = tag('source', source);
  for (const m of metrics) out.push({ name: m.name, type: L2MET_TYPES[m.kind], value: m.value, tags: withTags(base, sourceTag, tag('unit', m.unit)) });
}

/** Any line, routed as production routes it; platform lines have one implementation, production's. */
export function extractLine(line: LogLine, base: readonly string[], out: Sample[], onBad: OnBad): void {
  const route = routeOf(line);
  if (route === 'router') extractRouter(line.msg, base, out, onBad);
  else if (route === 'app') extractApp(line.msg, base, out, onBad);
  else platformLine(line, base, out, onBad);
}
