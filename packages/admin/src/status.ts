/**
 * `/api/status`: the one JSON document the page, `top` and people with curl read. Built from the
 * sources and the rate ring once per request (or once per tick for every event stream together).
 */
import { COUNTER_FIELDS_ADMIN, type CounterField } from './fields.js';
import type { DropFigure, RateRing } from './sampler.js';
import type { AdminSources, ProcessHealth, Readiness, SinkError, SinkStatus } from './sources.js';
import { ComponentNames } from '@metrics-distributor/core';

/** A sink's health as the page colours it. */
export type SinkState = 'ok' | 'retrying' | 'failing';

/** One component in the status document. */
export interface ComponentReport {
  /** Component id, e.g. `statsd-udp`. */
  id: string;
  /** `frontend` and `sink` are the page's throughput rows; everything else is `internal`. */
  kind: 'frontend' | 'sink' | 'internal';
  /** Cumulative counters. */
  totals: Record<CounterField, number>;
  /** Per-second rates over the whole ring (the increase divided by its span). */
  rates: Record<CounterField, number>;
  /** Per-second rates between neighbouring samples, oldest first (at most the ring's length). */
  series: Record<'received' | 'sent' | 'bad' | 'dropped' | 'bytes', number[]>;
  /** Current gauges of the component, as set (e.g. `queue_depth`). */
  gauges: Record<string, number>;
}

/** One sink in the status document: its {@link SinkStatus} plus what the admin listener derived. */
export interface SinkReport extends SinkStatus {
  /** Its self-metrics component, `sink-<name>`. */
  component: string;
  /** `ok`: no error since the last success; `retrying`: an error since, still recent and nothing lost; `failing`: otherwise. */
  state: SinkState;
  /** `retryBufferBytes / retryBufferMaxBytes` in [0, 1]; 0 without a retry buffer. */
  retryBufferFill: number;
  /** `queueDepth / maxBatches` in [0, 1]. */
  queueFill: number;
}

/** The whole `/api/status` document. */
export interface StatusReport {
  /** Server version. */
  version: string;
  /** When this document was made (epoch ms). */
  nowMs: number;
  /** Server start (epoch ms). */
  startedAtMs: number;
  /** Seconds since start. */
  uptimeSeconds: number;
  /** Addresses listened on. */
  listeners: readonly string[];
  /** Readiness as `/readyz` reports it. */
  readiness: Readiness;
  /** Milliseconds between samples of the rate ring. */
  sampleIntervalMs: number;
  /** Milliseconds the ring now spans (rates are over this). */
  spanMs: number;
  /** Rate points the ring keeps when full (the page's charts are this wide). */
  ringPoints: number;
  /** Every component, front-ends first, then sinks, then the rest, each group by id. */
  components: ComponentReport[];
  /** Every drop reason seen, most recent drops first, then largest total. */
  drops: DropFigure[];
  /** Every sink. */
  sinks: SinkReport[];
  /** Live contexts in the open window. */
  liveContexts: number;
  /** Event-loop delay and memory. */
  process: ProcessHealth;
}

/** A sink is `failing` rather than `retrying` once its last success (or the start) is older than this. Default 60 s. */
export const DEFAULT_FAILING_AFTER_MS = 60_000;

/** The state rule, in one place: see {@link SinkReport.state}. */
export function sinkState(s: SinkStatus, lostRecently: boolean, nowMs: number, startedAtMs: number, failingAfterMs: number): SinkState {
  const err: SinkError | undefined = s.lastError;
  if (err === undefined || (s.lastSuccessMs !== undefined && s.lastSuccessMs >= err.atMs)) return 'ok';
  if (lostRecently) return 'failing';
  return nowMs - (s.lastSuccessMs ?? startedAtMs) > failingAfterMs ? 'failing' : 'retrying';
}

function fill(n: number, max: number): number {
  return max > 0 ? Math.min(1, Math.max(0, Math.round((n / max) * 1000) / 1000)) : 0;
}

/** Builds the status document from the sources and the ring. */
export function buildStatus(sources: AdminSources, ring: RateRing, opts: { nowMs: number; sampleIntervalMs: number; failingAfterMs: number; ringPoints: number }): StatusReport {
  const { nowMs } = opts;
  const frontends = new Set(sources.frontends());
  const sinks = sources.sinks();
  const sinkComponents = new Set(sinks.map((s) => ComponentNames.sink(s.name)));
  const spanS = ring.spanMs / 1000;
  const components: ComponentReport[] = [];
  for (const s of sources.stats.all()) {
    const id = s.component;
    const kind = frontends.has(id) ? 'frontend' : sinkComponents.has(id) ? 'sink' : 'internal';
    const totals = {} as Record<CounterField, number>;
    const rates = {} as Record<CounterField, number>;
    for (const f of COUNTER_FIELDS_ADMIN) {
      totals[f] = f === 'dropped' ? s.dropped() : s[f];
      rates[f] = spanS > 0 ? Math.round((ring.recent(id, f) / spanS) * 1000) / 1000 : 0;
    }
    const all = ring.series(id);
    components.push({
      id,
      kind,
      totals,
      rates,
      series: { received: all.received, sent: all.sent, bad: all.bad, dropped: all.dropped, bytes: all.bytes },
      gauges: Object.fromEntries(s.gaugeValues()),
    });
  }
  const order = { frontend: 0, sink: 1, internal: 2 } as const;
  components.sort((a, b) => order[a.kind] - order[b.kind] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const drops = ring.drops().sort((a, b) => b.recent - a.recent || b.total - a.total || (a.component + a.reason < b.component + b.reason ? -1 : 1));
  const sinkReports: SinkReport[] = sinks.map((s) => {
    const component = ComponentNames.sink(s.name);
    const lost = ring.recent(component, 'failed') + ring.recent(component, 'dropped') > 0;
    return {
      ...s,
      component,
      state: sinkState(s, lost, nowMs, sources.startedAtMs, opts.failingAfterMs),
      retryBufferFill: fill(s.retryBufferBytes, s.retryBufferMaxBytes),
      queueFill: fill(s.queueDepth, s.maxBatches),
    };
  });
  return {
    version: sources.version,
    nowMs,
    startedAtMs: sources.startedAtMs,
    uptimeSeconds: Math.max(0, Math.round((nowMs - sources.startedAtMs) / 1000)),
    listeners: sources.listeners(),
    readiness: sources.readiness(),
    sampleIntervalMs: opts.sampleIntervalMs,
    spanMs: ring.spanMs,
    ringPoints: opts.ringPoints,
    components,
    drops,
    sinks: sinkReports,
    liveContexts: sources.liveContexts(),
    process: sources.processHealth(),
  };
}
