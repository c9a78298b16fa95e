/**
 * From a closed window to the plan of OTLP requests, independent of the encoding. A request is a range
 * of the window's items (series first, then sketches), each one data point; its plan regroups them
 * into ResourceMetrics → ScopeMetrics → Metric (first-seen order) with index arrays, not an object per
 * point, so a 200,000-context window leaves little for the garbage collector and nothing that lives
 * past the encoding but the body and the items' own references (kept to split on 413).
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
import type { Series, SketchSeries } from '@metrics-distributor/core';
import { toExplicit, toExponential, type ExplicitPoint, type ExponentialPoint } from './buckets.js';
import type { OtlpHistogramMode, ResolvedOptions } from './options.js';

/** One attribute: every StatsD tag value is a string. */
export interface Attr {
  /** The tag's key (before the first `:`). */
  readonly key: string;
  /** The tag's value; empty for a bare tag. */
  readonly value: string;
}

/**
 * A list of attributes, with its encodings filled in by the encoders on first use: tags arrays are
 * interned by core across contexts and windows, so each is encoded once, not once per point.
 */
export interface AttrList {
  /** The attributes, in order. */
  readonly attrs: readonly Attr[];
  /** Protobuf encodings, as repeated KeyValue fields, by field number (1, 7 or 9: it depends on the data point's type). */
  readonly proto: Map<number, Buffer>;
  /** The OTLP/JSON `attributes` array. */
  json: string | undefined;
}

/** A resource: `host.name` and `service.name`, shared by every point of one host and service. */
export interface Resource extends AttrList {
  /** Its ResourceMetrics.resource field, encoded once (protobuf). */
  field: Buffer | undefined;
}

/** The kinds of metric data this sink sends, as numbers so that a plan holds them in a typed array. */
export const KIND = { sum: 0, gauge: 1, exponential: 2, histogram: 3 } as const;
/** One of {@link KIND}. */
export type Kind = (typeof KIND)[keyof typeof KIND];
/** Kind names, for logs. */
export const KIND_NAMES = ['sum', 'gauge', 'exponential', 'histogram'] as const;

/** A window's start and end in unix nanoseconds, and their encodings, shared by the points of a window. */
export interface Times {
  /** Window start. */
  readonly startNs: bigint;
  /** Window end (start + interval). */
  readonly endNs: bigint;
  /** The two fixed64 fields (2 and 3 in every data point type), encoded once. */
  readonly proto: Buffer;
  /** `"startTimeUnixNano":"…","timeUnixNano":"…"`. */
  readonly json: string;
}

/** An item of a window: it becomes one data point. */
export type Item = Series | SketchSeries;

/**
 * One request's points, grouped. Items are numbered 0…n−1 in the order of {@link items}; groups
 * (one Metric each) 0…g−1, in first-seen order within their resource.
 */
export interface RequestPlan {
  /** The items sent, in window order; invalid ones are left out. */
  readonly items: readonly Item[];
  /** Per item: its kind. */
  readonly kinds: Uint8Array;
  /** Per item: the Sum or Gauge value. */
  readonly values: Float64Array;
  /** Per item: its attributes (the tags, `service:` left out). */
  readonly attrs: readonly AttrList[];
  /** Per item: its window's times. */
  readonly times: readonly Times[];
  /** Per item: the histogram of a sketch (undefined for sums and gauges). */
  readonly histograms: readonly (ExponentialPoint | ExplicitPoint | undefined)[];
  /** Per item: the next item of its group, −1 after the last. */
  readonly nextItem: Int32Array;
  /** Resources in first-seen order. */
  readonly resources: readonly Resource[];
  /** Per resource: its first group. */
  readonly firstGroup: readonly number[];
  /** Per group: its metric name. */
  readonly names: readonly string[];
  /** Per group: its kind. */
  readonly groupKinds: Uint8Array;
  /** Per group: 0 when some Sum point is negative, else 1. */
  readonly monotonic: Uint8Array;
  /** Per group: its first item. */
  readonly firstItem: Int32Array;
  /** Per group: the next group of the same resource, −1 after the last. */
  readonly nextGroup: Int32Array;
}

/** Whatever tags map to, computed once per interned tags array. */
interface TagMapping extends AttrList {
  readonly service: string;
}

/** Relative distance within which value × interval is taken to be the integer it is near (float noise of the rate). */
const SNAP_RELATIVE = 1e-9;
/** Items planned between two checks of the slice clock. */
export const ITEMS_PER_STEP = 32;
/** Cached resources at most: more host × service pairs than any real fleet has. */
const MAX_RESOURCES = 100_000;

/** rate × interval, snapped to the integer a whole number of increments gave. */
export function windowCount(rate: number, intervalS: number): number {
  const v = rate * intervalS;
  const r = Math.round(v);
  return Math.abs(v - r) <= SNAP_RELATIVE * Math.max(1, Math.abs(v)) ? r : v;
}

function fixed64Field(out: Buffer, at: number, tag: number, v: bigint): number {
  out[at] = tag;
  out.writeBigUInt64LE(BigInt.asUintN(64, v), at + 1);
  return at + 9;
}

/** The kind of data point an item becomes. */
export function kindOf(s: Item, histogram: OtlpHistogramMode): Kind {
  if ('sketch' in s) return histogram === 'exponential' ? KIND.exponential : KIND.histogram;
  return s.type === 'gauge' ? KIND.gauge : KIND.sum;
}

/** A sketch's consistency: what the encoders rely on. */
function validSketch(s: SketchSeries): boolean {
  const d = s.sketch;
  return Number.isFinite(d.sum) && Number.isFinite(d.min) && Number.isFinite(d.max) && d.keys.length === d.counts.length;
}

/** Plans the requests of windows, with caches that live as long as the sink. */
export class PointMapper {
  /** Tags arrays are interned by core across contexts and windows, so this is hit almost always. */
  private readonly tagCache = new WeakMap<readonly string[], TagMapping>();
  /** Resources by host, then service: no key string to build per point. */
  private readonly resources = new Map<string, Map<string, Resource>>();
  private resourceCount = 0;
  private lastTs = NaN;
  private lastInterval = NaN;
  private lastTimes: Times | undefined;

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
    const m: TagMapping = { service, attrs, proto: new Map(), json: undefined };
    this.tagCache.set(tags, m);
    return m;
  }

  private resource(host: string, service: string): Resource {
    let byService = this.resources.get(host);
    if (byService === undefined) this.resources.set(host, (byService = new Map<string, Resource>()));
    let r = byService.get(service);
    if (r === undefined) {
      const attrs: Attr[] = [];
      if (host !== '') attrs.push({ key: 'host.name', value: host });
      if (service !== '') attrs.push({ key: 'service.name', value: service });
      r = { attrs, proto: new Map(), json: undefined, field: undefined };
      if (this.resourceCount >= MAX_RESOURCES) {
        this.resources.clear();
        this.resources.set(host, (byService = new Map<string, Resource>()));
        this.resourceCount = 0;
      }
      byService.set(service, r);
      this.resourceCount++;
    }
    return r;
  }

  /** The window's times, cached for the last (timestamp, interval): most points share their window's. */
  private times(timestampS: number, intervalS: number): Times {
    if (this.lastTimes === undefined || timestampS !== this.lastTs || intervalS !== this.lastInterval) {
      this.lastTs = timestampS;
      this.lastInterval = intervalS;
      const startNs = BigInt(Math.round(timestampS * 1000)) * 1_000_000n;
      const endNs = startNs + BigInt(Math.round(intervalS * 1000)) * 1_000_000n;
      // fixed64 0 is the proto3 default: left out, as the field writer of every other message does.
      const proto = Buffer.alloc((startNs === 0n ? 0 : 9) + (endNs === 0n ? 0 : 9));
      let at = 0;
      if (startNs !== 0n) at = fixed64Field(proto, at, 0x11, startNs);
      if (endNs !== 0n) fixed64Field(proto, at, 0x19, endNs);
      this.lastTimes = { startNs, endNs, proto, json: `"startTimeUnixNano":"${startNs}","timeUnixNano":"${endNs}"` };
    }
    return this.lastTimes;
  }

  /**
   * Plans one request from items `[from, to)` of `item` (the window's series, then its sketches, or a
   * request's own items when it is split); `invalid` gets what cannot be sent (a non-finite value, an
   * inconsistent sketch). Yields every {@link ITEMS_PER_STEP} items so the caller can keep to its slice.
   */
  *plan(item: (i: number) => Item, from: number, to: number, invalid: (what: Item) => void): Generator<void, RequestPlan> {
    // Sized for every item up front (a request has at most as many groups as items), so nothing is
    // regrown and copied while the request is planned.
    const n = to - from;
    const items: Item[] = [];
    const kinds = new Uint8Array(n);
    const values = new Float64Array(n);
    const nextItem = new Int32Array(n);
    const attrs: AttrList[] = [];
    const times: Times[] = [];
    const histograms: (ExponentialPoint | ExplicitPoint | undefined)[] = [];
    const resources: Resource[] = [];
    const firstGroup: number[] = [];
    const lastGroupOf: number[] = [];
    const names: string[] = [];
    const groupKinds = new Uint8Array(n);
    const monotonic = new Uint8Array(n);
    const firstItem = new Int32Array(n);
    const lastItem = new Int32Array(n);
    const nextGroup = new Int32Array(n);
    const groupResource = new Int32Array(n);
    // Group lookup by name; a group holding another resource or kind under the same name links to the next.
    const byName = new Map<string, number>();
    const sameName = new Int32Array(n);
    const resourceIndex = new Map<Resource, number>();
    for (let i = from; i < to; i++) {
      if ((i - from) % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield;
      const s = item(i);
      const kind = kindOf(s, this.opts.histogram);
      let value = 0;
      let histogram: ExponentialPoint | ExplicitPoint | undefined;
      if ('sketch' in s) {
        if (!validSketch(s)) {
          invalid(s);
          continue;
        }
        histogram = kind === KIND.exponential ? toExponential(s.sketch, this.opts.exponentialScale) : toExplicit(s.sketch, this.opts.explicitBounds);
      } else {
        value = s.type === 'rate' ? windowCount(s.value, s.interval) : s.value;
        if (!Number.isFinite(value)) {
          invalid(s);
          continue;
        }
      }
      const t = this.tags(s.tags);
      const res = this.resource(s.host, t.service);
      let r = resourceIndex.get(res);
      if (r === undefined) {
        resourceIndex.set(res, (r = resources.push(res) - 1));
        firstGroup.push(-1);
        lastGroupOf.push(-1);
      }
      let g = byName.get(s.metric) ?? -1;
      while (g >= 0 && (groupResource[g] !== r || groupKinds[g] !== kind)) g = sameName[g]!;
      const p = items.push(s) - 1;
      if (g < 0) {
        g = names.push(s.metric) - 1;
        groupKinds[g] = kind;
        monotonic[g] = 1;
        firstItem[g] = p;
        nextGroup[g] = -1;
        groupResource[g] = r;
        sameName[g] = byName.get(s.metric) ?? -1;
        byName.set(s.metric, g);
        const last = lastGroupOf[r]!;
        if (last < 0) firstGroup[r] = g;
        else nextGroup[last] = g;
        lastGroupOf[r] = g;
      } else {
        nextItem[lastItem[g]!] = p;
      }
      lastItem[g] = p;
      nextItem[p] = -1;
      kinds[p] = kind;
      values[p] = value;
      if (kind === KIND.sum && value < 0) monotonic[g] = 0;
      attrs.push(t);
      times.push(this.times(s.timestamp, s.interval));
      histograms.push(histogram);
    }
    return { items, kinds, values, attrs, times, histograms, nextItem, resources, firstGroup, names, groupKinds, monotonic, firstItem, nextGroup };
  }
}
