/**
 * A minimal protobuf encoder for the agent's `SketchPayload` (DataDog/agent-payload
 * `proto/metrics/agent_payload.proto`). Two messages do not justify a runtime protobuf dependency;
 * the tests decode every byte with protobufjs against the real .proto text.
 */
import type { SketchSeries } from '@metrics-distributor/core';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;

/** Bytes a non-negative integer (< 2^53) takes as a varint. */
function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** ZigZag for sint32: small negative keys stay small on the wire. */
function zigzag32(n: number): number {
  return ((n << 1) ^ (n >> 31)) >>> 0;
}

/** A growable buffer with just the protobuf writes the sketch payload needs (the test oracle builds whole entries with it). */
export class ProtoWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initial: number) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initial));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Non-negative integers only; int64 fields that could be negative go through {@link int64}. */
  varint(v: number): void {
    this.ensure(10);
    while (v >= 128) {
      this.buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** int64 as protobuf does it: negatives are 10-byte two's complement, which plain doubles cannot express. */
  int64(field: number, v: number): void {
    const n = Math.trunc(v);
    if (n === 0) return; // proto3 default: omitted, as the Go encoder does
    this.tag(field, WIRE_VARINT);
    if (n > 0 && n <= Number.MAX_SAFE_INTEGER) {
      this.varint(n);
      return;
    }
    let b = BigInt.asUintN(64, BigInt(n));
    this.ensure(10);
    while (b >= 128n) {
      this.buf[this.pos++] = Number(b & 127n) | 0x80;
      b >>= 7n;
    }
    this.buf[this.pos++] = Number(b);
  }

  double(field: number, v: number): void {
    if (v === 0 && !Object.is(v, -0)) return;
    this.tag(field, WIRE_FIXED64);
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  string(field: number, s: string): void {
    if (s.length === 0) return;
    const len = Buffer.byteLength(s, 'utf8');
    this.tag(field, WIRE_LEN);
    this.varint(len);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }

  /** Repeated strings are never packed: each is its own field, empty ones included (they are values). */
  repeatedString(field: number, list: readonly string[]): void {
    for (const s of list) {
      const len = Buffer.byteLength(s, 'utf8');
      this.tag(field, WIRE_LEN);
      this.varint(len);
      this.ensure(len);
      this.pos += this.buf.write(s, this.pos, len, 'utf8');
    }
  }

  bytes(field: number, b: Buffer): void {
    this.tag(field, WIRE_LEN);
    this.varint(b.length);
    this.ensure(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  packedSint32(field: number, list: readonly number[]): void {
    if (list.length === 0) return;
    let len = 0;
    for (const v of list) len += varintSize(zigzag32(v));
    this.tag(field, WIRE_LEN);
    this.varint(len);
    for (const v of list) this.varint(zigzag32(v));
  }

  packedUint32(field: number, list: readonly number[]): void {
    if (list.length === 0) return;
    let len = 0;
    for (const v of list) len += varintSize(v >>> 0);
    this.tag(field, WIRE_LEN);
    this.varint(len);
    for (const v of list) this.varint(v >>> 0);
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

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

function putVarint(buf: Buffer, pos: number, v: number): number {
  while (v >= 128) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
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
