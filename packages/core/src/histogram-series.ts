/**
 * What a histogram (`h`, `ms`) context flushes each window, as the agent does: one series per
 * configured aggregate (`.max`, `.median`, `.avg`, `.count`…) and one per configured percentile.
 * Percentile q is named `<name>.<p>percentile` with p = trunc(q·100 + 0.5) (0.95 → `.95percentile`),
 * and its value is HistogramAgg.percentile(q): the first sample, by value, whose cumulative weight
 * exceeds trunc((p·count − 1) / 100), exact up to histogramExactSamples, from the sketch beyond.
 */
import type { HistogramAgg } from './aggregates/histogram.js';
import type { Context } from './context-table.js';
import type { HistogramAggregate } from './options.js';
import type { SeriesOut } from './series-out.js';

/** The value of a gauge aggregate of a histogram. */
function gaugeOf(agg: Exclude<HistogramAggregate, 'count'>, h: HistogramAgg): number {
  switch (agg) {
    case 'max':
      return h.max;
    case 'min':
      return h.min;
    case 'median':
      return h.median();
    case 'avg':
      return h.avg;
    case 'sum':
      return h.sum;
  }
}

/** The series names and values of histogram contexts, with the names kept across windows. */
export class HistogramSeries {
  /** Name suffixes in the order {@link emit} emits them: aggregates, then percentiles. */
  readonly suffixes: readonly string[];
  private namesNow = new Map<string, readonly string[]>();
  private namesBefore = new Map<string, readonly string[]>();

  constructor(
    private readonly aggregates: readonly HistogramAggregate[],
    private readonly percentiles: readonly number[],
    private readonly countersAs: 'rate' | 'count',
    /** Window length in seconds, for `.count` as a rate. */
    private readonly intervalS: number,
  ) {
    this.suffixes = [...aggregates.map((a) => `.${a}`), ...percentiles.map((q) => `.${Math.trunc(q * 100 + 0.5)}percentile`)];
  }

  /** Series one histogram context makes per window. */
  get count(): number {
    return this.suffixes.length;
  }

  /** Appends the series of one context's histogram for the window at `ts` (seconds). */
  emit(ctx: Context, h: HistogramAgg, ts: number, out: SeriesOut, of: 'h' | 'ms'): void {
    const names = (ctx.seriesNames ??= this.names(ctx.name));
    const aggs = this.aggregates;
    let i = 0;
    for (; i < aggs.length; i++) {
      const agg = aggs[i]!;
      if (agg !== 'count') out.aggregate(ctx, names[i]!, 'gauge', ts, gaugeOf(agg, h), of);
      else if (this.countersAs === 'rate') out.aggregate(ctx, names[i]!, 'rate', ts, h.count / this.intervalS, of);
      else out.aggregate(ctx, names[i]!, 'count', ts, h.count, of);
    }
    for (const q of this.percentiles) out.aggregate(ctx, names[i++]!, 'gauge', ts, h.percentile(q), of);
  }

  /** Called once a window is built: names not used for a window longer are let go. */
  windowDone(): void {
    this.namesBefore = this.namesNow;
    this.namesNow = new Map();
  }

  /**
   * A histogram name's series names, kept by each context from its first flush on: built afresh each
   * window they were 300k strings per window at 60k histogram contexts, all kept until the sinks are
   * done, and ropes every sink had to flatten. Contexts of the same name first flushed within a window
   * of each other share them.
   */
  private names(name: string): readonly string[] {
    let names = this.namesNow.get(name);
    if (names === undefined) {
      names = this.namesBefore.get(name);
      if (names === undefined) {
        // Ropes, like any concatenation, but only once: the first sink to read one flattens it for good.
        const suffixes = this.suffixes;
        const made: string[] = [];
        for (let i = 0; i < suffixes.length; i++) made.push(name + suffixes[i]!);
        names = made;
      }
      this.namesNow.set(name, names);
    }
    return names;
  }
}
