/**
 * An independent OTLP protobuf decoder for the tests: a schema table written from
 * opentelemetry-proto's .proto files (not from the sink's encoder) and a plain wire reader. It yields
 * objects in OTLP/JSON form (camelCase, 64-bit integers as decimal strings, enums as numbers), so the
 * protobuf and JSON encodings can be checked against each other.
 */

type Scalar = 'string' | 'bool' | 'uint' | 'uint64' | 'int64' | 'sint32' | 'fixed64' | 'sfixed64' | 'double' | 'enum';
/** A field: name, type (a scalar or the name of a message), repeated, packed. */
type Field = { name: string; type: string; repeated?: boolean };

/** opentelemetry-proto v1: collector/metrics, metrics, common, resource. */
const SCHEMA: Record<string, Record<number, Field>> = {
  ExportMetricsServiceRequest: { 1: { name: 'resourceMetrics', type: 'ResourceMetrics', repeated: true } },
  ExportMetricsServiceResponse: { 1: { name: 'partialSuccess', type: 'ExportMetricsPartialSuccess' } },
  ExportMetricsPartialSuccess: { 1: { name: 'rejectedDataPoints', type: 'int64' }, 2: { name: 'errorMessage', type: 'string' } },
  ResourceMetrics: { 1: { name: 'resource', type: 'Resource' }, 2: { name: 'scopeMetrics', type: 'ScopeMetrics', repeated: true }, 3: { name: 'schemaUrl', type: 'string' } },
  Resource: { 1: { name: 'attributes', type: 'KeyValue', repeated: true }, 2: { name: 'droppedAttributesCount', type: 'uint' } },
  ScopeMetrics: { 1: { name: 'scope', type: 'InstrumentationScope' }, 2: { name: 'metrics', type: 'Metric', repeated: true }, 3: { name: 'schemaUrl', type: 'string' } },
  InstrumentationScope: {
    1: { name: 'name', type: 'string' },
    2: { name: 'version', type: 'string' },
    3: { name: 'attributes', type: 'KeyValue', repeated: true },
    4: { name: 'droppedAttributesCount', type: 'uint' },
  },
  Metric: {
    1: { name: 'name', type: 'string' },
    2: { name: 'description', type: 'string' },
    3: { name: 'unit', type: 'string' },
    5: { name: 'gauge', type: 'Gauge' },
    7: { name: 'sum', type: 'Sum' },
    9: { name: 'histogram', type: 'Histogram' },
    10: { name: 'exponentialHistogram', type: 'ExponentialHistogram' },
    11: { name: 'summary', type: 'Summary' },
  },
  Gauge: { 1: { name: 'dataPoints', type: 'NumberDataPoint', repeated: true } },
  Sum: { 1: { name: 'dataPoints', type: 'NumberDataPoint', repeated: true }, 2: { name: 'aggregationTemporality', type: 'enum' }, 3: { name: 'isMonotonic', type: 'bool' } },
  Histogram: { 1: { name: 'dataPoints', type: 'HistogramDataPoint', repeated: true }, 2: { name: 'aggregationTemporality', type: 'enum' } },
  ExponentialHistogram: { 1: { name: 'dataPoints', type: 'ExponentialHistogramDataPoint', repeated: true }, 2: { name: 'aggregationTemporality', type: 'enum' } },
  Summary: { 1: { name: 'dataPoints', type: 'SummaryDataPoint', repeated: true } },
  SummaryDataPoint: {},
  NumberDataPoint: {
    7: { name: 'attributes', type: 'KeyValue', repeated: true },
    2: { name: 'startTimeUnixNano', type: 'fixed64' },
    3: { name: 'timeUnixNano', type: 'fixed64' },
    4: { name: 'asDouble', type: 'double' },
    6: { name: 'asInt', type: 'sfixed64' },
    8: { name: 'flags', type: 'uint' },
  },
  HistogramDataPoint: {
    9: { name: 'attributes', type: 'KeyValue', repeated: true },
    2: { name: 'startTimeUnixNano', type: 'fixed64' },
    3: { name: 'timeUnixNano', type: 'fixed64' },
    4: { name: 'count', type: 'fixed64' },
    5: { name: 'sum', type: 'double' },
    6: { name: 'bucketCounts', type: 'fixed64', repeated: true },
    7: { name: 'explicitBounds', type: 'double', repeated: true },
    10: { name: 'flags', type: 'uint' },
    11: { name: 'min', type: 'double' },
    12: { name: 'max', type: 'double' },
  },
  ExponentialHistogramDataPoint: {
    1: { name: 'attributes', type: 'KeyValue', repeated: true },
    2: { name: 'startTimeUnixNano', type: 'fixed64' },
    3: { name: 'timeUnixNano', type: 'fixed64' },
    4: { name: 'count', type: 'fixed64' },
    5: { name: 'sum', type: 'double' },
    6: { name: 'scale', type: 'sint32' },
    7: { name: 'zeroCount', type: 'fixed64' },
    8: { name: 'positive', type: 'Buckets' },
    9: { name: 'negative', type: 'Buckets' },
    10: { name: 'flags', type: 'uint' },
    12: { name: 'min', type: 'double' },
    13: { name: 'max', type: 'double' },
    14: { name: 'zeroThreshold', type: 'double' },
  },
  Buckets: { 1: { name: 'offset', type: 'sint32' }, 2: { name: 'bucketCounts', type: 'uint64', repeated: true } },
  KeyValue: { 1: { name: 'key', type: 'string' }, 2: { name: 'value', type: 'AnyValue' } },
  AnyValue: { 1: { name: 'stringValue', type: 'string' }, 2: { name: 'boolValue', type: 'bool' }, 3: { name: 'intValue', type: 'int64' }, 4: { name: 'doubleValue', type: 'double' } },
};

/** A cursor over a buffer: varints as bigints so nothing is lost above 2^53. */
class Reader {
  pos = 0;
  constructor(readonly b: Buffer) {}
  varint(): bigint {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.b.length) throw new Error('varint past the end');
      const byte = this.b[this.pos++]!;
      v |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return v;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  }
  take(n: number): Buffer {
    if (this.pos + n > this.b.length) throw new Error('field past the end');
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function scalarFromVarint(type: Scalar, v: bigint): unknown {
  switch (type) {
    case 'bool':
      return v !== 0n;
    case 'uint':
    case 'enum':
      return Number(v);
    case 'uint64':
      return String(v);
    case 'int64':
      return String(BigInt.asIntN(64, v));
    case 'sint32': {
      const n = Number(v);
      return (n >>> 1) ^ -(n & 1);
    }
    case 'double':
    case 'fixed64':
    case 'sfixed64':
    case 'string':
      throw new Error(`varint for a ${type} field`);
  }
}

function scalarFromFixed64(type: Scalar, b: Buffer): unknown {
  if (type === 'double') return b.readDoubleLE(0);
  if (type === 'fixed64') return String(b.readBigUInt64LE(0));
  if (type === 'sfixed64') return String(b.readBigInt64LE(0));
  throw new Error(`fixed64 for a ${type} field`);
}

/** Decodes `b` as message `type`; unknown fields are an error, so a wrong field number cannot go unseen. */
export function decode(type: string, b: Buffer): Record<string, unknown> {
  const schema = SCHEMA[type];
  if (schema === undefined) throw new Error(`no schema for ${type}`);
  const out: Record<string, unknown> = {};
  const r = new Reader(b);
  const put = (f: Field, v: unknown) => {
    if (f.repeated === true) ((out[f.name] ??= []) as unknown[]).push(v);
    else out[f.name] = v;
  };
  while (r.pos < b.length) {
    const key = Number(r.varint());
    const field = key >>> 3;
    const wire = key & 7;
    const f = schema[field];
    if (f === undefined) throw new Error(`${type}: unknown field ${field}`);
    const isMessage = SCHEMA[f.type] !== undefined;
    if (wire === 0) put(f, scalarFromVarint(f.type as Scalar, r.varint()));
    else if (wire === 1) put(f, scalarFromFixed64(f.type as Scalar, r.take(8)));
    else if (wire === 2) {
      const body = r.take(Number(r.varint()));
      if (isMessage) put(f, decode(f.type, body));
      else if (f.type === 'string') put(f, body.toString('utf8'));
      else if (f.repeated === true) {
        // packed
        const inner = new Reader(body);
        if (f.type === 'double' || f.type === 'fixed64') {
          if (body.length % 8 !== 0) throw new Error(`${type}.${f.name}: packed length ${body.length}`);
          while (inner.pos < body.length) put(f, scalarFromFixed64(f.type, inner.take(8)));
        } else while (inner.pos < body.length) put(f, scalarFromVarint(f.type as Scalar, inner.varint()));
      } else throw new Error(`${type}.${f.name}: length-delimited for a scalar`);
    } else throw new Error(`${type}: wire type ${wire}`);
  }
  return out;
}

/** Decodes an `ExportMetricsServiceRequest`. */
export function decodeRequest(b: Buffer): OtlpRequest {
  return decode('ExportMetricsServiceRequest', b);
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
