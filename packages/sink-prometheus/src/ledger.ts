/**
 * Per-item delivery records of remote write when the window is on disk (`--data-dir`). Remote write
 * sends cumulative values, so a replay into a fresh state must skip the items already delivered
 * entirely (neither applied nor sent): a counter's first value after the reset is counted in full by
 * `increase()`. This maps the window's items to the state series they touched ("entries", encoded in
 * order), each request to the entries its samples cover, and reports an item through the core
 * `BatchDelivery` once every request holding a sample of its entry was delivered, lost or kept.
 */
import type { BatchDelivery, HistogramSketchSeries, MetricBatch, Series } from '@metrics-distributor/core';

/** What became of a request. `replaced`: a 413 split it into halves, which report instead. */
export type RequestOutcome = 'delivered' | 'lost' | 'kept' | 'replaced';

/** The entries one request's samples cover: `from` .. `from + starts.length - 1`. */
export interface Cover {
  /** The first entry (its first samples may be in the previous request). */
  readonly from: number;
  /** Index of each covered entry's first sample in the request (0 for the first). */
  readonly starts: Uint32Array;
}

/** What {@link WindowLedger.sketch} and {@link WindowLedger.histogram} return for an item delivered earlier: skip it. */
export const DONE = -2;
/** What {@link WindowLedger.histogram} returns for a sketch with nothing to record it on: apply it, unrecorded. */
export const UNRECORDED = -1;

/** Unit flags: skipped (done on an earlier export, or reported by a histogram sketch's unit), touched a series. */
const SKIP = 1;
const TOUCHED = 2;
/** Entry flags: a request holding some of its samples was lost, or kept. */
const E_LOST = 1;
const E_KEPT = 2;

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Item indices collected for one report, per kind. */
class Report {
  readonly series: number[] = [];
  readonly sketches: number[] = [];
}

/**
 * The delivery bookkeeping of one window's export. Units are the window's items as the state sees
 * them: `u < S` is `series[u]`, `S <= u < S + K` is `sketches[u - S]`, and from `S + K` on one unit per
 * histogram sketch, recorded on its context's aggregate series items (histogram sketches are no
 * ledger kind). Each unit touches at most one state series.
 */
export class WindowLedger {
  private readonly nSeries: number;
  private readonly nSketches: number;
  private readonly flags: Uint8Array;
  /** Aggregate-series runs (one `h`/`ms` context each) as `[start, end)` pairs of series indices. */
  private readonly runs: number[] = [];
  private runBase = '';
  /** The run each histogram sketch is recorded on, or -1. */
  private readonly histRun: Int32Array;
  private nextRun = 0;
  /** Per entry: its first unit (-1: none), and further units of entries touched by several items. */
  private entryUnit = new Int32Array(0);
  private moreUnits = new Map<number, number[]>();
  /** Per entry: requests holding some of its samples not settled yet, and what became of those settled. */
  private pending = new Int32Array(0);
  private entryFlags = new Uint8Array(0);

  constructor(
    private readonly batch: MetricBatch,
    /** The core ledger of the window. */
    readonly delivery: BatchDelivery,
    /** The aggregate series of `h`/`ms` contexts are left out (the batch has their sketches). */
    private readonly skipAggregates: boolean,
  ) {
    this.nSeries = batch.series.length;
    this.nSketches = batch.sketches.length;
    const hs = batch.histogramSketches?.length ?? 0;
    this.flags = new Uint8Array(this.nSeries + this.nSketches + hs);
    this.histRun = new Int32Array(hs).fill(-1);
  }

  /** Whether to apply `series[i]` (not done earlier, not an aggregate its sketch stands for). */
  series(i: number, s: Series): boolean {
    if (this.skipAggregates && s.aggregateOf !== undefined) {
      this.noteAggregate(i, s);
      if (this.done(i)) this.flags[i] = SKIP;
      return false;
    }
    if (this.done(i)) {
      this.flags[i] = SKIP;
      return false;
    }
    return true;
  }

  private done(i: number): boolean {
    return this.delivery.replay && this.delivery.done('series', i);
  }

  /** Core emits a context's aggregate series back to back (aggregates, then percentiles): each such run is one context. */
  private noteAggregate(i: number, s: Series): void {
    const runs = this.runs;
    const n = runs.length;
    if (n > 0 && runs[n - 1] === i) {
      const first = this.batch.series[runs[n - 2]!]!;
      const base = this.runBase;
      if (
        s.aggregateOf === first.aggregateOf &&
        s.host === first.host &&
        s.metric.length > base.length &&
        s.metric.charCodeAt(base.length) === 46 &&
        s.metric.startsWith(base) &&
        s.metric.indexOf('.', base.length + 1) < 0 &&
        sameTags(s.tags, first.tags)
      ) {
        runs[n - 1] = i + 1;
        return;
      }
    }
    const dot = s.metric.lastIndexOf('.');
    this.runBase = dot < 0 ? s.metric : s.metric.slice(0, dot);
    runs.push(i, i + 1);
  }

  /** Unit of `sketches[i]`, or {@link DONE}. */
  sketch(i: number): number {
    const u = this.nSeries + i;
    if (this.delivery.replay && this.delivery.done('sketches', i)) {
      this.flags[u] = SKIP;
      return DONE;
    }
    return u;
  }

  /**
   * Unit of histogram sketch `j` (after every series was seen), {@link UNRECORDED} when it has no
   * aggregate items to be recorded on, or {@link DONE} when those were delivered earlier.
   */
  histogram(j: number, h: HistogramSketchSeries): number {
    const u = this.nSeries + this.nSketches + j;
    const runs = this.runs;
    const series = this.batch.series;
    // Runs and sketches come in the same context order; a context with an empty histogram has a run but no sketch.
    for (let r = this.nextRun; 2 * r < runs.length; r++) {
      const first = series[runs[2 * r]!]!;
      const m = first.metric;
      if (
        first.aggregateOf !== h.sourceType ||
        first.host !== h.host ||
        m.length <= h.metric.length ||
        m.charCodeAt(h.metric.length) !== 46 ||
        !m.startsWith(h.metric) ||
        m.indexOf('.', h.metric.length + 1) >= 0 ||
        !sameTags(first.tags, h.tags)
      ) {
        continue;
      }
      this.nextRun = r + 1;
      this.histRun[j] = r;
      let allDone = true;
      for (let i = runs[2 * r]!; i < runs[2 * r + 1]!; i++) {
        if (this.flags[i] === 0) allDone = false;
        // Reported by the sketch's unit from now on.
        this.flags[i] = SKIP;
      }
      if (allDone) {
        this.flags[u] = SKIP;
        return DONE;
      }
      return u;
    }
    this.flags[u] = SKIP;
    return UNRECORDED;
  }

  /**
   * Takes the touched entries' units (`units[e]`, plus `more`) once the window is applied, and reports
   * at once what needs nothing from the receiver: items that touched no series, events and checks.
   */
  applied(units: readonly number[], more: Map<number, number[]>): void {
    const e = units.length;
    this.entryUnit = Int32Array.from(units);
    this.moreUnits = more;
    this.pending = new Int32Array(e);
    this.entryFlags = new Uint8Array(e);
    const flags = this.flags;
    for (let i = 0; i < e; i++) if (units[i]! >= 0) flags[units[i]!]! |= TOUCHED;
    for (const list of more.values()) for (const u of list) flags[u]! |= TOUCHED;
    const now = new Report();
    for (let u = 0; u < flags.length; u++) if (flags[u] === 0) this.collect(u, now);
    const d = this.delivery;
    const rest = (kind: 'events' | 'serviceChecks', n: number): number[] => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) if (!d.replay || !d.done(kind, i)) out.push(i);
      return out;
    };
    const events = rest('events', this.batch.events.length);
    const checks = rest('serviceChecks', this.batch.serviceChecks.length);
    if (events.length > 0) d.delivered('events', events);
    if (checks.length > 0) d.delivered('serviceChecks', checks);
    this.report(now, 'delivered');
  }

  /** Counts a new request's entries; `carried`: its first entry was counted already; `continues`: its last entry goes on in the next one (count it for that one now). */
  open(cover: Cover, carried: boolean, continues: boolean): void {
    const to = cover.from + cover.starts.length - 1;
    for (let e = carried ? cover.from + 1 : cover.from; e <= to; e++) this.pending[e]!++;
    if (continues) this.pending[to]!++;
  }

  /** What became of a request: the items whose entries have no request left unsettled are reported. */
  settle(cover: Cover, outcome: RequestOutcome): void {
    const to = cover.from + cover.starts.length - 1;
    const bit = outcome === 'lost' ? E_LOST : outcome === 'kept' ? E_KEPT : 0;
    const delivered = new Report();
    const lost = new Report();
    const kept = new Report();
    for (let e = cover.from; e <= to; e++) {
      this.entryFlags[e]! |= bit;
      if (--this.pending[e]! !== 0) continue;
      const f = this.entryFlags[e]!;
      const into = (f & E_LOST) !== 0 ? lost : (f & E_KEPT) !== 0 ? kept : delivered;
      const u = this.entryUnit[e]!;
      if (u >= 0) this.collect(u, into);
      if (this.moreUnits.size > 0) for (const v of this.moreUnits.get(e) ?? []) this.collect(v, into);
    }
    this.report(delivered, 'delivered');
    this.report(lost, 'lost');
    this.report(kept, 'kept');
  }

  /** The halves of a split request as covers, for `samples` (the first half's sample count). */
  static halves(cover: Cover, samples: number): [Cover, Cover] {
    const s = cover.starts;
    const entryOf = (sample: number): number => {
      let k = 0;
      while (k + 1 < s.length && s[k + 1]! <= sample) k++;
      return k;
    };
    const ka = entryOf(samples - 1);
    const kb = entryOf(samples);
    const b = new Uint32Array(s.length - kb);
    for (let k = 1; k < b.length; k++) b[k] = s[kb + k]! - samples;
    return [
      { from: cover.from, starts: s.slice(0, ka + 1) },
      { from: cover.from + kb, starts: b },
    ];
  }

  private collect(u: number, into: Report): void {
    if (u < this.nSeries) into.series.push(u);
    else if (u < this.nSeries + this.nSketches) into.sketches.push(u - this.nSeries);
    else {
      const r = this.histRun[u - this.nSeries - this.nSketches]!;
      if (r < 0) return;
      const d = this.delivery;
      for (let i = this.runs[2 * r]!; i < this.runs[2 * r + 1]!; i++) if (!d.replay || !d.done('series', i)) into.series.push(i);
    }
  }

  private report(r: Report, as: 'delivered' | 'lost' | 'kept'): void {
    const d = this.delivery;
    if (as === 'delivered') {
      if (r.series.length > 0) d.delivered('series', r.series);
      if (r.sketches.length > 0) d.delivered('sketches', r.sketches);
    } else {
      if (r.series.length > 0) d[as]('series', r.series.length);
      if (r.sketches.length > 0) d[as]('sketches', r.sketches.length);
    }
  }
}
