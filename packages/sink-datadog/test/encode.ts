/**
 * The test oracle: plain, uncached encoders of series and sketch items, one Buffer per item, and
 * bodies joined from them. The sink's own encoders (`src/writer.ts` SeriesEncoder, `src/proto.ts`
 * SketchEncoder) cache and write in place; the tests check they are byte for byte what these write.
 */
import { ProtoWriter, type Series, type SketchSeries } from '@metrics-distributor/core';
import { KIND_SPECS, type PayloadKind } from '../src/kinds.js';
import { sketchIsValid } from '../src/proto.js';

/** Uncompressed size of the body holding `parts`, without building it. */
export function bodySize(kind: PayloadKind, parts: readonly Buffer[]): number {
  const spec = KIND_SPECS[kind];
  let n = spec.prefix.length + spec.suffix.length + Math.max(0, parts.length - 1) * spec.separator.length;
  for (const p of parts) n += p.length;
  return n;
}

/** The uncompressed body holding `parts`. */
export function assemble(kind: PayloadKind, parts: readonly Buffer[]): Buffer {
  const spec = KIND_SPECS[kind];
  const list: Buffer[] = [spec.prefix];
  for (let i = 0; i < parts.length; i++) {
    if (i > 0 && spec.separator.length > 0) list.push(spec.separator);
    list.push(parts[i]!);
  }
  list.push(spec.suffix);
  return Buffer.concat(list, bodySize(kind, parts));
}

/** `MetricIntakeType` of the v2 API. */
const INTAKE_TYPE = { count: 1, rate: 2, gauge: 3 } as const;

/**
 * One `MetricSeries` of the v2 JSON API, or undefined for a value JSON cannot carry (NaN/±Inf would be
 * written as `null` and make Datadog reject the whole payload).
 */
export function encodeSeries(s: Series): Buffer | undefined {
  if (!Number.isFinite(s.value) || !Number.isFinite(s.timestamp)) return undefined;
  // `interval` is int64 on the wire; sub-second windows still report a 1 s interval.
  const interval = Math.max(1, Math.round(s.interval));
  let out = `{"metric":${JSON.stringify(s.metric)},"type":${INTAKE_TYPE[s.type]},"interval":${interval},"points":[{"timestamp":${Math.trunc(s.timestamp)},"value":${s.value}}]`;
  if (s.host !== '') out += `,"resources":[{"type":"host","name":${JSON.stringify(s.host)}}]`;
  out += `,"tags":${JSON.stringify(s.tags)}}`;
  return Buffer.from(out, 'utf8');
}

/**
 * Encodes one sketch as a complete `SketchPayload.sketches` (field 1) entry, so payloads are plain
 * concatenations of these plus {@link SKETCH_PAYLOAD_FOOTER}, and can be split and re-joined freely.
 */
export function encodeSketchEntry(s: SketchSeries): Buffer {
  const d = s.sketch;
  const dog = new ProtoWriter(64 + d.keys.length * 6);
  dog.int64(1, s.timestamp);
  dog.int64(2, d.count);
  dog.double(3, d.min);
  dog.double(4, d.max);
  dog.double(5, d.avg);
  dog.double(6, d.sum);
  dog.packedSint32(7, d.keys);
  dog.packedUint32(8, d.counts);
  const dogBytes = dog.finish();

  const sketch = new ProtoWriter(dogBytes.length + s.metric.length + s.host.length + 64);
  sketch.string(1, s.metric);
  sketch.string(2, s.host);
  sketch.repeatedString(4, s.tags);
  sketch.bytes(7, dogBytes);
  const sketchBytes = sketch.finish();

  const entry = new ProtoWriter(sketchBytes.length + 8);
  entry.bytes(1, sketchBytes);
  // Copy out of the writer's oversized buffer so a retained entry does not pin the slack.
  return Buffer.from(entry.finish());
}

/** One agent `SketchPayload.Sketch` entry, or undefined when the summary holds a non-finite number. */
export function encodeSketch(s: SketchSeries): Buffer | undefined {
  return sketchIsValid(s) ? encodeSketchEntry(s) : undefined;
}
