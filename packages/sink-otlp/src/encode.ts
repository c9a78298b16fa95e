/**
 * The request bodies: `ExportMetricsServiceRequest` as protobuf (field numbers of
 * opentelemetry-proto `opentelemetry/proto/{collector/metrics,metrics,common,resource}/v1`) with core's
 * protobuf writer, or as OTLP/JSON (camelCase names, 64-bit integers as strings, enums as numbers).
 * The tests decode both with a decoder of their own.
 */
import { ProtoWriter } from '@metrics-distributor/core';
import type { ExponentialBuckets } from './buckets.js';
import type { Attr, MetricGroup, Point, ResourceGroup } from './mapping.js';

/** Instrumentation scope every metric is sent under. */
export const SCOPE_NAME = 'metrics-distributor';
/** The scope's version: the package version. */
export const SCOPE_VERSION = '0.1.0';

/** `AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA`: each window is its own interval. */
const DELTA = 1;

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

function buckets(w: ProtoWriter, field: number, b: ExponentialBuckets): void {
  if (b.counts.length === 0) return;
  const m = w.fork(field);
  w.sint32(1, b.offset);
  w.packedUint(2, b.counts);
  w.join(m);
}

function dataPoint(w: ProtoWriter, kind: MetricGroup['kind'], p: Point): void {
  const dp = w.fork(1);
  switch (kind) {
    case 'sum':
    case 'gauge':
      // NumberDataPoint
      w.fixed64(2, p.startNs);
      w.fixed64(3, p.endNs);
      w.presentDouble(4, p.value); // oneof: written even when 0
      attributes(w, 7, p.attrs);
      break;
    case 'histogram': {
      const h = p.histogram!;
      attributes(w, 9, p.attrs);
      w.fixed64(2, p.startNs);
      w.fixed64(3, p.endNs);
      w.fixed64n(4, h.count);
      w.presentDouble(5, h.sum);
      w.packedFixed64(6, h.counts);
      w.packedDouble(7, h.bounds);
      w.presentDouble(11, h.min);
      w.presentDouble(12, h.max);
      break;
    }
    case 'exponential': {
      const e = p.exponential!;
      attributes(w, 1, p.attrs);
      w.fixed64(2, p.startNs);
      w.fixed64(3, p.endNs);
      w.fixed64n(4, e.count);
      w.presentDouble(5, e.sum);
      w.sint32(6, e.scale);
      w.fixed64n(7, e.zeroCount);
      buckets(w, 8, e.positive);
      buckets(w, 9, e.negative);
      w.presentDouble(12, e.min);
      w.presentDouble(13, e.max);
      w.double(14, e.zeroThreshold);
      break;
    }
  }
  w.join(dp);
}

/** Metric field of each kind: gauge 5, sum 7, histogram 9, exponential_histogram 10. */
const DATA_FIELD = { gauge: 5, sum: 7, histogram: 9, exponential: 10 } as const;

/** Encodes one request as protobuf. */
export function encodeProtobuf(groups: readonly ResourceGroup[], sizeHint: number): Buffer {
  const w = new ProtoWriter(sizeHint);
  for (const g of groups) {
    const rm = w.fork(1);
    const res = w.fork(1);
    attributes(w, 1, g.resource.attrs);
    w.join(res);
    const sm = w.fork(2);
    const scope = w.fork(1);
    w.string(1, SCOPE_NAME);
    w.string(2, SCOPE_VERSION);
    w.join(scope);
    for (const m of g.metrics) {
      const metric = w.fork(2);
      w.string(1, m.name);
      const data = w.fork(DATA_FIELD[m.kind]);
      for (const p of m.points) dataPoint(w, m.kind, p);
      if (m.kind !== 'gauge') w.uint(2, DELTA);
      if (m.kind === 'sum' && m.monotonic) w.uint(3, 1);
      w.join(data);
      w.join(metric);
    }
    w.join(sm);
    w.join(rm);
  }
  return Buffer.from(w.finish());
}

type Json = Record<string, unknown>;

function jsonAttrs(attrs: readonly Attr[]): Json[] {
  return attrs.map((a) => ({ key: a.key, value: { stringValue: a.value } }));
}

function jsonBuckets(b: ExponentialBuckets): Json | undefined {
  return b.counts.length === 0 ? undefined : { offset: b.offset, bucketCounts: b.counts.map(String) };
}

function jsonPoint(kind: MetricGroup['kind'], p: Point): Json {
  const common = { attributes: jsonAttrs(p.attrs), startTimeUnixNano: String(p.startNs), timeUnixNano: String(p.endNs) };
  switch (kind) {
    case 'sum':
    case 'gauge':
      return { ...common, asDouble: p.value };
    case 'histogram': {
      const h = p.histogram!;
      return { ...common, count: String(h.count), sum: h.sum, bucketCounts: h.counts.map(String), explicitBounds: h.bounds, min: h.min, max: h.max };
    }
    case 'exponential': {
      const e = p.exponential!;
      return {
        ...common,
        count: String(e.count),
        sum: e.sum,
        scale: e.scale,
        zeroCount: String(e.zeroCount),
        positive: jsonBuckets(e.positive),
        negative: jsonBuckets(e.negative),
        min: e.min,
        max: e.max,
        zeroThreshold: e.zeroThreshold,
      };
    }
  }
}

function jsonMetric(m: MetricGroup): Json {
  const dataPoints = m.points.map((p) => jsonPoint(m.kind, p));
  switch (m.kind) {
    case 'gauge':
      return { name: m.name, gauge: { dataPoints } };
    case 'sum':
      return { name: m.name, sum: { dataPoints, aggregationTemporality: DELTA, isMonotonic: m.monotonic } };
    case 'histogram':
      return { name: m.name, histogram: { dataPoints, aggregationTemporality: DELTA } };
    case 'exponential':
      return { name: m.name, exponentialHistogram: { dataPoints, aggregationTemporality: DELTA } };
  }
}

/** Encodes one request as OTLP/JSON. */
export function encodeJson(groups: readonly ResourceGroup[]): Buffer {
  const body = {
    resourceMetrics: groups.map((g) => ({
      resource: { attributes: jsonAttrs(g.resource.attrs) },
      scopeMetrics: [{ scope: { name: SCOPE_NAME, version: SCOPE_VERSION }, metrics: g.metrics.map(jsonMetric) }],
    })),
  };
  return Buffer.from(JSON.stringify(body), 'utf8');
}
