/**
 * The tests' independent OTLP decoder: the protobufjs code that OpenTelemetry generates from the
 * official opentelemetry-proto definitions and ships in `@opentelemetry/otlp-transformer` (a
 * devDependency; nothing of the sink's encoder is shared). It yields objects in OTLP/JSON form
 * (camelCase, 64-bit integers as decimal strings, enums as numbers), so the protobuf and JSON
 * encodings can be checked against each other.
 */
import { createRequire } from 'node:module';

/** The one generated message class the tests need (its .d.ts exports the root untyped). */
interface GeneratedType {
  decode(b: Uint8Array): unknown;
  encode(m: unknown): { finish(): Uint8Array };
  toObject(m: unknown, o: { longs: StringConstructor; enums: NumberConstructor; defaults: boolean; arrays: boolean }): OtlpRequest;
}

// The generated root is CommonJS without an exports map: loaded by path, as its own package lays it out.
const root = createRequire(import.meta.url)('@opentelemetry/otlp-transformer/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { metrics: { v1: { ExportMetricsServiceRequest: GeneratedType } } } } };
};
const Request = root.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;

/**
 * Decodes an `ExportMetricsServiceRequest`. protobufjs skips unknown fields silently, so the message
 * is encoded again: a byte count that differs means a field the official schema does not have (or
 * one sent twice), which must not go unseen.
 */
export function decodeRequest(b: Buffer): OtlpRequest {
  const msg = Request.decode(b);
  const again = Request.encode(msg).finish().length;
  if (again !== b.length) throw new Error(`request of ${b.length} bytes re-encodes to ${again}: fields outside opentelemetry-proto`);
  return Request.toObject(msg, { longs: String, enums: Number, defaults: false, arrays: false });
}

/** An attribute in OTLP/JSON form. */
export interface KV {
  key: string;
  value: { stringValue?: string };
}
/** Any data point's fields this sink sends, in OTLP/JSON form. */
export interface DataPoint {
  attributes?: KV[];
  startTimeUnixNano: string;
  timeUnixNano: string;
  asDouble?: number;
  count?: string;
  sum?: number;
  min?: number;
  max?: number;
  bucketCounts?: string[];
  explicitBounds?: number[];
  scale?: number;
  zeroCount?: string;
  zeroThreshold?: number;
  positive?: { offset?: number; bucketCounts?: (string | number)[] };
  negative?: { offset?: number; bucketCounts?: (string | number)[] };
}
/** A Metric in OTLP/JSON form. */
export interface Metric {
  name: string;
  gauge?: { dataPoints: DataPoint[] };
  sum?: { dataPoints: DataPoint[]; aggregationTemporality?: number; isMonotonic?: boolean };
  histogram?: { dataPoints: DataPoint[]; aggregationTemporality?: number };
  exponentialHistogram?: { dataPoints: DataPoint[]; aggregationTemporality?: number };
}
/** An ExportMetricsServiceRequest in OTLP/JSON form. */
export interface OtlpRequest {
  resourceMetrics?: { resource?: { attributes?: KV[] }; scopeMetrics?: { scope?: { name?: string; version?: string }; metrics?: Metric[] }[] }[];
}

/** Attributes as a plain object. */
export function attrs(kvs: KV[] | undefined): Record<string, string | undefined> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, kv.value.stringValue]));
}

/** Every metric of a request with the resource attributes it came under. */
export function metricsOf(req: OtlpRequest): { resource: Record<string, string | undefined>; scope: string | undefined; metric: Metric }[] {
  const out = [];
  for (const rm of req.resourceMetrics ?? []) {
    for (const sm of rm.scopeMetrics ?? []) for (const metric of sm.metrics ?? []) out.push({ resource: attrs(rm.resource?.attributes), scope: sm.scope?.name, metric });
  }
  return out;
}

/** An `ExportMetricsServiceResponse` with a partial success, hand-assembled byte by byte. */
export function partialSuccessBody(rejected: number, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  const varint = (n: number) => {
    const out: number[] = [];
    while (n >= 128) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return out;
  };
  const inner = Buffer.from([0x08, ...varint(rejected), 0x12, ...varint(msg.length), ...msg]);
  return Buffer.from([0x0a, ...varint(inner.length), ...inner]);
}
