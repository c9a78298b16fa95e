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

/** A growable buffer with just the protobuf writes the sketch payload needs. */
class ProtoWriter {
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

/** The empty `metadata` (field 2) the agent appends to every sketch payload. */
export const SKETCH_PAYLOAD_FOOTER: Buffer = Buffer.from([2 * 8 + WIRE_LEN, 0]);
