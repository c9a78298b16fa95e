/**
 * Partial windows between aggregators (`--workers`): a worker drains its open window into a
 * structured-cloneable state, the parent merges each state into its own open window with every
 * aggregate's own merge.
 */
import { AgentSketch } from './aggregates/agent-sketch.js';
import { HistogramAgg, type HistogramState } from './aggregates/histogram.js';
import { Kind, kindOf, type ContextTable } from './context-table.js';
import type { MetricType, Series, ServiceCheck, SketchData, StatsdEvent } from './model.js';
import type { OpenWindow } from './open-window.js';
import type { StorePools, WindowStore } from './window-store.js';

/** One context's aggregate for one window, in a structured-cloneable form (see {@link Aggregator.drainState}). */
export interface ContextState {
  type: MetricType;
  name: string;
  host: string;
  /** Already normalised: sorted, de-duplicated, `host:` removed, global tags added. */
  tags: readonly string[];
  counter?: number;
  gauge?: { value: number; updatedAtMs: number };
  set?: string[];
  histogram?: HistogramState;
  sketch?: SketchData;
}

/** A partial window from one aggregator, to be merged into another with {@link Aggregator.mergeState}. */
export interface WindowState {
  /** Window start (epoch ms) it was collected for. */
  windowStartMs: number;
  contexts: ContextState[];
  timestamped: Series[];
  events: StatsdEvent[];
  serviceChecks: ServiceCheck[];
}

/** Context `i` of `store` as a state; the aggregate is copied, so the store may go on changing. */
function contextStateOf(store: WindowStore, i: number): ContextState {
  const ctx = store.ctxs[i]!;
  const obj = store.objs[i];
  const cs: ContextState = { type: ctx.type, name: ctx.name, host: ctx.host, tags: ctx.tags };
  switch (ctx.kind) {
    case Kind.Counter:
      cs.counter = store.num[i]!;
      break;
    case Kind.Gauge:
      cs.gauge = { value: store.num[i]!, updatedAtMs: store.at[i]! };
      break;
    case Kind.Set:
      if (obj !== undefined) cs.set = [...(obj as Set<string>)];
      break;
    case Kind.Histogram:
    case Kind.Timer:
      if (obj !== undefined) cs.histogram = (obj as HistogramAgg).toState();
      break;
    case Kind.Distribution:
      if (obj !== undefined) cs.sketch = (obj as AgentSketch).toData();
      break;
  }
  return cs;
}

/**
 * Takes the open window as a state and opens the next one, without producing series. Idle contexts
 * are forgotten here, since zero-fill and expiry are the merging side's job.
 */
export function drainState(open: OpenWindow, table: ContextTable, pools: StorePools): WindowState {
  const windowNo = open.windowNo;
  const store = open.store;
  const contexts: ContextState[] = [];
  let hists = 0, sketches = 0;
  for (let i = 0; i < store.size; i++) {
    const cs = contextStateOf(store, i);
    if (cs.histogram !== undefined) hists++;
    if (cs.sketch !== undefined) sketches++;
    pools.release(store.objs[i]);
    store.ctxs[i] = undefined;
    store.objs[i] = undefined;
    contexts.push(cs);
  }
  // Recycled before take() asks the pools for the next store: a worker keeps reusing this one store.
  pools.recycle(store, hists, sketches);
  const taken = open.take();
  table.forgetUnseen(windowNo);
  return { windowStartMs: taken.start, contexts, timestamped: taken.timestamped, events: taken.events, serviceChecks: taken.serviceChecks };
}

/** The part of a {@link WindowState} besides its contexts, as {@link snapshotState} returns it at the end. */
export type WindowStateRest = Omit<WindowState, 'contexts'>;

/**
 * The open window as a state, without taking it (a checkpoint): yields its contexts `chunk` at a
 * time so the caller may yield to the event loop in between, and returns the rest of the window, or
 * undefined when the window closed meanwhile (its state is then the closed window's, not this one).
 * Samples added to contexts already yielded are not in the snapshot: it is the window as of the
 * moment each context was copied.
 */
export function* snapshotState(open: OpenWindow, chunk = 1024): Generator<ContextState[], WindowStateRest | undefined, void> {
  const store = open.store;
  const start = open.start;
  for (let i = 0; ; ) {
    if (open.store !== store || open.start !== start) return undefined;
    // store.size is read again each slice: contexts opened between slices are taken too.
    const end = Math.min(store.size, i + chunk);
    if (i >= end) break;
    const out: ContextState[] = [];
    for (; i < end; i++) out.push(contextStateOf(store, i));
    yield out;
  }
  return { windowStartMs: start, timestamped: [...open.timestamped], events: [...open.events], serviceChecks: [...open.serviceChecks] };
}

/**
 * Merges a partial window from another aggregator into the open window, with every aggregate's own
 * merge: counters add, gauges keep the latest update, sets unite, histograms and sketches merge.
 */
export function mergeState(open: OpenWindow, table: ContextTable, state: WindowState, exactSamples: number, gaugeDeltas: boolean): void {
  for (const cs of state.contexts) {
    const kind = kindOf(cs.type);
    // A state without its kind's aggregate carries nothing, and must not open an empty slot.
    const carried =
      kind === Kind.Counter ? cs.counter : kind === Kind.Gauge ? cs.gauge : kind === Kind.Set ? cs.set : kind === Kind.Distribution ? cs.sketch : cs.histogram;
    if (carried === undefined) continue;
    const ctx = open.contextOf(cs.type, cs.name, cs.host, cs.tags);
    if (ctx === undefined) continue;
    const slot = open.touch(ctx);
    const store = open.store;
    switch (kind) {
      case Kind.Counter:
        store.num[slot]! += cs.counter!;
        break;
      case Kind.Gauge: {
        const g = cs.gauge!;
        // Ties go to the later arrival.
        if (g.updatedAtMs >= store.at[slot]!) {
          store.num[slot] = g.value;
          store.at[slot] = g.updatedAtMs;
        }
        if (gaugeDeltas) table.lastGauges.set(ctx, store.num[slot]!);
        break;
      }
      case Kind.Set: {
        const set = open.setOf(slot);
        for (const m of cs.set!) set.add(m);
        break;
      }
      case Kind.Histogram:
      case Kind.Timer:
        // Into a pooled histogram, as samples go: a fresh one per context per merged window was churn.
        open.histOf(slot).merge(HistogramAgg.fromState(cs.histogram!, exactSamples));
        break;
      case Kind.Distribution:
        open.sketchOf(slot).merge(AgentSketch.fromData(cs.sketch!));
        break;
    }
  }
  for (const s of state.timestamped) open.timestamped.push(s);
  for (const e of state.events) open.events.push(e);
  for (const c of state.serviceChecks) open.serviceChecks.push(c);
}
