/**
 * The in-memory exposition state: metric families keyed by their sanitised name, each with its
 * series keyed by their rendered label set. Exports only update numbers here; scrapes read it.
 */
import { AgentSketch, type ComponentContext, type DropReason, type ErrorCode, type Series, type SketchData } from '@metrics-distributor/core';
import { LabelCache, sanitizeMetricName } from './names.js';
import type { EncodedLabelSet } from './write-request.js';

/** The Prometheus types this sink exposes. */
export type FamilyType = 'counter' | 'gauge' | 'histogram' | 'summary';

/** One exposed series: a counter total, a gauge value, or a cumulative histogram. */
export interface SeriesState {
  /** Rendered labels without braces (`host="a",env="prod"`), also its key in the family. */
  readonly labels: string;
  /** Counter total, gauge value, or histogram/summary sum. */
  value: number;
  /** Histogram or summary observation count. */
  count: number;
  /** Histogram counts per bucket, not cumulative; the last slot is the `+Inf` overflow. The sum is unscaled. */
  readonly buckets: number[] | undefined;
  /** A summary's quantile values (already scaled), one per configured quantile: those of the last window that had samples. */
  readonly quantiles: number[] | undefined;
  /** When it was last updated (ms, the sink's clock): what the TTL counts from. */
  updatedMs: number;
  /** The export that last listed it as touched, so it is listed once per window. */
  touchedIn: number;
  /** Its place in that export's touched list, so a second item touching it is recorded on the same entry. */
  touchedAt: number;
  /** Factor on a histogram's values and sum (0.001 for `ms` timers); 1 for other types. */
  readonly scale: number;
  /** Raw name of the first writer: a gauge written by another raw series is a clash. */
  readonly originName: string;
  /** Raw tags of the first writer, for the same check. */
  readonly originTags: readonly string[];
  /** Remote write's encoding of {@link labels}, made on first send and kept with the series. */
  remoteLabels: EncodedLabelSet | undefined;
}

/** One metric family: its exposed name, type and series. */
export interface Family {
  /** The family name: for counters without `_total` (samples are `<name>_total`). */
  readonly name: string;
  /** Its Prometheus type; one name has one type. */
  readonly type: FamilyType;
  /** The StatsD name the family was first created from, for HELP. */
  readonly rawName: string;
  /** Its series by rendered label set. */
  readonly series: Map<string, SeriesState>;
  /** Set once it has no series left and was removed: a render still holding it skips it. */
  removed: boolean;
  /** {@link name} in UTF-8 for remote write, made on first send and kept with the family. */
  remoteName: Buffer | undefined;
}

/** Options of the {@link ExpositionState}, already validated. */
export interface StateOptions {
  /** Series not updated for this long are removed. */
  ttlMs: number;
  /** Series kept at most. */
  maxSeries: number;
  /** Histogram bucket upper bounds, ascending, finite (`+Inf` is implied). */
  buckets: readonly number[];
  /** Factor applied to distribution values before bucketing and to their sum (e.g. 0.001: ms to seconds). */
  sketchScale: number;
  /** Quantiles a summary exposes, each in (0, 1). */
  quantiles?: readonly number[];
  /** Keep the series each export updates (see {@link ExpositionState.takeTouched}), for remote write. */
  trackTouched?: boolean;
}

/** A series an export updated, with its family: what remote write sends for the window. */
export interface Touched {
  /** The series' family. */
  readonly family: Family;
  /** The series, with its cumulative value after the update. */
  readonly series: SeriesState;
}

/** Smallest bound of the raw-name cache (see `nameCacheMax`): raw names are user input, so the cache must be bounded. */
const NAME_CACHE_MAX = 100_000;
/**
 * What a family's name is extended with in the exposition, per type: a counter `x` holds `x` (its
 * OpenMetrics family name) and `x_total`, a histogram `x`, `x_bucket`, `x_sum`, `x_count`.
 */
const EXPOSED_SUFFIXES: Readonly<Record<FamilyType, readonly string[]>> = {
  counter: ['', '_total'],
  gauge: [''],
  summary: ['', '_sum', '_count'],
  histogram: ['', '_bucket', '_sum', '_count'],
};
/** Every non-empty suffix above. */
const ANY_SUFFIX: readonly string[] = ['_total', '_bucket', '_sum', '_count'];

/** When the series limit is hit, expired series are swept at most this often before new ones are dropped. */
const LIMIT_SWEEP_EVERY_MS = 1000;

// The agent's sketch key mapping (core `agent-sketch.ts`, fixed on the wire): γ = 1 + 2/128, bias 1338.
const SKETCH_LN_GAMMA = Math.log1p(2 / 128);
const SKETCH_BIAS = 1338;
const SKETCH_MAX_KEY = 32767;
const SKETCH_NORM_MIN = Math.pow(1 + 2 / 128, 1 - SKETCH_BIAS);

/** Go's math.RoundToEven, as the agent rounds keys. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  if (x - f === 0.5) return f % 2 === 0 ? f : f + 1;
  return Math.round(x);
}

function magnitudeKey(a: number): number {
  if (!(a >= SKETCH_NORM_MIN)) return 0;
  const k = roundHalfEven(Math.log(a) / SKETCH_LN_GAMMA) + SKETCH_BIAS;
  return k >= SKETCH_MAX_KEY ? SKETCH_MAX_KEY : k < 1 ? 1 : k;
}

/** The agent sketch key of a value, bit for bit as core computes it: what a bucket bound is compared by. */
export function sketchKey(v: number): number {
  return v < 0 ? -magnitudeKey(-v) : magnitudeKey(v);
}

/**
 * A rate's window total (`value × interval`). The aggregator divided an exact sum by the interval,
 * so a product within 1e-9 relative of an integer is that integer: totals of whole increments stay exact.
 */
export function windowTotal(s: Series): number {
  if (s.type !== 'rate') return s.value;
  const x = s.value * s.interval;
  const r = Math.round(x);
  return Math.abs(x - r) <= 1e-9 * Math.max(1, Math.abs(x)) ? r : x;
}

/** `n` zeros as a packed array of doubles (1.5 then 0 makes V8 pick double elements from the start). */
function zeros(n: number): number[] {
  const a: number[] = [];
  for (let i = 0; i < n; i++) a.push(1.5);
  for (let i = 0; i < n; i++) a[i] = 0;
  return a;
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Every family and series this sink exposes, with the rules that keep it bounded and unambiguous. */
export class ExpositionState {
  /** Families by name; the names each exposes follow from its type ({@link EXPOSED_SUFFIXES}), so no second map holds them. */
  private readonly families = new Map<string, Family>();
  /** The family each raw name last resolved to: one lookup per point instead of sanitising, suffix check and a second map. */
  private readonly byRaw = new Map<string, Family>();
  /** Bound of the raw-name cache: past the live series (each has a name), so a steady state never thrashes it. */
  private readonly nameCacheMax: number;
  private readonly labelCache = new LabelCache();
  private seriesCount = 0;
  private lastLimitSweepMs = -Infinity;

  /**
   * The sketch key of each bucket bound (in unscaled units). A bin goes to the first bucket whose bound's
   * key is ≥ its own: a value exactly on a bound is counted in that bucket, as Prometheus' `le` says,
   * and values within the bound's bin (< 0.78 % above it) are too; no other value is misplaced.
   */
  private readonly boundKeys = new Map<number, Int32Array>();
  private touched: Touched[] = [];
  /** The export running now, so a series touched twice in one window is listed once. */
  private exportNo = 0;
  /**
   * The item being applied (the sink's unit number, -1: none), recorded per touched series when the
   * export tracks delivery per item (`--data-dir` with remote write): see {@link takeUnits}.
   */
  unit = -1;
  private unitsOn = false;
  /** Per touched entry, the first unit that touched it; further units of an entry in {@link moreUnits}. */
  private units: number[] = [];
  private moreUnits = new Map<number, number[]>();

  constructor(
    private readonly opts: StateOptions,
    private readonly context: ComponentContext<'sink'>,
  ) {
    this.nameCacheMax = Math.max(NAME_CACHE_MAX, 2 * opts.maxSeries);
  }

  /** The bucket bounds' sketch keys for values scaled by `scale`. */
  private keysFor(scale: number): Int32Array {
    let keys = this.boundKeys.get(scale);
    if (keys === undefined) {
      keys = Int32Array.from(this.opts.buckets, (b) => sketchKey(b / scale));
      this.boundKeys.set(scale, keys);
    }
    return keys;
  }

  /** Starts a new export's list of touched series; with `trackUnits`, also which unit touched each (see {@link unit}). */
  beginExport(trackUnits = false): void {
    this.exportNo++;
    this.touched = [];
    this.unitsOn = trackUnits && this.opts.trackTouched === true;
    this.unit = -1;
    if (this.unitsOn) {
      this.units = [];
      this.moreUnits = new Map();
    }
  }

  /** The units that touched each entry of the list {@link takeTouched} returned (empty unless `trackUnits`). */
  takeUnits(): { units: number[]; more: Map<number, number[]> } {
    const out = { units: this.units, more: this.moreUnits };
    this.units = [];
    this.moreUnits = new Map();
    this.unitsOn = false;
    this.unit = -1;
    return out;
  }

  /** The series updated since {@link beginExport}, each once (empty unless `trackTouched`). */
  takeTouched(): Touched[] {
    const t = this.touched;
    this.touched = [];
    return t;
  }

  private touch(family: Family, series: SeriesState): void {
    if (this.opts.trackTouched !== true) return;
    if (series.touchedIn === this.exportNo) {
      if (this.unitsOn && this.unit >= 0) this.addUnit(series.touchedAt);
      return;
    }
    series.touchedIn = this.exportNo;
    series.touchedAt = this.touched.length;
    this.touched.push({ family, series });
    if (this.unitsOn) this.units.push(this.unit);
  }

  /** A second item touched entry `e` (`req` and `req.total`, two tag orders of one label set). */
  private addUnit(e: number): void {
    if (this.units[e]! < 0) {
      this.units[e] = this.unit;
      return;
    }
    const list = this.moreUnits.get(e);
    if (list === undefined) this.moreUnits.set(e, [this.unit]);
    else if (!list.includes(this.unit)) list.push(this.unit);
  }

  /** Live series (histograms count once each). */
  get size(): number {
    return this.seriesCount;
  }

  /** Tags that lost their label to another tag of the same sanitised name, and bare tags left out (per tag list). */
  get tagStats(): { duplicates: number; bare: number } {
    return { duplicates: this.labelCache.duplicates, bare: this.labelCache.bare };
  }

  /** The families now, as a snapshot a render can walk across event-loop turns. */
  snapshot(): Family[] {
    return Array.from(this.families.values());
  }

  /** Applies one series of a batch: counters add their window total, gauges take the value. */
  applySeries(s: Series, nowMs: number): void {
    if (s.type === 'gauge') {
      if (!Number.isFinite(s.value)) return this.drop('invalid_value', 'MD_ERR_SINK_EXPORT', s.metric);
      const st = this.series(s.metric, 'gauge', s.host, s.tags, nowMs);
      if (st === undefined) return;
      if (st.originName !== s.metric || !sameTags(st.originTags, s.tags)) return this.drop('name_clash', 'MD_ERR_SINK_NAME_CLASH', s.metric);
      st.value = s.value;
      st.updatedMs = nowMs;
      this.touch(this.lastFamily!, st);
      return;
    }
    const delta = windowTotal(s);
    // Counters only go up in Prometheus; statsd_exporter drops negative increments as well.
    if (!(delta >= 0 && delta < Infinity)) return this.drop('invalid_value', 'MD_ERR_SINK_EXPORT', s.metric);
    const st = this.series(s.metric, 'counter', s.host, s.tags, nowMs);
    if (st === undefined) return;
    // An idle counter's zero-filled windows neither refresh the TTL nor change the total.
    if (delta === 0) return;
    st.value += delta;
    st.updatedMs = nowMs;
    this.touch(this.lastFamily!, st);
  }

  /**
   * Adds one window's sketch to a cumulative histogram: each bin's count goes to the bucket of its value.
   * `scale` is the factor to the exposed unit (default the distributions' `sketchScale`; 0.001 for `ms`).
   */
  applySketch(metric: string, host: string, tags: readonly string[], sk: SketchData, nowMs: number, scale = this.opts.sketchScale): void {
    if (sk.count === 0) return;
    const st = this.sketchTarget(metric, 'histogram', host, tags, sk, nowMs, scale);
    if (st === undefined) return;
    const boundKeys = this.keysFor(scale);
    const buckets = st.buckets!;
    let b = 0;
    for (let i = 0; i < sk.keys.length; i++) {
      const k = sk.keys[i]!;
      // Keys are ascending, so the bucket index only moves forward.
      while (b < boundKeys.length && k > boundKeys[b]!) b++;
      buckets[b]! += sk.counts[i]!;
    }
    // The raw sum: scaled when rendered, so a total of whole values stays exact.
    this.addWindow(st, sk, nowMs);
  }

  /**
   * Adds one window's sketch to a summary: `_sum` and `_count` are cumulative across windows (as
   * statsd_exporter's), the quantiles are this window's, read from its sketch (≤ 0.78 % relative error).
   */
  applySummary(metric: string, host: string, tags: readonly string[], sk: SketchData, nowMs: number, scale = this.opts.sketchScale): void {
    if (sk.count === 0) return;
    const st = this.sketchTarget(metric, 'summary', host, tags, sk, nowMs, scale);
    if (st === undefined) return;
    let sketch: AgentSketch;
    try {
      sketch = AgentSketch.fromData(sk);
    } catch {
      // Keys or counts out of the agent's range: input from the wire, so a counted drop, not a bug.
      return this.drop('invalid_value', 'MD_ERR_SINK_EXPORT', metric);
    }
    const qs = this.opts.quantiles ?? [];
    const out = st.quantiles!;
    for (let i = 0; i < qs.length; i++) out[i] = sketch.quantile(qs[i]!) * scale;
    this.addWindow(st, sk, nowMs);
  }

  /** The series a window's sketch feeds, after the checks histograms and summaries share; undefined when dropped (counted). */
  private sketchTarget(metric: string, type: 'histogram' | 'summary', host: string, tags: readonly string[], sk: SketchData, nowMs: number, scale: number): SeriesState | undefined {
    if (!Number.isFinite(sk.sum) || sk.keys.length !== sk.counts.length) {
      this.drop('invalid_value', 'MD_ERR_SINK_EXPORT', metric);
      return undefined;
    }
    const st = this.series(metric, type, host, tags, nowMs, scale);
    if (st === undefined) return undefined;
    // One series fed in two units (an `ms` timer and an `h` histogram of one name) would mix them.
    if (st.scale !== scale) {
      this.drop('name_clash', 'MD_ERR_SINK_NAME_CLASH', metric, { scale, existingScale: st.scale });
      return undefined;
    }
    return st;
  }

  /** Adds a window's sum and count to a cumulative series and marks it fresh. */
  private addWindow(st: SeriesState, sk: SketchData, nowMs: number): void {
    st.value += sk.sum;
    st.count += sk.count;
    st.updatedMs = nowMs;
    this.touch(this.lastFamily!, st);
  }

  /** Removes every series not updated within the TTL, and families left empty. Returns how many went. */
  sweep(nowMs: number): number {
    const cutoff = nowMs - this.opts.ttlMs;
    let removed = 0;
    for (const fam of this.families.values()) {
      for (const [key, st] of fam.series) {
        if (st.updatedMs <= cutoff) {
          fam.series.delete(key);
          removed++;
        }
      }
      if (fam.series.size === 0) this.removeFamily(fam);
    }
    this.seriesCount -= removed;
    return removed;
  }

  /** Whether a series is past its TTL (a render skips it even before a sweep removed it). */
  expired(st: SeriesState, nowMs: number): boolean {
    return st.updatedMs <= nowMs - this.opts.ttlMs;
  }

  private removeFamily(fam: Family): void {
    fam.removed = true;
    this.families.delete(fam.name);
  }

  /**
   * The family exposing the name `exposed` (a sample name or an OpenMetrics family name), if any: the
   * family of that very name, or one whose name plus one of its type's suffixes gives it.
   */
  private holderOf(exposed: string, own: string): Family | undefined {
    // `own` is the new family's name, known to be free: no lookup of it is needed.
    if (exposed !== own) {
      const direct = this.families.get(exposed);
      if (direct !== undefined) return direct;
    }
    for (const suffix of ANY_SUFFIX) {
      if (exposed.length <= suffix.length || !exposed.endsWith(suffix)) continue;
      const base = exposed.slice(0, -suffix.length);
      if (base === own) continue;
      const fam = this.families.get(base);
      if (fam !== undefined && EXPOSED_SUFFIXES[fam.type].includes(suffix)) return fam;
    }
    return undefined;
  }

  /** The family for a raw name and type, created if its names are free; undefined (and counted) on a clash. */
  private family(raw: string, type: FamilyType): Family | undefined {
    const cached = this.byRaw.get(raw);
    if (cached !== undefined && cached.type === type && !cached.removed) return cached;
    const fam = this.resolveFamily(raw, type);
    if (fam !== undefined) {
      if (this.byRaw.size >= this.nameCacheMax) this.byRaw.clear();
      this.byRaw.set(raw, fam);
    }
    return fam;
  }

  private resolveFamily(raw: string, type: FamilyType): Family | undefined {
    // Sanitised once per raw name: the family is cached by raw name (`byRaw`) afterwards.
    let name = sanitizeMetricName(raw);
    // `req.total` and `req` are the same counter family, exposed as `req_total`.
    if (type === 'counter' && name.endsWith('_total') && name.length > 6) name = name.slice(0, -6);
    const fam = this.families.get(name);
    if (fam !== undefined) {
      if (fam.type === type) return fam;
      this.drop('type_clash', 'MD_ERR_SINK_TYPE_CLASH', raw, { type, existing: fam.type });
      return undefined;
    }
    for (const suffix of EXPOSED_SUFFIXES[type]) {
      const exposed = name + suffix;
      const other = this.holderOf(exposed, name);
      if (other !== undefined) {
        this.drop('name_clash', 'MD_ERR_SINK_NAME_CLASH', raw, { exposed, heldBy: other.name, heldByType: other.type });
        return undefined;
      }
    }
    const created: Family = { name, type, rawName: raw, series: new Map(), removed: false, remoteName: undefined };
    this.families.set(name, created);
    return created;
  }

  /** The family of the series {@link series} last returned. */
  private lastFamily: Family | undefined;

  private series(raw: string, type: FamilyType, host: string, tags: readonly string[], nowMs: number, scale = 1): SeriesState | undefined {
    const fam = this.family(raw, type);
    if (fam === undefined) return undefined;
    const labels = this.labelCache.labels(host, tags);
    const st = fam.series.get(labels);
    this.lastFamily = fam;
    if (st !== undefined) return st;
    if (this.seriesCount >= this.opts.maxSeries) {
      if (nowMs - this.lastLimitSweepMs >= LIMIT_SWEEP_EVERY_MS) {
        this.lastLimitSweepMs = nowMs;
        this.sweep(nowMs);
      }
      if (this.seriesCount >= this.opts.maxSeries) {
        // The family may have been created for this series only, or emptied by the sweep.
        if (fam.series.size === 0 && !fam.removed) this.removeFamily(fam);
        this.drop('max_series', 'MD_ERR_SINK_MAX_SERIES', raw, { maxSeries: this.opts.maxSeries });
        return undefined;
      }
    }
    // The sweep may have removed this very family; it is created again.
    const home = fam.removed ? this.family(raw, type) : fam;
    if (home === undefined) return undefined;
    const created: SeriesState = {
      labels,
      value: 0,
      count: 0,
      // Plain arrays of doubles live on the JS heap: a typed array this size has an off-heap store whose
      // bookkeeping made a 200k-series window's garbage collections several times longer.
      buckets: type === 'histogram' ? zeros(this.opts.buckets.length + 1) : undefined,
      quantiles: type === 'summary' ? zeros(this.opts.quantiles?.length ?? 0) : undefined,
      updatedMs: nowMs,
      touchedIn: 0,
      touchedAt: 0,
      scale,
      originName: raw,
      originTags: tags,
      remoteLabels: undefined,
    };
    home.series.set(labels, created);
    this.lastFamily = home;
    this.seriesCount++;
    return created;
  }

  private drop(reason: DropReason<'sink'>, code: ErrorCode, metric: string, fields?: Record<string, unknown>): void {
    this.context.drop(reason, 1, { code, fields: { metric: metric.slice(0, 200), ...fields } });
  }
}
