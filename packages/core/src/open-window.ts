/**
 * The open window: where every sample, event and service check lands, in the slot of its context in
 * the open window's store. This is the ingest hot path; a closed window is taken from it whole.
 */
import { AgentSketch } from './aggregates/agent-sketch.js';
import type { HistogramAgg } from './aggregates/histogram.js';
import type { ComponentContext, DropReason } from './component.js';
import { BLOCKED, Kind, type Context, type ContextTable } from './context-table.js';
import type { AddResult } from './contracts.js';
import type { ErrorCode } from './errors.js';
import type { MetricType, Sample, Series, ServiceCheck, StatsdEvent } from './model.js';
import type { ResolvedOptions } from './options.js';
import type { SampleView } from './parser/types.js';
import { normalizeTags } from './tags.js';
import { alignWindow, type StorePools, type WindowClock, type WindowStore } from './window-store.js';

/** What a window close takes from the open window at the boundary, before its series are built. */
export interface TakenWindow {
  /** Window start (epoch ms). */
  start: number;
  store: WindowStore;
  timestamped: Series[];
  events: StatsdEvent[];
  serviceChecks: ServiceCheck[];
}

/** The code logged with each of the aggregator's drop reasons. */
const DROP_CODES: Record<DropReason<'aggregator'>, ErrorCode> = {
  non_finite: 'MD_ERR_AGG_NON_FINITE',
  timestamped_type: 'MD_ERR_AGG_TIMESTAMPED_TYPE',
  max_events: 'MD_ERR_AGG_MAX_EVENTS',
  max_contexts: 'MD_ERR_AGG_MAX_CONTEXTS',
};

/** How many of a line's values are finite: the others are already counted as `non_finite`. */
function finiteValues(view: SampleView): number {
  let n = 0;
  for (let i = 0; i < view.valueCount; i++) if (Number.isFinite(view.values[i])) n++;
  return n;
}

/** The window now open and everything that adds to it. */
export class OpenWindow {
  /** Start (epoch ms) of the window now open. */
  start: number;
  /** clock.windowNoOf(start): what contexts record as `seen`. */
  windowNo: number;
  /** The open window's aggregates. */
  store: WindowStore;
  /** `|T` samples, which skip aggregation. */
  timestamped: Series[] = [];
  events: StatsdEvent[] = [];
  serviceChecks: ServiceCheck[] = [];

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly table: ContextTable,
    private readonly pools: StorePools,
    private readonly clock: WindowClock,
    /** Series a slot of each Kind makes: one, or one per histogram series, or none (sketches). */
    private readonly seriesPerKind: readonly number[],
    /** The aggregator's component, which counts and logs the drops. */
    private readonly component: ComponentContext<'aggregator'>,
    /** Gauge update times and the next window's start come from it. */
    private readonly now: () => number,
  ) {
    this.start = clock.epochMs;
    this.windowNo = clock.windowNoOf(this.start);
    this.store = pools.store();
  }

  /** Opens the window starting at `start` (aligned). */
  open(start: number): void {
    this.start = start;
    this.windowNo = this.clock.windowNoOf(start);
  }

  /** Swaps out the open window's aggregates at the boundary and opens the next window. */
  take(): TakenWindow {
    const start = this.start;
    const taken: TakenWindow = { start, store: this.store, timestamped: this.timestamped, events: this.events, serviceChecks: this.serviceChecks };
    this.store = this.pools.store();
    this.timestamped = [];
    this.events = [];
    this.serviceChecks = [];
    const interval = this.opts.flushIntervalMs;
    this.open(Math.max(start + interval, alignWindow(this.now(), interval)));
    return taken;
  }

  /** Adds one sample in object form; `weight` received items it stands for, counted as drops if dropped. */
  addSample(sample: Sample, weight: number): AddResult {
    if (sample.timestampS !== undefined && sample.timestampS > 0) {
      const t = this.table.transform(sample.name, sample.tags ?? []);
      if (t === undefined) return this.blocked(weight);
      return this.addTimestamped(t.name, sample.type, sample.value, t.tags, sample.timestampS, sample.host, weight);
    }
    if (sample.type !== 's' && !Number.isFinite(sample.value)) {
      this.drop('non_finite', sample.name, weight);
      return 'dropped';
    }
    const ctx = this.table.ofSample(sample);
    if (ctx === undefined) {
      this.drop('max_contexts', sample.name, weight);
      return 'dropped';
    }
    if (ctx === BLOCKED) return this.blocked(weight);
    const slot = this.touch(ctx);
    if (ctx.kind === Kind.Set) {
      this.setOf(slot).add(sample.setMember ?? String(sample.value));
    } else {
      this.addValue(ctx, slot, sample.value, sample.sampleRate ?? 1, sample.gaugeDelta ?? 0);
    }
    return 'accepted';
  }

  /** Adds one parsed StatsD metric line. */
  addView(view: SampleView): void {
    const buf = view.buf;
    if (view.timestampS > 0) {
      this.addTimestampedView(view);
      return;
    }
    const n = view.valueCount;
    // One finite value is the usual line: checked inline, the loop of hasFiniteValue only for the rest.
    if (view.type !== 's' && !(n === 1 && Number.isFinite(view.values[0])) && !this.hasFiniteValue(view)) return;
    const ctx = this.table.ofView(view);
    if (ctx === undefined) {
      this.drop('max_contexts', buf.toString('utf8', view.nameStart, view.nameEnd), 1);
      return;
    }
    if (ctx === BLOCKED) {
      this.blocked(view.type === 's' ? 1 : finiteValues(view));
      return;
    }
    const slot = ctx.seen === this.windowNo ? ctx.slot : this.touch(ctx);
    const kind = ctx.kind;
    if (kind === Kind.Counter && n === 1) {
      // The counter line, without addValue's switch and rate check: the parser gives a rate in (0, 1],
      // and 1 needs no division. Measured on the ingest bench's counters case (see commit message).
      const rate = view.sampleRate;
      const v = view.values[0]!;
      this.store.num[slot]! += rate === 1 ? v : v / rate;
      return;
    }
    if (kind === Kind.Set) {
      this.setOf(slot).add(buf.toString('latin1', view.setStart, view.setEnd));
      return;
    }
    for (let i = 0; i < n; i++) {
      const v = view.values[i]!;
      // Already counted by hasFiniteValue.
      if (Number.isFinite(v)) this.addValue(ctx, slot, v, view.sampleRate, view.gaugeDelta);
    }
  }

  /** A `|T` StatsD line, apart from addView so the per-line code stays small enough to be inlined. */
  private addTimestampedView(view: SampleView): void {
    const buf = view.buf;
    if (view.type === 's') {
      this.drop('timestamped_type', buf.toString('utf8', view.nameStart, view.nameEnd), 1);
      return;
    }
    const name = buf.toString('utf8', view.nameStart, view.nameEnd);
    const t = this.table.transform(name, view.tagsStart >= 0 ? buf.toString('utf8', view.tagsStart, view.tagsEnd).split(',') : []);
    if (t === undefined) {
      this.blocked(view.valueCount);
      return;
    }
    for (let i = 0; i < view.valueCount; i++) this.addTimestamped(t.name, view.type, view.values[i]!, t.tags, view.timestampS, undefined, 1);
  }

  /** Counts non-finite values as dropped; false when none is left, so no context is created for them. */
  private hasFiniteValue(view: SampleView): boolean {
    let finite = 0;
    for (let i = 0; i < view.valueCount; i++) {
      if (Number.isFinite(view.values[i])) finite++;
      else this.drop('non_finite', '(statsd)', 1);
    }
    return finite > 0;
  }

  /** Adds one event, unless the window's cap is reached. */
  addEvent(event: StatsdEvent): void {
    if (this.enrich(event, event.title)) this.events.push(event);
  }

  /** Adds one service check, unless the window's cap is reached. */
  addServiceCheck(check: ServiceCheck): void {
    if (this.enrich(check, check.name)) this.serviceChecks.push(check);
  }

  /** Applies the per-window cap, then the agent's host, tag and timestamp rules shared by events and checks. */
  private enrich(item: StatsdEvent | ServiceCheck, name: string): boolean {
    if (this.events.length + this.serviceChecks.length >= this.opts.maxEventsPerWindow) {
      this.drop('max_events', name, 1);
      return false;
    }
    const { tags, host } = normalizeTags(item.tags, this.opts.globalTags);
    item.tags = tags;
    item.host = item.host ?? host ?? this.opts.hostname;
    if (item.timestampS === 0) item.timestampS = Math.floor(this.now() / 1000);
    return true;
  }

  /** The context of a merged state, as {@link ContextTable.lookup}, counting a full table as a drop. */
  contextOf(type: MetricType, name: string, host: string, tags: readonly string[]): Context | undefined {
    const ctx = this.table.lookup(type, name, host, tags);
    if (ctx === undefined) this.drop('max_contexts', name, 1);
    return ctx;
  }

  /** The context's slot in the open window's store, claimed on its first sample of the window. */
  touch(ctx: Context): number {
    if (ctx.seen === this.windowNo) return ctx.slot;
    ctx.seen = this.windowNo;
    return (ctx.slot = this.store.claim(ctx, this.seriesPerKind[ctx.kind]!));
  }

  /** The slot's set members in the open window. */
  setOf(slot: number): Set<string> {
    return ((this.store.objs[slot] as Set<string> | undefined) ??= new Set<string>());
  }

  /** The slot's histogram in the open window, taken from the pool on first use. */
  histOf(slot: number): HistogramAgg {
    const objs = this.store.objs;
    let h = objs[slot] as HistogramAgg | undefined;
    if (h === undefined) objs[slot] = h = this.pools.hist();
    return h;
  }

  /** The slot's sketch in the open window, taken from the pool on first use. */
  sketchOf(slot: number): AgentSketch {
    const objs = this.store.objs;
    let sk = objs[slot] as AgentSketch | undefined;
    if (sk === undefined) objs[slot] = sk = this.pools.sketch();
    return sk;
  }

  /** Counter, gauge, histogram and distribution semantics of one value (sets take members instead). */
  private addValue(ctx: Context, slot: number, v: number, rate: number, delta: 0 | 1 | -1): void {
    const r = rate > 0 && rate <= 1 ? rate : 1;
    const store = this.store;
    switch (ctx.kind) {
      case Kind.Counter:
        store.num[slot]! += v / r;
        return;
      case Kind.Gauge:
        // Etsy semantics: a signed value adjusts the gauge only when one exists, else it sets it.
        if (this.opts.gaugeDeltas) {
          const last = this.table.lastGauges.get(ctx);
          if (delta !== 0 && last !== undefined) v += last;
          this.table.lastGauges.set(ctx, v);
        }
        store.num[slot] = v;
        store.at[slot] = this.now();
        return;
      case Kind.Histogram:
      case Kind.Timer:
        this.histOf(slot).add(v, r);
        return;
      case Kind.Distribution:
        this.sketchOf(slot).insert(v, AgentSketch.weightForRate(r));
        return;
      case Kind.Set:
        return;
    }
  }

  /** A `|T` sample: gauges and counters go straight to a series of their own timestamp, other types are dropped. */
  private addTimestamped(name: string, type: MetricType, value: number, rawTags: readonly string[], ts: number, hostOverride: string | undefined, weight: number): AddResult {
    if (type !== 'g' && type !== 'c') {
      this.drop('timestamped_type', name, weight);
      return 'dropped';
    }
    if (!Number.isFinite(value)) {
      this.drop('non_finite', name, weight);
      return 'dropped';
    }
    const { tags, host } = normalizeTags(rawTags, this.opts.globalTags);
    const interval = this.opts.flushIntervalMs / 1000;
    const asCount = this.opts.countersAs === 'count';
    this.timestamped.push({
      metric: name,
      type: type === 'g' ? 'gauge' : asCount ? 'count' : 'rate',
      timestamp: ts,
      // The agent's no-aggregation path ignores the sample rate and divides by the interval.
      value: type === 'g' || asCount ? value : value / interval,
      interval,
      tags,
      host: hostOverride ?? host ?? this.opts.hostname,
    });
    return 'accepted';
  }

  /**
   * Counts samples a filter list blocked, on the `transform` component. Not logged: the user asked for
   * it, and the count says how much.
   */
  private blocked(n: number): 'dropped' {
    this.table.dropBlocked(n);
    return 'dropped';
  }

  /** Counts a drop on the aggregator; its log line, rate-limited per reason, names one such metric. */
  private drop(reason: DropReason<'aggregator'>, name: string, n: number): void {
    this.component.drop(reason, n, {
      code: DROP_CODES[reason],
      fields: { metric: name.slice(0, 200) },
      message: `Dropped samples (${reason}); see metrics_distributor.dropped{component:aggregator,reason:${reason}}.`,
    });
  }
}
