/**
 * Distributions arrive as the Datadog agent's DDSketch (γ = 1.015625: a bin's representative value is
 * within 0.78 % of every value in it). OTLP wants either base-2 exponential buckets or explicit bounds.
 *
 * - Exponential: each bin's representative value γ^(k−1338) goes to the bucket (base^i, base^(i+1)]
 *   that holds it, base = 2^(2^−scale). At the default scale 6 a bucket (1.09 % wide) is narrower
 *   than a bin (1.56 %), so no two bins share a bucket: the sketch's information is kept whole, and a
 *   value read back from its bucket is within 1.9 % of what was sent (0.78 % + one bucket). Lower
 *   scales merge neighbouring bins: the bound is then 0.78 % + 2^(2^−scale) − 1.
 * - Explicit: a bin goes to the first bucket whose bound's sketch key is ≥ the bin's key, so a value
 *   exactly on a bound is counted in that bucket (as `le` means); only values less than 0.78 % above a
 *   bound, in the bound's own bin, can be counted one bucket too low.
 *
 * Count, sum, min and max are exact in both (from the sketch's summary); the count is the bins' total.
 */
import { sketchKey, sketchLowerBound, type SketchData } from '@metrics-distributor/core';

/** One side (positive or negative values) of an exponential histogram. */
export interface ExponentialBuckets {
  /** Index of the first bucket. */
  readonly offset: number;
  /** Dense counts from `offset` up. */
  readonly counts: readonly number[];
}

/** An ExponentialHistogramDataPoint's values. */
export interface ExponentialPoint {
  readonly count: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
  readonly scale: number;
  readonly zeroCount: number;
  /** Largest magnitude counted as zero: below the sketch's smallest non-zero bin. */
  readonly zeroThreshold: number;
  readonly positive: ExponentialBuckets;
  readonly negative: ExponentialBuckets;
}

/** A HistogramDataPoint's values. */
export interface ExplicitPoint {
  readonly count: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
  readonly bounds: readonly number[];
  /** `bounds.length + 1` counts; the last is everything above the last bound. */
  readonly counts: readonly number[];
}

/** The sketch's key 1 starts here; every smaller magnitude is key 0. */
const SKETCH_ZERO_THRESHOLD = sketchLowerBound(1);

const EMPTY: ExponentialBuckets = Object.freeze({ offset: 0, counts: Object.freeze([]) });

/** The bucket index at `scale` holding magnitude `v` > 0: buckets are upper-inclusive. */
export function exponentialIndex(v: number, scale: number): number {
  return Math.ceil(Math.log2(v) * 2 ** scale) - 1;
}

function dense(byIndex: Map<number, number>): ExponentialBuckets {
  if (byIndex.size === 0) return EMPTY;
  let lo = Infinity;
  let hi = -Infinity;
  for (const i of byIndex.keys()) {
    if (i < lo) lo = i;
    if (i > hi) hi = i;
  }
  const counts = new Array<number>(hi - lo + 1).fill(0);
  for (const [i, c] of byIndex) counts[i - lo] = c;
  return { offset: lo, counts };
}

/** Converts a sketch to an exponential histogram at `scale` (0…8). */
export function toExponential(d: SketchData, scale: number): ExponentialPoint {
  const pos = new Map<number, number>();
  const neg = new Map<number, number>();
  let zero = 0;
  let count = 0;
  for (let i = 0; i < d.keys.length; i++) {
    const k = d.keys[i]!;
    const c = d.counts[i]!;
    count += c;
    if (k === 0) {
      zero += c;
      continue;
    }
    let v = Math.abs(sketchLowerBound(k));
    // The ±32767 keys hold every magnitude beyond the sketch's range: the exact extreme stands for them.
    if (!Number.isFinite(v)) v = Math.abs(k > 0 ? d.max : d.min);
    const idx = exponentialIndex(v, scale);
    const side = k > 0 ? pos : neg;
    side.set(idx, (side.get(idx) ?? 0) + c);
  }
  return {
    count,
    sum: d.sum,
    min: d.min,
    max: d.max,
    scale,
    zeroCount: zero,
    zeroThreshold: zero > 0 ? SKETCH_ZERO_THRESHOLD : 0,
    positive: dense(pos),
    negative: dense(neg),
  };
}

/** Sketch keys of each bound array, computed once per array. */
const boundKeysCache = new WeakMap<readonly number[], readonly number[]>();

/** Converts a sketch to explicit buckets with upper bounds `bounds` (ascending). */
export function toExplicit(d: SketchData, bounds: readonly number[]): ExplicitPoint {
  let keys = boundKeysCache.get(bounds);
  if (keys === undefined) boundKeysCache.set(bounds, (keys = bounds.map(sketchKey)));
  const counts = new Array<number>(bounds.length + 1).fill(0);
  let count = 0;
  let b = 0;
  // Sketch keys are ascending, so one pass over bins and bounds together.
  for (let i = 0; i < d.keys.length; i++) {
    const k = d.keys[i]!;
    while (b < keys.length && keys[b]! < k) b++;
    counts[b] = (counts[b] ?? 0) + d.counts[i]!;
    count += d.counts[i]!;
  }
  return { count, sum: d.sum, min: d.min, max: d.max, bounds, counts };
}
