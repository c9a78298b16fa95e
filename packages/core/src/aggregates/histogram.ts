/**
 * The agent's histogram/timer aggregate (`pkg/metrics/histogram.go`) for `h` and `ms` samples.
 * Samples are kept exactly, so small contexts flush exactly what the agent would; past `exactLimit`
 * they move into an {@link AgentSketch} so a hot context stays under 64 KiB. Count, sum, min and max
 * are tracked outside the samples and stay exact either way.
 */
import type { SketchData } from '../model.js';
import { AgentSketch, SKETCH_MAX_BIN_COUNT, sketchKey } from './agent-sketch.js';

/** Samples kept exactly per histogram before switching to a sketch; 16 KiB at most with weights. */
export const DEFAULT_HISTOGRAM_EXACT_LIMIT = 1000;

/**
 * Small, because most contexts see a handful of samples per window. Samples live in plain arrays
 * rather than Float64Arrays: a typed array costs ~200 bytes of V8 objects besides its data, more than
 * the samples of a typical context.
 */
const INITIAL_CAPACITY = 4;
/** A reset histogram keeps sample arrays up to this capacity for its next window. */
const KEEP_CAPACITY = 64;

/** Shared sort scratch: sorting is synchronous, so one buffer serves every histogram. */
let sortValues = new Float64Array(64);
let sortWeights = new Float64Array(64);
let sortOrder = new Uint32Array(64);

/** Scratch sketch binning exact samples for {@link HistogramAgg.toSketchData}: synchronous, so one serves all. */
const binScratch = new AgentSketch();

/**
 * A plain array of `cap` numbers; only the first `n` entries are ever read. Filled by a loop: `fill`
 * is a C++ builtin here, a call into the runtime that cost twice the whole loop for a new
 * histogram's 4 slots (a micro-benchmark on Node 20: ~250 against ~105 ns per array).
 */
function numberArray(cap: number): number[] {
  const a = new Array<number>(cap);
  for (let i = 0; i < cap; i++) a[i] = 0;
  return a;
}

/** The serialisable form of a {@link HistogramAgg}: exact samples, or a sketch past the exact limit. */
export interface HistogramState {
  count: number;
  sum: number;
  min: number;
  max: number;
  values?: number[];
  weights?: number[];
  sketch?: SketchData;
}

/** One histogram context within one window, with the agent's sample-rate quirks and quantile ranks. */
export class HistogramAgg {
  /** Sample count after which samples go to a sketch instead. */
  readonly exactLimit: number;
  private values: number[] | undefined;
  /** Weights parallel to `values`; undefined while every weight is 1, the common case. */
  private weights: number[] | undefined;
  private n = 0;
  private sorted = true;
  private sketch: AgentSketch | undefined;
  private cnt = 0;
  private total = 0;
  private lo = Infinity;
  private hi = -Infinity;

  constructor(exactLimit: number = DEFAULT_HISTOGRAM_EXACT_LIMIT) {
    if (!Number.isInteger(exactLimit) || exactLimit < 0) throw new RangeError(`exactLimit must be a non-negative integer, got ${exactLimit}`);
    this.exactLimit = exactLimit;
  }

  /**
   * Adds one sample like the agent: weight `trunc(1/rate)` for the count and ranks, but `value·(1/rate)`
   * for the sum (so `avg` is skewed at rates like 0.3, exactly as in Datadog). A rate outside (0, 1]
   * counts as 1; non-finite values are ignored since the agent drops them before aggregation.
   */
  add(value: number, sampleRate = 1): void {
    if (value - value !== 0) return;
    let inv = 1;
    let weight = 1;
    if (sampleRate > 0 && sampleRate < 1) {
      inv = 1 / sampleRate;
      weight = Math.trunc(inv);
    }
    this.cnt += weight;
    this.total += value * inv;
    if (value < this.lo) this.lo = value;
    if (value > this.hi) this.hi = value;
    if (this.sketch === undefined && this.n >= this.exactLimit) this.switchToSketch();
    if (this.sketch !== undefined) this.sketch.insert(value, weight);
    else this.append(value, weight);
  }

  /** A plain, structured-cloneable copy, for sending a partial window to another process. */
  toState(): HistogramState {
    return {
      count: this.cnt,
      sum: this.total,
      min: this.lo,
      max: this.hi,
      ...(this.sketch !== undefined
        ? { sketch: this.sketch.toData() }
        : { values: this.values?.slice(0, this.n) ?? [], ...(this.weights !== undefined ? { weights: this.weights.slice(0, this.n) } : {}) }),
    };
  }

  /**
   * The window as agent-sketch bins: its own sketch past the exact limit, else its exact samples (with
   * their weights) binned. Count, sum, min and max are the histogram's own, exact either way.
   */
  toSketchData(): SketchData {
    let keys: readonly number[], counts: readonly number[];
    if (this.sketch !== undefined) ({ keys, counts } = this.sketch.toData());
    else ({ keys, counts } = this.binExact());
    if (this.cnt === 0) return { count: 0, min: 0, max: 0, sum: 0, avg: 0, keys, counts };
    return { count: this.cnt, min: this.lo, max: this.hi, sum: this.total, avg: this.total / this.cnt, keys, counts };
  }

  /**
   * The exact samples' bins. Sorted samples have ascending keys, so equal keys are runs: a pass over
   * them is some ten times cheaper than a sketch's insert-and-merge for the few samples most contexts
   * hold. A run heavier than a wire bin (huge 1/rate weights) goes through a sketch, which splits it.
   */
  private binExact(): { keys: number[]; counts: number[] } {
    this.sort();
    const values = this.values, weights = this.weights;
    const keys: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < this.n; i++) {
      const k = sketchKey(values![i]!);
      const w = weights === undefined ? 1 : weights[i]!;
      const last = keys.length - 1;
      if (last >= 0 && keys[last] === k) counts[last]! += w;
      else {
        keys.push(k);
        counts.push(w);
      }
      if (counts[counts.length - 1]! > SKETCH_MAX_BIN_COUNT) {
        for (let j = 0; j < this.n; j++) binScratch.insert(values![j]!, weights === undefined ? 1 : weights[j]!);
        const d = binScratch.toData();
        binScratch.reset();
        return { keys: d.keys as number[], counts: d.counts as number[] };
      }
    }
    return { keys, counts };
  }

  /** Rebuilds a histogram from {@link HistogramAgg.toState}. */
  static fromState(state: HistogramState, exactLimit: number = DEFAULT_HISTOGRAM_EXACT_LIMIT): HistogramAgg {
    const h = new HistogramAgg(exactLimit);
    if (state.sketch !== undefined) h.sketch = AgentSketch.fromData(state.sketch);
    else if (state.values !== undefined) {
      if (state.values.length > exactLimit) h.switchToSketch();
      for (let i = 0; i < state.values.length; i++) {
        const w = state.weights?.[i] ?? 1;
        if (h.sketch !== undefined) h.sketch.insert(state.values[i]!, w);
        else h.append(state.values[i]!, w);
      }
    }
    h.cnt = state.count;
    h.total = state.sum;
    h.lo = state.min;
    h.hi = state.max;
    return h;
  }

  /** Adds every sample of `other` (its count, sum, min and max included); `other` is left as it was. */
  merge(other: HistogramAgg): void {
    if (other.cnt === 0) return;
    if (other === this) other = this.copy();
    this.cnt += other.cnt;
    this.total += other.total;
    if (other.lo < this.lo) this.lo = other.lo;
    if (other.hi > this.hi) this.hi = other.hi;
    if (this.sketch === undefined && other.sketch === undefined && this.n + other.n <= this.exactLimit) {
      for (let i = 0; i < other.n; i++) this.append(other.values![i]!, other.weights === undefined ? 1 : other.weights[i]!);
      return;
    }
    if (this.sketch === undefined) this.switchToSketch();
    const sketch = this.sketch!;
    if (other.sketch !== undefined) sketch.merge(other.sketch);
    else for (let i = 0; i < other.n; i++) sketch.insert(other.values![i]!, other.weights === undefined ? 1 : other.weights[i]!);
  }

  /** The agent's `.median`: the first sample (by value) whose cumulative weight exceeds ⌊(count−1)/2⌋. */
  median(): number {
    if (this.cnt === 0) return NaN;
    return this.valueAtRank(Math.floor((this.cnt - 1) / 2));
  }

  /**
   * The agent's `.<p>percentile` for q in (0, 1]: p = int(q·100 + 0.5), then the first sample whose
   * cumulative weight exceeds int((p·count − 1)/100). Integer arithmetic avoids q·count rounding.
   */
  percentile(q: number): number {
    if (this.cnt === 0 || Number.isNaN(q)) return NaN;
    const p = Math.trunc(q * 100 + 0.5);
    return this.valueAtRank(Math.max(0, Math.trunc((p * this.cnt - 1) / 100)));
  }

  /**
   * Nearest-rank quantile for any q in [0, 1]: the smallest sample with cumulative weight ≥ q·count.
   * Agrees with `median()` at 0.5 and with `percentile()` at whole percents.
   */
  quantile(q: number): number {
    if (this.cnt === 0 || Number.isNaN(q)) return NaN;
    if (q <= 0) return this.lo;
    if (q >= 1) return this.hi;
    const x = q * this.cnt;
    // Shave the last bits so q·count landing a hair above an integer (0.07·100) does not skip a rank.
    return this.valueAtRank(Math.max(0, Math.ceil(x - x * 1e-12) - 1));
  }

  /**
   * The sample at 0-based weighted rank `rank` in value order: exact while samples are stored,
   * otherwise the sketch bin holding that rank (≤ 0.78 % relative error), clamped into [min, max].
   */
  valueAtRank(rank: number): number {
    if (this.cnt === 0) return NaN;
    if (this.sketch !== undefined) return this.sketch.valueAtRank(rank);
    this.sort();
    const values = this.values!, weights = this.weights;
    if (weights === undefined) return values[Math.min(Math.max(0, Math.floor(rank)), this.n - 1)]!;
    let acc = 0;
    for (let i = 0; i < this.n; i++) {
      acc += weights[i]!;
      if (acc > rank) return values[i]!;
    }
    return this.hi;
  }

  /** Total weight Σ trunc(1/rate): the agent's `.count` before division by the interval. */
  get count(): number {
    return this.cnt;
  }

  /** Σ value·(1/rate), the agent's `.sum`. */
  get sum(): number {
    return this.total;
  }

  /** sum / count, the agent's `.avg` (skewed by fractional 1/rate, as in the agent); NaN when empty. */
  get avg(): number {
    return this.cnt === 0 ? NaN : this.total / this.cnt;
  }

  /** Exact minimum, NaN when empty. */
  get min(): number {
    return this.cnt === 0 ? NaN : this.lo;
  }

  /** Exact maximum, NaN when empty. */
  get max(): number {
    return this.cnt === 0 ? NaN : this.hi;
  }

  /** True when no sample was added; such contexts emit nothing. */
  get isEmpty(): boolean {
    return this.cnt === 0;
  }

  /** Whether quantiles are still exact (samples stored) rather than sketch estimates. */
  get isExact(): boolean {
    return this.sketch === undefined;
  }

  /**
   * Empties the histogram for reuse in another window, as if newly constructed with the same limit;
   * small sample arrays are kept, so a reused histogram allocates nothing for its first samples.
   */
  reset(): void {
    this.n = 0;
    this.sorted = true;
    this.sketch = undefined;
    this.cnt = 0;
    this.total = 0;
    this.lo = Infinity;
    this.hi = -Infinity;
    if (this.values !== undefined && this.values.length > KEEP_CAPACITY) this.values = undefined;
    // Weights mark a weighted histogram; a stale array would only slow the next window down.
    this.weights = undefined;
  }

  /** Approximate retained heap bytes, for the per-context memory budget (≤ 64 KiB). */
  byteSize(): number {
    let size = 96;
    if (this.values !== undefined) size += 48 + 8 * this.values.length;
    if (this.weights !== undefined) size += 48 + 8 * this.weights.length;
    if (this.sketch !== undefined) size += this.sketch.byteSize();
    return size;
  }

  /** Stores one exact sample, growing the arrays geometrically up to `exactLimit`. */
  private append(value: number, weight: number): void {
    const n = this.n;
    let values = this.values;
    if (values === undefined || n === values.length) {
      const cap = Math.min(Math.max(INITIAL_CAPACITY, n * 2), Math.max(this.exactLimit, 1));
      const grown = numberArray(cap);
      for (let i = 0; i < n; i++) grown[i] = values![i]!;
      this.values = values = grown;
      const weights = this.weights;
      if (weights !== undefined) {
        const w = numberArray(cap);
        for (let i = 0; i < n; i++) w[i] = weights[i]!;
        this.weights = w;
      }
    }
    if (weight !== 1 && this.weights === undefined) {
      this.weights = numberArray(values.length);
      this.weights.fill(1, 0, n);
    }
    if (n > 0 && value < values[n - 1]!) this.sorted = false;
    values[n] = value;
    if (this.weights !== undefined) this.weights[n] = weight;
    this.n = n + 1;
  }

  /** Moves the stored samples into a sketch and frees them. */
  private switchToSketch(): void {
    const sketch = new AgentSketch();
    const values = this.values, weights = this.weights;
    for (let i = 0; i < this.n; i++) sketch.insert(values![i]!, weights === undefined ? 1 : weights[i]!);
    this.sketch = sketch;
    this.values = undefined;
    this.weights = undefined;
    this.n = 0;
    this.sorted = true;
  }

  /** Sorts the stored samples by value (weights follow); done lazily at read time. */
  private sort(): void {
    if (this.sorted) return;
    this.sorted = true;
    const n = this.n;
    const values = this.values!;
    const weights = this.weights;
    if (sortValues.length < n) {
      let cap = sortValues.length;
      while (cap < n) cap *= 2;
      sortValues = new Float64Array(cap);
      sortWeights = new Float64Array(cap);
      sortOrder = new Uint32Array(cap);
    }
    const sv = sortValues;
    if (weights === undefined) {
      for (let i = 0; i < n; i++) sv[i] = values[i]!;
      sv.subarray(0, n).sort();
      for (let i = 0; i < n; i++) values[i] = sv[i]!;
      return;
    }
    const order = sortOrder.subarray(0, n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => values[a]! - values[b]!);
    const sw = sortWeights;
    for (let i = 0; i < n; i++) {
      const j = order[i]!;
      sv[i] = values[j]!;
      sw[i] = weights[j]!;
    }
    for (let i = 0; i < n; i++) {
      values[i] = sv[i]!;
      weights[i] = sw[i]!;
    }
  }

  /** A deep copy, so merging a histogram into itself reads a stable source. */
  private copy(): HistogramAgg {
    const c = new HistogramAgg(this.exactLimit);
    c.values = this.values?.slice();
    c.weights = this.weights?.slice();
    c.n = this.n;
    c.sorted = this.sorted;
    c.cnt = this.cnt;
    c.total = this.total;
    c.lo = this.lo;
    c.hi = this.hi;
    if (this.sketch !== undefined) {
      c.sketch = new AgentSketch();
      c.sketch.merge(this.sketch);
    }
    return c;
  }
}
