/**
 * Where a window's aggregates live: the column store of one window, the pools that let closed
 * windows' stores, histograms and sketches be reused, and the numbering of windows.
 */
import { AgentSketch } from './aggregates/agent-sketch.js';
import { HistogramAgg } from './aggregates/histogram.js';
import type { Context } from './context-table.js';

/** The aggregate object a window slot holds for sets, histograms and distributions. */
export type SlotObject = Set<string> | HistogramAgg | AgentSketch;

/** Window start (ms) for time `ms`, aligned to the wall clock. */
export function alignWindow(ms: number, intervalMs: number): number {
  return ms - (ms % intervalMs);
}

/**
 * Window numbers, counted from the first window: contexts record the number of the window they were
 * last seen in, a small integer, where an epoch-ms field would cost a boxed number per context.
 */
export class WindowClock {
  constructor(
    /** Start of window number 0 (epoch ms). */
    readonly epochMs: number,
    /** Window length (ms). */
    readonly intervalMs: number,
  ) {}

  /** Number of the window starting at `start` (aligned, so the division is exact). */
  windowNoOf(start: number): number {
    const no = (start - this.epochMs) / this.intervalMs;
    // `| 0` makes it a small integer (the division alone yields a boxed double), exact in this range.
    return no >= -0x40000000 && no <= 0x3fffffff ? no | 0 : no;
  }

  /** Start (epoch ms) of window number `no`. */
  startOf(no: number): number {
    return this.epochMs + no * this.intervalMs;
  }
}

/**
 * One window's aggregates, one slot per context with samples, in columns rather than an object per
 * context: a window of 200k contexts is then a few arrays instead of 400k small objects to allocate,
 * promote and collect every window. Stores are reused once a closed window has been built, so the
 * open window's columns are already allocated. A closed window is built from its store a chunk at a
 * time while the same contexts collect the next window in another store.
 */
export class WindowStore {
  /** Slots in use. */
  size = 0;
  /** Series the slots will make, counted as they are claimed (idle counters' zeros come on top). */
  series = 0;
  /** The context of each slot. */
  readonly ctxs: (Context | undefined)[] = [];
  /** Counter Σ value/rate, or gauge value. */
  num = new Float64Array(1024);
  /** Gauge update time (epoch ms); -∞ until set, so a merged gauge always wins over none. */
  at = new Float64Array(1024);
  /** Set members, histogram or sketch of each slot; undefined for counters and gauges. */
  readonly objs: (SlotObject | undefined)[] = [];

  /** Takes the next slot for `ctx`, which makes `series` series. */
  claim(ctx: Context, series: number): number {
    const slot = this.size++;
    this.series += series;
    if (slot === this.num.length) {
      const num = new Float64Array(slot * 2);
      num.set(this.num);
      this.num = num;
      const at = new Float64Array(slot * 2);
      at.set(this.at);
      this.at = at;
    }
    this.ctxs[slot] = ctx;
    this.objs[slot] = undefined;
    this.num[slot] = 0;
    this.at[slot] = -Infinity;
    return slot;
  }
}

/** Stores, histograms and sketches of built windows, emptied and kept for the next windows. */
export class StorePools {
  private readonly stores: WindowStore[] = [];
  private readonly hists: HistogramAgg[] = [];
  private readonly sketches: AgentSketch[] = [];

  constructor(
    /** Exact samples of a new histogram (see AggregatorOptions.histogramExactSamples). */
    private readonly exactSamples: number,
  ) {}

  /** A free store, or a new one. */
  store(): WindowStore {
    return this.stores.pop() ?? new WindowStore();
  }

  /** An empty histogram. */
  hist(): HistogramAgg {
    return this.hists.pop() ?? new HistogramAgg(this.exactSamples);
  }

  /** An empty sketch. */
  sketch(): AgentSketch {
    return this.sketches.pop() ?? new AgentSketch();
  }

  /** Empties a slot's aggregate into the pools, so the next windows reuse it. */
  release(obj: SlotObject | undefined): void {
    if (obj instanceof HistogramAgg) {
      obj.reset();
      this.hists.push(obj);
    } else if (obj instanceof AgentSketch) {
      obj.reset();
      this.sketches.push(obj);
    }
  }

  /**
   * Returns an emptied store for reuse. The pools keep at most what its window used (`hists`
   * histograms, `sketches` sketches), and a store grown far beyond it (by a burst of contexts) is let
   * go, so memory shrinks again when traffic does.
   */
  recycle(store: WindowStore, hists: number, sketches: number): void {
    const used = store.size;
    store.size = 0;
    store.series = 0;
    if (this.stores.length < 2 && store.num.length <= 4 * Math.max(used, 1024)) this.stores.push(store);
    if (this.hists.length > hists) this.hists.length = hists;
    if (this.sketches.length > sketches) this.sketches.length = sketches;
  }
}
