/**
 * From a closed window to OTLP data points, independent of the encoding: one flat list of points, each
 * knowing its resource and metric, so a window can be cut into requests anywhere and each request
 * regrouped (`group`) into ResourceMetrics → ScopeMetrics → Metric.
 *
 * | batch item | OTLP |
 * | --- | --- |
 * | `rate` series | Sum, delta, monotonic; value × interval (the window's count) |
 * | `count` series | Sum, delta, monotonic; value as is |
 * | `gauge` series (gauges, sets, histogram aggregates) | Gauge |
 * | sketch (distribution) | ExponentialHistogram (or Histogram on request), see `buckets.ts` |
 *
 * A Sum whose window total is negative (StatsD counters may be decremented) is sent non-monotonic.
 */
import type { MetricBatch, Series, SketchSeries } from '@metrics-distributor/core';
import { toExplicit, toExponential, type ExplicitPoint, type ExponentialPoint } from './buckets.js';
import type { ResolvedOptions } from './options.js';

/** One attribute: every StatsD tag value is a string. */
export interface Attr {
  /** The tag's key (before the first `:`). */
  readonly key: string;
  /** The tag's value; empty for a bare tag. */
  readonly value: string;
}

/** A resource: `host.name` and `service.name`, shared by every point of one host and service. */
export interface Resource {
  /** Grouping key. */
  readonly key: string;
  /** `host.name` and `service.name`, those that are known. */
  readonly attrs: readonly Attr[];
}

/** The kinds of metric data this sink sends. */
export type PointKind = 'sum' | 'gauge' | 'exponential' | 'histogram';

/** One data point with what it belongs to. */
export interface Point {
  /** The resource it is sent under. */
  readonly resource: Resource;
  /** Metric name, as sent. */
  readonly name: string;
  /** Which OTLP data it is. */
  readonly kind: PointKind;
  /** Data-point attributes: the tags, `service:` left out. */
  readonly attrs: readonly Attr[];
  /** Window start, unix nanoseconds. */
  readonly startNs: bigint;
  /** Window end, unix nanoseconds. */
  readonly endNs: bigint;
  /** Sum and Gauge value. */
  readonly value: number;
  /** Set for kind `exponential`. */
  readonly exponential?: ExponentialPoint;
  /** Set for kind `histogram`. */
  readonly histogram?: ExplicitPoint;
}

/** One Metric of a request: its points share name and kind. */
export interface MetricGroup {
  /** Metric name. */
  readonly name: string;
  /** Data kind of every point. */
  readonly kind: PointKind;
  /** Sums only: false when some window total is negative. */
  readonly monotonic: boolean;
  /** Its data points, in batch order. */
  readonly points: readonly Point[];
}

/** One ResourceMetrics of a request. */
export interface ResourceGroup {
  /** The resource. */
  readonly resource: Resource;
  /** Its metrics, in first-seen order. */
  readonly metrics: readonly MetricGroup[];
}

/** Whatever tags map to, computed once per interned tags array. */
interface TagMapping {
  readonly service: string;
  readonly attrs: readonly Attr[];
}

/** Relative distance within which value × interval is taken to be the integer it is near (float noise of the rate). */
const SNAP_RELATIVE = 1e-9;

/** rate × interval, snapped to the integer a whole number of increments gave. */
export function windowCount(rate: number, intervalS: number): number {
  const v = rate * intervalS;
  const r = Math.round(v);
  return Math.abs(v - r) <= SNAP_RELATIVE * Math.max(1, Math.abs(v)) ? r : v;
}

/** Builds the points of windows, with caches that live as long as the sink. */
export class PointMapper {
  /** Tags arrays are interned by core across contexts and windows, so this is hit almost always. */
  private readonly tagCache = new WeakMap<readonly string[], TagMapping>();
  private readonly resources = new Map<string, Resource>();

  constructor(private readonly opts: ResolvedOptions) {}

  /** `tags` as attributes: `k:v` → k = v, a bare tag → key with an empty value; the first of a repeated key wins. */
  private tags(tags: readonly string[]): TagMapping {
    const hit = this.tagCache.get(tags);
    if (hit !== undefined) return hit;
    let service = '';
    const attrs: Attr[] = [];
    const seen = new Set<string>();
    for (const t of tags) {
      const i = t.indexOf(':');
      const key = i < 0 ? t : t.slice(0, i);
      const value = i < 0 ? '' : t.slice(i + 1);
      if (key === 'service' && service === '' && value !== '') {
        service = value;
        continue;
      }
      if (key === '' || seen.has(key)) continue;
      seen.add(key);
      attrs.push({ key, value });
    }
    const m: TagMapping = { service, attrs };
    this.tagCache.set(tags, m);
    return m;
  }

  private resource(host: string, service: string): Resource {
    const key = `${host}\u0000${service}`;
    let r = this.resources.get(key);
    if (r === undefined) {
      const attrs: Attr[] = [];
      if (host !== '') attrs.push({ key: 'host.name', value: host });
      if (service !== '') attrs.push({ key: 'service.name', value: service });
      r = { key, attrs };
      // Bounded by hosts × services seen; cleared when it grows past what any real fleet has.
      if (this.resources.size >= 100_000) this.resources.clear();
      this.resources.set(key, r);
    }
    return r;
  }

  /** Window start and end in unix ns, cached for the last (timestamp, interval): most points share their window's. */
  private lastTs = NaN;
  private lastInterval = NaN;
  private lastStart = 0n;
  private lastEnd = 0n;

  private times(timestampS: number, intervalS: number): [bigint, bigint] {
    if (timestampS !== this.lastTs || intervalS !== this.lastInterval) {
      this.lastTs = timestampS;
      this.lastInterval = intervalS;
      this.lastStart = BigInt(Math.round(timestampS * 1000)) * 1_000_000n;
      this.lastEnd = this.lastStart + BigInt(Math.round(intervalS * 1000)) * 1_000_000n;
    }
    return [this.lastStart, this.lastEnd];
  }

  /**
   * Points of items `[from, to)` of `batch`, counting its series first, then its sketches, so a window
   * is mapped a request at a time; `invalid` gets what cannot be sent (a non-finite value).
   */
  map(batch: MetricBatch, from: number, to: number, invalid: (what: Series | SketchSeries) => void): Point[] {
    const out: Point[] = [];
    const ns = batch.series.length;
    for (let i = from; i < Math.min(to, ns); i++) {
      const s = batch.series[i]!;
      const value = s.type === 'rate' ? windowCount(s.value, s.interval) : s.value;
      if (!Number.isFinite(value)) {
        invalid(s);
        continue;
      }
      const t = this.tags(s.tags);
      const [startNs, endNs] = this.times(s.timestamp, s.interval);
      out.push({ resource: this.resource(s.host, t.service), name: s.metric, kind: s.type === 'gauge' ? 'gauge' : 'sum', attrs: t.attrs, startNs, endNs, value });
    }
    for (let i = Math.max(from, ns); i < to; i++) {
      const s = batch.sketches[i - ns]!;
      const d = s.sketch;
      if (!Number.isFinite(d.sum) || !Number.isFinite(d.min) || !Number.isFinite(d.max) || d.keys.length !== d.counts.length) {
        invalid(s);
        continue;
      }
      const t = this.tags(s.tags);
      const [startNs, endNs] = this.times(s.timestamp, s.interval);
      const base = { resource: this.resource(s.host, t.service), name: s.metric, attrs: t.attrs, startNs, endNs, value: 0 };
      if (this.opts.histogram === 'exponential') out.push({ ...base, kind: 'exponential', exponential: toExponential(d, this.opts.exponentialScale) });
      else out.push({ ...base, kind: 'histogram', histogram: toExplicit(d, this.opts.explicitBounds) });
    }
    return out;
  }
}

/** Regroups the points of one request by resource, then by metric name and kind, in first-seen order. */
export function group(points: readonly Point[]): ResourceGroup[] {
  type Building = { name: string; kind: PointKind; monotonic: boolean; points: Point[] };
  // Keyed by kind, then by the name itself: a `kind + name` key string per point was the function's
  // whole cost (a new string to flatten and hash each time; the names are the contexts' own strings).
  type Metrics = { order: Building[]; byKind: Map<PointKind, Map<string, Building>> };
  const byResource = new Map<Resource, Metrics>();
  for (const p of points) {
    let metrics = byResource.get(p.resource);
    if (metrics === undefined) byResource.set(p.resource, (metrics = { order: [], byKind: new Map() }));
    let names = metrics.byKind.get(p.kind);
    if (names === undefined) metrics.byKind.set(p.kind, (names = new Map<string, Building>()));
    let m = names.get(p.name);
    if (m === undefined) {
      names.set(p.name, (m = { name: p.name, kind: p.kind, monotonic: true, points: [] }));
      metrics.order.push(m);
    }
    if (p.kind === 'sum' && p.value < 0) m.monotonic = false;
    m.points.push(p);
  }
  return [...byResource].map(([resource, metrics]) => ({ resource, metrics: metrics.order }));
}
