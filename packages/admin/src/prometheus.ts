/**
 * `/metrics`: every self-metric in the Prometheus text exposition format 0.0.4, rendered on request
 * from the registry's cumulative counters and current gauges (nothing is kept between scrapes).
 * Names follow Vector's instrumentation spec where a field maps to one of its metrics; the rest keep
 * their own names under `metrics_distributor_`, with units converted to base units (ms → seconds) so
 * `promtool check metrics` has nothing to say.
 */
import { COUNTER_FIELDS_ADMIN, DISCARDED_FAMILY, counterFamily } from './fields.js';
import type { AdminSources, ProcessHealth, Readiness, SinkStatus } from './sources.js';
import { ComponentNames, type StatsRegistry } from '@metrics-distributor/core';

/** The `Content-Type` of the text format this module writes. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** The two types this module writes. */
export type FamilyType = 'counter' | 'gauge';

interface Family {
  type: FamilyType;
  help: string;
  lines: string[];
}

/** Families being written; a name keeps the type and help of its first use. */
class Exposition {
  private readonly families = new Map<string, Family>();
  /** Series left out because their name was taken by a family of another type. */
  conflicts = 0;

  add(name: string, type: FamilyType, help: string, labels: Readonly<Record<string, string>>, value: number): void {
    let f = this.families.get(name);
    if (f === undefined) {
      f = { type, help, lines: [] };
      this.families.set(name, f);
    } else if (f.type !== type) {
      this.conflicts++;
      return;
    }
    f.lines.push(`${name}${labelText(labels)} ${formatValue(value)}`);
  }

  has(name: string): boolean {
    return this.families.has(name);
  }

  text(): string {
    let out = '';
    for (const [name, f] of this.families) {
      out += `# HELP ${name} ${escapeHelp(f.help)}\n# TYPE ${name} ${f.type}\n`;
      for (const line of f.lines) out += line + '\n';
    }
    return out;
  }
}

function labelText(labels: Readonly<Record<string, string>>): string {
  let s = '';
  for (const k in labels) s += `${s === '' ? '' : ','}${k}="${escapeLabel(labels[k]!)}"`;
  return s === '' ? '' : `{${s}}`;
}

/** Label values escape `\`, `"` and newline (format 0.0.4). */
export function escapeLabel(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/** Go's float syntax, which Prometheus parses: `NaN`, `+Inf`, `-Inf`, or JavaScript's own shortest form. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/**
 * A self-metric's own name (`queue_depth`, `flush_duration_ms`) as the part of a Prometheus name after
 * `metrics_distributor_`, and the factor its value is multiplied by: invalid characters become `_`,
 * camelCase becomes snake_case, a `_ms` unit becomes `_seconds` (÷ 1000) since Prometheus wants base
 * units, and neither `_total` nor the family's type name is left in, as promtool's lint asks.
 */
export function promName(raw: string, type: FamilyType): { name: string; scale: number } {
  let name = raw
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .replace(new RegExp(`(^|_)(total|${type})(?=_|$)`, 'g'), '')
    .replace(/_+/g, '_')
    .replace(/^_|_$/g, '');
  let scale = 1;
  if (name === 'ms' || name.endsWith('_ms')) {
    name = `${name.slice(0, -2)}seconds`;
    scale = 1 / 1000;
  }
  return { name: name === '' ? 'unnamed' : name, scale };
}

/** Families the admin listener adds itself; a component's own counter or gauge of the same name is left out. */
const RESERVED = new Set<string>();

function reserve(name: string): string {
  RESERVED.add(name);
  return name;
}

const F = {
  buildInfo: reserve('metrics_distributor_build_info'),
  start: reserve('process_start_time_seconds'),
  uptime: reserve('metrics_distributor_uptime_seconds'),
  ready: reserve('metrics_distributor_ready'),
  problems: reserve('metrics_distributor_readiness_problems'),
  live: reserve('metrics_distributor_live_contexts'),
  rss: reserve('process_resident_memory_bytes'),
  heap: reserve('nodejs_heap_used_bytes'),
  loopP99: reserve('nodejs_eventloop_delay_p99_seconds'),
  loopMax: reserve('nodejs_eventloop_delay_max_seconds'),
  queue: reserve('metrics_distributor_sink_queue_batches'),
  queueMax: reserve('metrics_distributor_sink_queue_max_batches'),
  retry: reserve('metrics_distributor_sink_retry_buffer_bytes'),
  retryMax: reserve('metrics_distributor_sink_retry_buffer_max_bytes'),
  lastOk: reserve('metrics_distributor_sink_last_success_timestamp_seconds'),
  lastErr: reserve('metrics_distributor_sink_last_error_timestamp_seconds'),
  conflicts: reserve('metrics_distributor_admin_name_conflicts'),
} as const;
for (const f of COUNTER_FIELDS_ADMIN) if (f !== 'dropped') for (const c of ['x', 'sink-x']) RESERVED.add(counterFamily(f, c).name);
RESERVED.add(DISCARDED_FAMILY);

/** What {@link renderPrometheus} reads besides the registry: already-taken snapshots, so a scrape calls each source once. */
export interface PrometheusInputs {
  /** The process's registry. */
  stats: StatsRegistry;
  /** Server version. */
  version: string;
  /** Start time (epoch ms). */
  startedAtMs: number;
  /** Now (epoch ms). */
  nowMs: number;
  /** Readiness now. */
  readiness: Readiness;
  /** Every sink now. */
  sinks: readonly SinkStatus[];
  /** Live contexts now. */
  liveContexts: number;
  /** Process health now. */
  process: ProcessHealth;
}

/** Reads every source once and renders; see {@link renderPrometheus}. */
export function scrape(sources: AdminSources, nowMs: number): { text: string; conflicts: number } {
  return renderPrometheus({
    stats: sources.stats,
    version: sources.version,
    startedAtMs: sources.startedAtMs,
    nowMs,
    readiness: sources.readiness(),
    sinks: sources.sinks(),
    liveContexts: sources.liveContexts(),
    process: sources.processHealth(),
  });
}

/** The whole exposition, and how many series were left out because of a name conflict. */
export function renderPrometheus(inp: PrometheusInputs): { text: string; conflicts: number } {
  const x = new Exposition();
  x.add(F.buildInfo, 'gauge', 'Always 1; the version is in the label.', { version: inp.version }, 1);
  x.add(F.start, 'gauge', 'Start time of the process since the unix epoch, in seconds.', {}, inp.startedAtMs / 1000);
  x.add(F.uptime, 'gauge', 'Seconds since the server started.', {}, Math.max(0, (inp.nowMs - inp.startedAtMs) / 1000));
  x.add(F.ready, 'gauge', '1 when every front-end is bound, every sink queue under its limit and the server not shutting down.', {}, inp.readiness.ready ? 1 : 0);
  x.add(F.problems, 'gauge', 'Problems /readyz reports now.', {}, inp.readiness.problems.length);
  x.add(F.live, 'gauge', 'Live contexts (name, host and tags) in the open window.', {}, inp.liveContexts);
  const p = inp.process;
  x.add(F.rss, 'gauge', 'Resident memory size in bytes.', {}, p.rssBytes);
  x.add(F.heap, 'gauge', 'V8 heap used, in bytes.', {}, p.heapUsedBytes);
  if (p.eventLoopDelayP99Ms !== undefined) x.add(F.loopP99, 'gauge', 'Event-loop delay p99 over the last window, in seconds.', {}, p.eventLoopDelayP99Ms / 1000);
  if (p.eventLoopDelayMaxMs !== undefined) x.add(F.loopMax, 'gauge', 'Event-loop delay max over the last window, in seconds.', {}, p.eventLoopDelayMaxMs / 1000);
  for (const s of inp.sinks) {
    const l = { component_id: ComponentNames.sink(s.name) };
    x.add(F.queue, 'gauge', 'Closed windows waiting in a sink queue now.', l, s.queueDepth);
    x.add(F.queueMax, 'gauge', 'A sink queue limit, in windows.', l, s.maxBatches);
    x.add(F.retry, 'gauge', 'Bytes waiting in a sink retry buffer now.', l, s.retryBufferBytes);
    x.add(F.retryMax, 'gauge', 'A sink retry buffer limit, in bytes (0: none).', l, s.retryBufferMaxBytes);
    if (s.lastSuccessMs !== undefined) x.add(F.lastOk, 'gauge', 'Last successful export of a sink since the unix epoch, in seconds.', l, s.lastSuccessMs / 1000);
    if (s.lastError !== undefined) x.add(F.lastErr, 'gauge', 'Last failed export of a sink since the unix epoch, in seconds.', l, s.lastError.atMs / 1000);
  }
  const components = [...inp.stats.all()].sort((a, b) => (a.component < b.component ? -1 : a.component > b.component ? 1 : 0));
  // Family by family, so each family's lines stay together whatever the component order.
  for (const f of COUNTER_FIELDS_ADMIN) {
    if (f === 'dropped') continue;
    for (const s of components) {
      // Counters only grow, so "once non-zero" is sticky: a series appears at its first count and stays,
      // and a front-end shows no sent_* zeros. received_events_total is always there, so every component is.
      if (f !== 'received' && s[f] === 0) continue;
      const m = counterFamily(f, s.component);
      x.add(m.name, 'counter', m.help, { component_id: s.component, ...m.labels }, s[f]);
    }
  }
  for (const s of components) {
    for (const [reason, n] of [...s.dropReasons()].sort(byKey)) {
      x.add(DISCARDED_FAMILY, 'counter', 'Items lost, by component and reason (every loss has a reason).', { component_id: s.component, reason }, n);
    }
  }
  let conflicts = 0;
  const own = (name: string): boolean => {
    if (!RESERVED.has(name)) return true;
    conflicts++;
    return false;
  };
  for (const s of components) {
    for (const [raw, n] of [...s.namedCounters()].sort(byKey)) {
      const { name, scale } = promName(raw, 'counter');
      const full = `metrics_distributor_${name}_total`;
      if (own(full)) x.add(full, 'counter', `Component counter ${raw}.`, { component_id: s.component }, n * scale);
    }
  }
  for (const s of components) {
    for (const [raw, v] of [...s.gaugeValues()].sort(byKey)) {
      const { name, scale } = promName(raw, 'gauge');
      const full = `metrics_distributor_${name}`;
      if (own(full)) x.add(full, 'gauge', `Component gauge ${raw}.`, { component_id: s.component }, v * scale);
    }
  }
  conflicts += x.conflicts;
  x.add(F.conflicts, 'gauge', 'Self-metric series left out of this scrape because their name was taken.', {}, conflicts);
  return { text: x.text(), conflicts };
}

function byKey(a: [string, number], b: [string, number]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
