/**
 * The agent's `SketchPayload` (DataDog/agent-payload `proto/metrics/agent_payload.proto`), written
 * with core's protobuf writer; the tests decode every byte with protobufjs against the real .proto text.
 */
import { ProtoWriter, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, putVarint, varintSize, zigzag32, type SketchSeries } from '@metrics-distributor/core';

/** Whether a sketch can be encoded: a finite summary, and as many counts as keys. */
export function sketchIsValid(s: SketchSeries): boolean {
  const d = s.sketch;
  if (!Number.isFinite(d.count) || !Number.isFinite(d.sum) || !Number.isFinite(d.min) || !Number.isFinite(d.max) || !Number.isFinite(d.avg)) return false;
  return d.keys.length === d.counts.length;
}

/** The empty `metadata` (field 2) the agent appends to every sketch payload. */
export const SKETCH_PAYLOAD_FOOTER: Buffer = Buffer.from([2 * 8 + WIRE_LEN, 0]);

/** Bytes a non-zero integral int64 field value takes as a varint: negatives are 64-bit two's complement, so 10. */
function int64Size(n: number): number {
  if (n > 0 && n <= Number.MAX_SAFE_INTEGER) return varintSize(n);
  let b = BigInt.asUintN(64, BigInt(n));
  let size = 1;
  while (b >= 128n) {
    b >>= 7n;
    size++;
  }
  return size;
}

function putInt64(buf: Buffer, pos: number, field: number, v: number): number {
  if (v === 0) return pos;
  buf[pos++] = field * 8 + WIRE_VARINT;
  if (v > 0 && v <= Number.MAX_SAFE_INTEGER) return putVarint(buf, pos, v);
  let b = BigInt.asUintN(64, BigInt(v));
  while (b >= 128n) {
    buf[pos++] = Number(b & 127n) | 0x80;
    b >>= 7n;
  }
  buf[pos++] = Number(b);
  return pos;
}

/** Whether a double field is written: proto3 omits +0 only (-0 has a sign bit to keep). */
function hasDouble(v: number): boolean {
  return v !== 0 || Object.is(v, -0);
}

function putDouble(buf: Buffer, pos: number, field: number, v: number): number {
  if (!hasDouble(v)) return pos;
  buf[pos++] = field * 8 + WIRE_FIXED64;
  buf.writeDoubleLE(v, pos);
  return pos + 8;
}

/** Any UTF-16 code unit outside ASCII: such a string takes more bytes than characters. */
const NON_ASCII = /[\u0080-\uffff]/;

function utf8Size(s: string): number {
  return NON_ASCII.test(s) ? Buffer.byteLength(s, 'utf8') : s.length;
}

/** The host and tags fields of a sketch, encoded once per tags array and host. */
interface Identity {
  readonly host: string;
  readonly tagCount: number;
  readonly bytes: Buffer;
}

/**
 * Writes `SketchPayload.sketches` entries (each a complete field 1, so payloads are plain
 * concatenations of entries plus {@link SKETCH_PAYLOAD_FOOTER} and can be split and re-joined freely)
 * straight into a body, without the three intermediate Buffers per sketch a plain encoder builds; the
 * test oracle `test/encode.ts` is that plain encoder, and the output is byte for byte the same. The host and
 * tags fields are cached per interned tags array (core shares one array per tag set across contexts and
 * windows) in a WeakMap, so they go with the contexts; only the last host per array is kept.
 *
 * Usage: {@link size} an item, then pass {@link fill} to the writer to write that same item.
 */
export class SketchEncoder {
  private readonly identities = new WeakMap<readonly string[], Identity>();
  private cur: SketchSeries | undefined;
  private id: Identity | undefined;
  private ts = 0;
  private cnt = 0;
  private metricBytes = 0;
  private keysBytes = 0;
  private countsBytes = 0;
  private dogBytes = 0;
  private sketchBytes = 0;
  /** Size of the entry last passed to {@link size}. */
  bytes = 0;

  /** Bytes of the entry for `s` (remembered for {@link fill}). The caller checks values first ({@link sketchIsValid}). */
  size(s: SketchSeries): number {
    const d = s.sketch;
    this.cur = s;
    this.id = this.identity(s);
    this.ts = Math.trunc(s.timestamp);
    this.cnt = Math.trunc(d.count);
    let keys = 0;
    for (const k of d.keys) keys += varintSize(zigzag32(k));
    let counts = 0;
    for (const c of d.counts) counts += varintSize(c >>> 0);
    this.keysBytes = keys;
    this.countsBytes = counts;
    let dog = 0;
    if (this.ts !== 0) dog += 1 + int64Size(this.ts);
    if (this.cnt !== 0) dog += 1 + int64Size(this.cnt);
    if (hasDouble(d.min)) dog += 9;
    if (hasDouble(d.max)) dog += 9;
    if (hasDouble(d.avg)) dog += 9;
    if (hasDouble(d.sum)) dog += 9;
    if (d.keys.length > 0) dog += 1 + varintSize(keys) + keys;
    if (d.counts.length > 0) dog += 1 + varintSize(counts) + counts;
    this.dogBytes = dog;
    this.metricBytes = s.metric.length === 0 ? 0 : utf8Size(s.metric);
    let sketch = this.id.bytes.length + 1 + varintSize(dog) + dog;
    if (this.metricBytes > 0) sketch += 1 + varintSize(this.metricBytes) + this.metricBytes;
    this.sketchBytes = sketch;
    this.bytes = 1 + varintSize(sketch) + sketch;
    return this.bytes;
  }

  /** Writes the entry last sized at `buf[pos]`; bound, so it can be handed to the writer as is. */
  readonly fill = (buf: Buffer, pos: number): void => {
    const start = pos;
    const s = this.cur!;
    const d = s.sketch;
    buf[pos++] = 1 * 8 + WIRE_LEN;
    pos = putVarint(buf, pos, this.sketchBytes);
    if (this.metricBytes > 0) {
      buf[pos++] = 1 * 8 + WIRE_LEN;
      pos = putVarint(buf, pos, this.metricBytes);
      pos += buf.write(s.metric, pos, this.metricBytes, 'utf8');
    }
    const idBytes = this.id!.bytes;
    idBytes.copy(buf, pos);
    pos += idBytes.length;
    buf[pos++] = 7 * 8 + WIRE_LEN;
    pos = putVarint(buf, pos, this.dogBytes);
    pos = putInt64(buf, pos, 1, this.ts);
    pos = putInt64(buf, pos, 2, this.cnt);
    pos = putDouble(buf, pos, 3, d.min);
    pos = putDouble(buf, pos, 4, d.max);
    pos = putDouble(buf, pos, 5, d.avg);
    pos = putDouble(buf, pos, 6, d.sum);
    if (d.keys.length > 0) {
      buf[pos++] = 7 * 8 + WIRE_LEN;
      pos = putVarint(buf, pos, this.keysBytes);
      for (const k of d.keys) pos = putVarint(buf, pos, zigzag32(k));
    }
    if (d.counts.length > 0) {
      buf[pos++] = 8 * 8 + WIRE_LEN;
      pos = putVarint(buf, pos, this.countsBytes);
      for (const c of d.counts) pos = putVarint(buf, pos, c >>> 0);
    }
    // A size/fill mismatch would corrupt the rest of the body: refuse it loudly instead.
    if (pos !== start + this.bytes) throw new Error(`sketch encoder: wrote ${pos - start} bytes, sized ${this.bytes}`);
    // Not kept past its write: the window's sketches can be collected as soon as the export is done.
    this.cur = undefined;
  };

  private identity(s: SketchSeries): Identity {
    const tags = s.tags;
    const id = this.identities.get(tags);
    if (id !== undefined && id.host === s.host && id.tagCount === tags.length) return id;
    const w = new ProtoWriter(64);
    w.string(2, s.host);
    w.repeatedString(4, tags);
    const fresh: Identity = { host: s.host, tagCount: tags.length, bytes: Buffer.from(w.finish()) };
    this.identities.set(tags, fresh);
    return fresh;
  }
}
