/** The series array of one window being built, and the one place a series point is made. */
import type { Context } from './context-table.js';
import type { Series } from './model.js';

/**
 * A window's series array, sized up front: pushing 400k series grew it some 30 times, each a copy
 * of a multi-megabyte array left for the old generation to collect.
 */
export class SeriesOut {
  /** The series so far (with unfilled room at the end until {@link done}). */
  readonly arr: Series[];
  private n = 0;

  constructor(
    expected: number,
    /** Window length in seconds, the `interval` of every point. */
    private readonly intervalS: number,
    /** Whether {@link aggregate} marks its points (the aggregator's `histogramSketches`). */
    private readonly markAggregates = false,
  ) {
    // Capped: V8 makes a slow dictionary array of `new Array(n)` for n in the tens of millions.
    this.arr = new Array<Series>(Math.min(expected, 1 << 22));
  }

  /** Appends; past the expected size it simply grows. */
  add(s: Series): void {
    this.arr[this.n++] = s;
  }

  /** Appends one point of a context, under the context's tags and host. */
  point(ctx: Context, metric: string, type: Series['type'], timestamp: number, value: number): void {
    this.arr[this.n++] = { metric, type, timestamp, value, interval: this.intervalS, tags: ctx.tags, host: ctx.host };
  }

  /** Appends a set's distinct count: a gauge marked `statsdType: 's'`. */
  set(ctx: Context, timestamp: number, value: number): void {
    this.arr[this.n++] = { metric: ctx.name, type: 'gauge', timestamp, value, interval: this.intervalS, tags: ctx.tags, host: ctx.host, statsdType: 's' };
  }

  /**
   * Appends one aggregate point of a histogram context, marked with `aggregateOf` only when the window
   * also carries histogram sketches: the default window keeps a single, smaller series shape.
   */
  aggregate(ctx: Context, metric: string, type: Series['type'], timestamp: number, value: number, aggregateOf: 'h' | 'ms'): void {
    if (!this.markAggregates) return this.point(ctx, metric, type, timestamp, value);
    this.arr[this.n++] = { metric, type, timestamp, value, interval: this.intervalS, tags: ctx.tags, host: ctx.host, aggregateOf };
  }

  /** Drops unfilled room, should the count have been high. */
  done(): void {
    if (this.arr.length > this.n) this.arr.length = this.n;
  }
}
