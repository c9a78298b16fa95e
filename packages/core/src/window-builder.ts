/**
 * Turns a taken window into its MetricBatch: every slot of its store becomes its series (or sketch),
 * then idle contexts are zero-filled or forgotten, in steps a caller can spread over loop turns.
 */
import type { AgentSketch } from './aggregates/agent-sketch.js';
import type { HistogramAgg } from './aggregates/histogram.js';
import { Kind, type Context, type ContextTable } from './context-table.js';
import type { HistogramSeries } from './histogram-series.js';
import type { HistogramSketchSeries, MetricBatch, SketchSeries } from './model.js';
import type { TakenWindow } from './open-window.js';
import type { ResolvedOptions } from './options.js';
import { SeriesOut } from './series-out.js';
import { tallySlots, type SampleTally } from './top-contexts.js';
import type { StorePools, WindowClock, WindowStore } from './window-store.js';

/** Contexts handled between two looks at the clock while a window's series are built. */
const FLUSH_CHUNK = 128;

/** Histograms and sketches a build emptied into the pools. */
interface Pooled {
  hists: number;
  sketches: number;
}

/** Builds closed windows' batches from their stores, one after another. */
export class WindowBuilder {
  private readonly intervalS: number;
  /**
   * Per-name sample counts of the last window built while {@link tallyWanted} said so; undefined
   * otherwise, so nobody asking costs nothing but one check per window.
   */
  lastTally: SampleTally | undefined;
  /** Whether the next builds should count samples per name (someone asked for top contexts lately). */
  tallyWanted: () => boolean = () => false;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly table: ContextTable,
    private readonly pools: StorePools,
    private readonly clock: WindowClock,
    private readonly histograms: HistogramSeries,
  ) {
    this.intervalS = opts.flushIntervalMs / 1000;
  }

  /**
   * Turns a taken window into its batch. The returned generator does the work and yields every
   * FLUSH_CHUNK contexts, where the caller may give the event loop a turn; the batch is complete once
   * it is exhausted.
   */
  build(taken: TakenWindow): { batch: MetricBatch; steps: Generator<void, void, undefined> } {
    // Counted at claim time: a pass over the slots here would hold the loop at the boundary.
    const out = new SeriesOut(taken.timestamped.length + taken.store.series, this.intervalS, this.opts.histogramSketches);
    for (const s of taken.timestamped) out.add(s);
    const sketches: SketchSeries[] = [];
    const histogramSketches: HistogramSketchSeries[] | undefined = this.opts.histogramSketches ? [] : undefined;
    const batch: MetricBatch = {
      windowStartMs: taken.start,
      intervalMs: this.opts.flushIntervalMs,
      series: out.arr,
      sketches,
      events: taken.events,
      serviceChecks: taken.serviceChecks,
      ...(histogramSketches !== undefined ? { histogramSketches } : {}),
    };
    return { batch, steps: this.steps(taken, out, sketches, histogramSketches) };
  }

  private *steps(taken: TakenWindow, series: SeriesOut, sketches: SketchSeries[], histogramSketches: HistogramSketchSeries[] | undefined): Generator<void, void, undefined> {
    const start = taken.start;
    const store = taken.store;
    // The work is in plain methods called per chunk: V8 optimises those after a few calls, while a
    // generator's own loop would run unoptimised for the whole of the first (coldest) window.
    const pooled: Pooled = { hists: 0, sketches: 0 };
    // Counted before emitSlots empties the slots into the pools.
    const tally = this.tallyWanted() ? new Map<string, number>() : undefined;
    for (let i = 0; i < store.size; i += FLUSH_CHUNK) {
      const end = Math.min(store.size, i + FLUSH_CHUNK);
      if (tally !== undefined) tallySlots(store, i, end, tally);
      this.emitSlots(store, i, end, start, series, sketches, histogramSketches, pooled);
      yield;
    }
    this.lastTally = tally === undefined ? undefined : { windowStartMs: start, byName: tally };
    this.pools.recycle(store, pooled.hists, pooled.sketches);
    this.histograms.windowDone();

    // Idle counters report 0 until they expire; every other idle context is dropped at once.
    // A context with samples in this window or a newer one (the build may run after the next window
    // opened) is left alone; a counter idle here but busy again by then misses this window's 0.
    const chains = this.table.chains();
    while (!this.sweepIdle(chains, FLUSH_CHUNK, start, series)) yield;
    series.done();
  }

  /** Turns slots [from, to) of a closed window's store into series, emptying them into the pools. */
  private emitSlots(
    store: WindowStore,
    from: number,
    to: number,
    start: number,
    series: SeriesOut,
    sketches: SketchSeries[],
    histogramSketches: HistogramSketchSeries[] | undefined,
    pooled: Pooled,
  ): void {
    const ts = Math.floor(start / 1000);
    const interval = this.intervalS;
    const countType = this.opts.countersAs;
    for (let i = from; i < to; i++) {
      const ctx = store.ctxs[i]!;
      const obj = store.objs[i];
      switch (ctx.kind) {
        case Kind.Counter: {
          const sum = store.num[i]!;
          series.point(ctx, ctx.name, countType, ts, countType === 'rate' ? sum / interval : sum);
          break;
        }
        case Kind.Gauge:
          series.point(ctx, ctx.name, 'gauge', ts, store.num[i]!);
          break;
        case Kind.Set:
          if (obj !== undefined) series.set(ctx, ts, (obj as Set<string>).size);
          break;
        case Kind.Histogram:
        case Kind.Timer:
          if (obj !== undefined) {
            const h = obj as HistogramAgg;
            const of = ctx.kind === Kind.Timer ? 'ms' : 'h';
            this.histograms.emit(ctx, h, ts, series, of);
            if (histogramSketches !== undefined && !h.isEmpty) {
              histogramSketches.push({ metric: ctx.name, sourceType: of, timestamp: ts, interval, tags: ctx.tags, host: ctx.host, sketch: h.toSketchData() });
            }
            pooled.hists++;
          }
          break;
        case Kind.Distribution:
          if (obj !== undefined) {
            const sk = obj as AgentSketch;
            if (!sk.isEmpty) sketches.push({ metric: ctx.name, timestamp: ts, interval, tags: ctx.tags, host: ctx.host, sketch: sk.toData() });
            pooled.sketches++;
          }
          break;
      }
      this.pools.release(obj);
      store.ctxs[i] = undefined;
      store.objs[i] = undefined;
    }
  }

  /**
   * Zero-fills or forgets the contexts idle since before `start`, for up to `chunk` hash chains of
   * `chains`; true once every chain has been seen.
   */
  private sweepIdle(chains: IterableIterator<Context>, chunk: number, start: number, series: SeriesOut): boolean {
    const startNo = this.clock.windowNoOf(start);
    const ts = Math.floor(start / 1000);
    const countType = this.opts.countersAs;
    const expiry = this.opts.counterExpiryMs;
    for (let n = 0; n < chunk; n++) {
      const r = chains.next();
      if (r.done === true) return true;
      for (let ctx: Context | undefined = r.value; ctx !== undefined; ) {
        // Taken before a possible forget, which unlinks ctx.
        const next: Context | undefined = ctx.next;
        if (ctx.seen < startNo) {
          if (ctx.kind === Kind.Counter && this.clock.startOf(ctx.seen) + expiry > start) series.point(ctx, ctx.name, countType, ts, 0);
          else this.table.forget(ctx);
        }
        ctx = next;
      }
    }
    return false;
  }
}
