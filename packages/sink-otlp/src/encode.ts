/**
 * The request bodies, straight from a request's plan: `ExportMetricsServiceRequest` as protobuf (field
 * numbers of opentelemetry-proto `opentelemetry/proto/{collector/metrics,metrics,common,resource}/v1`)
 * or as OTLP/JSON (camelCase names, 64-bit integers as strings, enums as numbers).
 *
 * The protobuf body is sized first and then written into one buffer of exactly that size: every
 * length is known before its message, so nothing is moved or regrown, and what repeats across points
 * (attributes per tags array, a window's two timestamps, a resource) is copied from bytes encoded once.
 * Both encoders are generators that yield every {@link ITEMS_PER_STEP} points, so the sink can cut a
 * request into slices of the event loop. The tests decode both with a decoder of their own.
 */
import { ProtoWriter, putVarint, varintSize, zigzag32 } from '@metrics-distributor/core';
import type { ExplicitPoint, ExponentialBuckets, ExponentialPoint } from './buckets.js';
import { ITEMS_PER_STEP, KIND, type Attr, type AttrList, type Kind, type RequestPlan, type Resource } from './mapping.js';

/** Instrumentation scope every metric is sent under. */
export const SCOPE_NAME = 'metrics-distributor';
/** The scope's version: the package version. */
export const SCOPE_VERSION = '0.1.0';

/** `AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA`: each window is its own interval. */
const DELTA = 1;

/** Field of the data point's `attributes`, by kind: NumberDataPoint 7, ExponentialHistogramDataPoint 1, HistogramDataPoint 9. */
const ATTR_FIELD: Readonly<Record<Kind, number>> = { [KIND.sum]: 7, [KIND.gauge]: 7, [KIND.exponential]: 1, [KIND.histogram]: 9 };
/** Key of the Metric's data field, by kind: gauge 5, sum 7, histogram 9, exponential_histogram 10 (length-delimited). */
const DATA_KEY: Readonly<Record<Kind, number>> = { [KIND.sum]: 0x3a, [KIND.gauge]: 0x2a, [KIND.exponential]: 0x52, [KIND.histogram]: 0x4a };

/** Keys (field number × 8 + wire type) written by hand; every field here is below 16, so one byte each. */
const KEY = {
  /** Length-delimited fields 1 and 2: ResourceMetrics, its resource and scope_metrics, Metric and its name, a data point. */
  len1: 0x0a,
  len2: 0x12,
  /** Sum/Histogram `aggregation_temporality` (field 2) and Sum `is_monotonic` (field 3), varints. */
  temporality: 0x10,
  monotonic: 0x18,
  /** NumberDataPoint `as_double` (field 4). */
  asDouble: 0x21,
  /** `count` (field 4, fixed64) and `sum` (field 5, double) of both histogram points. */
  count: 0x21,
  sum: 0x29,
  /** HistogramDataPoint: `bucket_counts` 6, `explicit_bounds` 7 (packed), `min` 11, `max` 12. */
  hCounts: 0x32,
  hBounds: 0x3a,
  hMin: 0x59,
  hMax: 0x61,
  /** ExponentialHistogramDataPoint: `scale` 6 (sint32), `zero_count` 7, `positive` 8, `negative` 9, `min` 12, `max` 13, `zero_threshold` 14. */
  eScale: 0x30,
  eZeroCount: 0x39,
  ePositive: 0x42,
  eNegative: 0x4a,
  eMin: 0x61,
  eMax: 0x69,
  eZeroThreshold: 0x71,
  /** Buckets: `offset` 1 (sint32), `bucket_counts` 2 (packed). */
  bOffset: 0x08,
  bCounts: 0x12,
} as const;

function attributes(w: ProtoWriter, field: number, attrs: readonly Attr[]): void {
  for (const a of attrs) {
    const kv = w.fork(field);
    w.string(1, a.key);
    const any = w.fork(2);
    // An empty string_value is still a value (a bare tag): written, so the AnyValue is not unset.
    w.presentString(1, a.value);
    w.join(any);
    w.join(kv);
  }
}

/** The list's attributes as repeated KeyValue fields `field`, encoded on first use. */
function attrBytes(list: AttrList, field: number): Buffer {
  let b = list.proto.get(field);
  if (b === undefined) {
    const w = new ProtoWriter(64);
    attributes(w, field, list.attrs);
    list.proto.set(field, (b = Buffer.from(w.finish())));
  }
  return b;
}

/** The ResourceMetrics.resource field (written even when it has no attributes). */
function resourceField(r: Resource): Buffer {
  if (r.field === undefined) {
    const w = new ProtoWriter(64);
    const res = w.fork(1);
    attributes(w, 1, r.attrs);
    w.join(res);
    r.field = Buffer.from(w.finish());
  }
  return r.field;
}

/** ScopeMetrics.scope: the same in every request. */
const SCOPE_FIELD = (() => {
  const w = new ProtoWriter(64);
  const scope = w.fork(1);
  w.string(1, SCOPE_NAME);
  w.string(2, SCOPE_VERSION);
  w.join(scope);
  return Buffer.from(w.finish());
})();

/** A length-delimited field of `content` bytes: its key, its length, itself. */
const field = (content: number): number => 1 + varintSize(content) + content;
/** A double or fixed64 field. */
const FIXED = 9;
/** An explicit double field, left out for +0 as proto3 does (-0 has a sign bit to keep). */
const optionalDouble = (v: number): number => (v === 0 && !Object.is(v, -0) ? 0 : FIXED);

function bucketsSize(b: ExponentialBuckets): number {
  if (b.counts.length === 0) return 0;
  let packed = 0;
  for (const c of b.counts) packed += varintSize(c);
  return field((b.offset === 0 ? 0 : 1 + varintSize(zigzag32(b.offset))) + field(packed));
}

/** Bytes of item `p`'s data point message (without its own key and length). */
function pointSize(plan: RequestPlan, p: number): number {
  const kind = plan.kinds[p]! as Kind;
  const common = attrBytes(plan.attrs[p]!, ATTR_FIELD[kind]).length + plan.times[p]!.proto.length;
  if (kind === KIND.sum || kind === KIND.gauge) return common + FIXED;
  if (kind === KIND.histogram) {
    const h = plan.histograms[p] as ExplicitPoint;
    return common + (h.count === 0 ? 0 : FIXED) + FIXED + (h.counts.length === 0 ? 0 : field(8 * h.counts.length)) + (h.bounds.length === 0 ? 0 : field(8 * h.bounds.length)) + 2 * FIXED;
  }
  const e = plan.histograms[p] as ExponentialPoint;
  return (
    common +
    (e.count === 0 ? 0 : FIXED) +
    FIXED +
    (e.scale === 0 ? 0 : 1 + varintSize(zigzag32(e.scale))) +
    (e.zeroCount === 0 ? 0 : FIXED) +
    bucketsSize(e.positive) +
    bucketsSize(e.negative) +
    2 * FIXED +
    optionalDouble(e.zeroThreshold)
  );
}

/** A write position in a buffer sized beforehand: no bounds checks beyond Buffer's own. */
class Cursor {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  varint(v: number): void {
    this.pos = putVarint(this.buf, this.pos, v);
  }

  copy(b: Buffer): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  double(key: number, v: number): void {
    this.buf[this.pos] = key;
    this.buf.writeDoubleLE(v, this.pos + 1);
    this.pos += FIXED;
  }

  /** fixed64 of a non-negative integer below 2^53; 0 left out (proto3 default). */
  count(key: number, v: number): void {
    if (v === 0) return;
    this.buf[this.pos] = key;
    this.buf.writeUInt32LE(v % 0x1_0000_0000, this.pos + 1);
    this.buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), this.pos + 5);
    this.pos += FIXED;
  }

  packedFixed(key: number, list: readonly number[], asDouble: boolean): void {
    if (list.length === 0) return;
    this.byte(key);
    this.varint(8 * list.length);
    for (const v of list) {
      if (asDouble) this.buf.writeDoubleLE(v, this.pos);
      else {
        this.buf.writeUInt32LE(v % 0x1_0000_0000, this.pos);
        this.buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), this.pos + 4);
      }
      this.pos += 8;
    }
  }

  buckets(key: number, b: ExponentialBuckets): void {
    if (b.counts.length === 0) return;
    let packed = 0;
    for (const c of b.counts) packed += varintSize(c);
    this.byte(key);
    this.varint((b.offset === 0 ? 0 : 1 + varintSize(zigzag32(b.offset))) + field(packed));
    if (b.offset !== 0) {
      this.byte(KEY.bOffset);
      this.varint(zigzag32(b.offset));
    }
    this.byte(KEY.bCounts);
    this.varint(packed);
    for (const c of b.counts) this.varint(c);
  }
}

function writePoint(c: Cursor, plan: RequestPlan, p: number, size: number): void {
  const kind = plan.kinds[p]! as Kind;
  const attrs = attrBytes(plan.attrs[p]!, ATTR_FIELD[kind]);
  const times = plan.times[p]!.proto;
  c.byte(KEY.len1);
  c.varint(size);
  if (kind === KIND.sum || kind === KIND.gauge) {
    c.copy(times);
    c.double(KEY.asDouble, plan.values[p]!); // oneof: written even when 0
    c.copy(attrs);
  } else if (kind === KIND.histogram) {
    const h = plan.histograms[p] as ExplicitPoint;
    c.copy(attrs);
    c.copy(times);
    c.count(KEY.count, h.count);
    c.double(KEY.sum, h.sum);
    c.packedFixed(KEY.hCounts, h.counts, false);
    c.packedFixed(KEY.hBounds, h.bounds, true);
    c.double(KEY.hMin, h.min);
    c.double(KEY.hMax, h.max);
  } else {
    const e = plan.histograms[p] as ExponentialPoint;
    c.copy(attrs);
    c.copy(times);
    c.count(KEY.count, e.count);
    c.double(KEY.sum, e.sum);
    if (e.scale !== 0) {
      c.byte(KEY.eScale);
      c.varint(zigzag32(e.scale));
    }
    c.count(KEY.eZeroCount, e.zeroCount);
    c.buckets(KEY.ePositive, e.positive);
    c.buckets(KEY.eNegative, e.negative);
    c.double(KEY.eMin, e.min);
    c.double(KEY.eMax, e.max);
    if (optionalDouble(e.zeroThreshold) > 0) c.double(KEY.eZeroThreshold, e.zeroThreshold);
  }
}

/** Encodes one request as protobuf; yields every {@link ITEMS_PER_STEP} points, returns the body. */
export function* encodeProtobuf(plan: RequestPlan): Generator<void, Buffer> {
  const n = plan.items.length;
  const sizes = new Int32Array(n);
  const groups = plan.names.length;
  const dataSize = new Int32Array(groups);
  const metricSize = new Int32Array(groups);
  const nameBytes = new Int32Array(groups);
  const scopeSize = new Int32Array(plan.resources.length);
  let total = 0;
  let done = 0;
  for (let r = 0; r < plan.resources.length; r++) {
    let sm = SCOPE_FIELD.length;
    for (let g = plan.firstGroup[r]!; g >= 0; g = plan.nextGroup[g]!) {
      const kind = plan.groupKinds[g]! as Kind;
      let data = (kind === KIND.gauge ? 0 : 2) + (kind === KIND.sum && plan.monotonic[g] === 1 ? 2 : 0);
      for (let p = plan.firstItem[g]!; p >= 0; p = plan.nextItem[p]!) {
        if (++done % ITEMS_PER_STEP === 0) yield;
        data += field((sizes[p] = pointSize(plan, p)));
      }
      const name = (nameBytes[g] = Buffer.byteLength(plan.names[g]!, 'utf8'));
      dataSize[g] = data;
      metricSize[g] = (name === 0 ? 0 : field(name)) + field(data);
      sm += field(metricSize[g]!);
    }
    scopeSize[r] = sm;
    total += field(resourceField(plan.resources[r]!).length + field(sm));
  }
  const c = new Cursor(Buffer.allocUnsafe(total));
  for (let r = 0; r < plan.resources.length; r++) {
    const res = resourceField(plan.resources[r]!);
    c.byte(KEY.len1);
    c.varint(res.length + field(scopeSize[r]!));
    c.copy(res);
    c.byte(KEY.len2);
    c.varint(scopeSize[r]!);
    c.copy(SCOPE_FIELD);
    for (let g = plan.firstGroup[r]!; g >= 0; g = plan.nextGroup[g]!) {
      const kind = plan.groupKinds[g]! as Kind;
      c.byte(KEY.len2);
      c.varint(metricSize[g]!);
      if (nameBytes[g]! > 0) {
        c.byte(KEY.len1);
        c.varint(nameBytes[g]!);
        c.pos += c.buf.write(plan.names[g]!, c.pos, nameBytes[g]!, 'utf8');
      }
      c.byte(DATA_KEY[kind]);
      c.varint(dataSize[g]!);
      for (let p = plan.firstItem[g]!; p >= 0; p = plan.nextItem[p]!) {
        if (--done % ITEMS_PER_STEP === 0) yield;
        writePoint(c, plan, p, sizes[p]!);
      }
      if (kind !== KIND.gauge) {
        c.byte(KEY.temporality);
        c.byte(DELTA);
      }
      if (kind === KIND.sum && plan.monotonic[g] === 1) {
        c.byte(KEY.monotonic);
        c.byte(1);
      }
    }
  }
  if (c.pos !== total) throw new Error(`OTLP encoder: sized ${total} bytes, wrote ${c.pos}`);
  return c.buf;
}

/** JSON of a number as `JSON.stringify` writes it. */
const num = (v: number): string => (Number.isFinite(v) ? String(v) : 'null');

/** The list's OTLP/JSON `attributes` array, encoded on first use. */
function jsonAttrs(list: AttrList): string {
  list.json ??= `[${list.attrs.map((a) => `{"key":${JSON.stringify(a.key)},"value":{"stringValue":${JSON.stringify(a.value)}}}`).join(',')}]`;
  return list.json;
}

function jsonBuckets(name: string, b: ExponentialBuckets): string {
  return b.counts.length === 0 ? '' : `,"${name}":{"offset":${b.offset},"bucketCounts":[${b.counts.map((c) => `"${c}"`).join(',')}]}`;
}

function jsonPoint(plan: RequestPlan, p: number): string {
  const kind = plan.kinds[p]! as Kind;
  const common = `{"attributes":${jsonAttrs(plan.attrs[p]!)},${plan.times[p]!.json}`;
  if (kind === KIND.sum || kind === KIND.gauge) return `${common},"asDouble":${num(plan.values[p]!)}}`;
  if (kind === KIND.histogram) {
    const h = plan.histograms[p] as ExplicitPoint;
    return `${common},"count":"${h.count}","sum":${num(h.sum)},"bucketCounts":[${h.counts.map((c) => `"${c}"`).join(',')}],"explicitBounds":[${h.bounds.map(num).join(',')}],"min":${num(h.min)},"max":${num(h.max)}}`;
  }
  const e = plan.histograms[p] as ExponentialPoint;
  return (
    `${common},"count":"${e.count}","sum":${num(e.sum)},"scale":${e.scale},"zeroCount":"${e.zeroCount}"` +
    `${jsonBuckets('positive', e.positive)}${jsonBuckets('negative', e.negative)},"min":${num(e.min)},"max":${num(e.max)},"zeroThreshold":${num(e.zeroThreshold)}}`
  );
}

/** The data field's name and what follows its points, by kind. */
const JSON_DATA: Readonly<Record<Kind, readonly [string, (monotonic: boolean) => string]>> = {
  [KIND.gauge]: ['gauge', () => ''],
  [KIND.sum]: ['sum', (m) => `,"aggregationTemporality":${DELTA},"isMonotonic":${m}`],
  [KIND.histogram]: ['histogram', () => `,"aggregationTemporality":${DELTA}`],
  [KIND.exponential]: ['exponentialHistogram', () => `,"aggregationTemporality":${DELTA}`],
};

/** Encodes one request as OTLP/JSON; yields every {@link ITEMS_PER_STEP} points, returns the body. */
export function* encodeJson(plan: RequestPlan): Generator<void, Buffer> {
  const scope = `{"scope":{"name":${JSON.stringify(SCOPE_NAME)},"version":${JSON.stringify(SCOPE_VERSION)}},"metrics":[`;
  let s = '{"resourceMetrics":[';
  let done = 0;
  for (let r = 0; r < plan.resources.length; r++) {
    s += `${r === 0 ? '' : ','}{"resource":{"attributes":${jsonAttrs(plan.resources[r]!)}},"scopeMetrics":[${scope}`;
    let firstMetric = true;
    for (let g = plan.firstGroup[r]!; g >= 0; g = plan.nextGroup[g]!) {
      const [data, after] = JSON_DATA[plan.groupKinds[g]! as Kind];
      s += `${firstMetric ? '' : ','}{"name":${JSON.stringify(plan.names[g]!)},"${data}":{"dataPoints":[`;
      firstMetric = false;
      let firstPoint = true;
      for (let p = plan.firstItem[g]!; p >= 0; p = plan.nextItem[p]!) {
        if (++done % ITEMS_PER_STEP === 0) yield;
        s += (firstPoint ? '' : ',') + jsonPoint(plan, p);
        firstPoint = false;
      }
      s += `]${after(plan.monotonic[g] === 1)}}}`;
    }
    s += ']}]}';
  }
  s += ']}';
  return Buffer.from(s, 'utf8');
}
