/**
 * A minimal protobuf writer shared by every sink that speaks protobuf (Datadog sketches, OTLP, remote
 * write): a handful of messages per sink do not justify a runtime protobuf dependency, and one writer
 * in core keeps the wire rules (proto3 defaults, int64 two's complement, packing) in one place.
 * Each sink's tests decode its output with an independent decoder.
 */

/** Wire type of varint fields (int32/64, uint32/64, sint32/64, bool, enum). */
export const WIRE_VARINT = 0;
/** Wire type of fixed64, sfixed64 and double fields. */
export const WIRE_FIXED64 = 1;
/** Wire type of length-delimited fields (strings, bytes, messages, packed repeated). */
export const WIRE_LEN = 2;

/** Bytes a non-negative integer (< 2^53) takes as a varint. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** ZigZag for sint32: small negative numbers stay small on the wire. */
export function zigzag32(n: number): number {
  return ((n << 1) ^ (n >> 31)) >>> 0;
}

/** Writes a non-negative integer (< 2^53) as a varint at `buf[pos]`; returns the position after it. */
export function putVarint(buf: Buffer, pos: number, v: number): number {
  while (v >= 128) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

/** An open length-delimited field: where its one reserved length byte is. */
export type ProtoMark = number;

/** A growable buffer with the protobuf writes the project's payloads need. */
export class ProtoWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initial));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
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
    this.pos = putVarint(this.buf, this.pos, v);
  }

  /** A field's key. */
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

  /** uint32/uint64/enum/bool as a varint; 0 is omitted (proto3 default). */
  uint(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, WIRE_VARINT);
    this.varint(v);
  }

  /** sint32 (zigzag); 0 is omitted. */
  sint32(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, WIRE_VARINT);
    this.varint(zigzag32(v));
  }

  /** A double; +0 omitted as proto3 does (-0 has a sign bit to keep). */
  double(field: number, v: number): void {
    if (v === 0 && !Object.is(v, -0)) return;
    this.presentDouble(field, v);
  }

  /** A double of an `optional` field: written even when 0, since presence is what it says. */
  presentDouble(field: number, v: number): void {
    this.tag(field, WIRE_FIXED64);
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** fixed64 from a bigint (timestamps in nanoseconds exceed 2^53); 0 omitted. */
  fixed64(field: number, v: bigint): void {
    if (v === 0n) return;
    this.tag(field, WIRE_FIXED64);
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.pos);
    this.pos += 8;
  }

  /** fixed64 from a non-negative integer below 2^53 (counts); 0 omitted. */
  fixed64n(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, WIRE_FIXED64);
    this.ensure(8);
    this.buf.writeUInt32LE(v % 0x1_0000_0000, this.pos);
    this.buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), this.pos + 4);
    this.pos += 8;
  }

  /** A string; empty is omitted. */
  string(field: number, s: string): void {
    if (s.length === 0) return;
    this.presentString(field, s);
  }

  /** A string of an `optional` field or a oneof: written even when empty, since presence is what it says. */
  presentString(field: number, s: string): void {
    const len = Buffer.byteLength(s, 'utf8');
    this.tag(field, WIRE_LEN);
    this.varint(len);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }

  /** Repeated strings are never packed: each is its own field, empty ones included (they are values). */
  repeatedString(field: number, list: readonly string[]): void {
    for (const s of list) this.presentString(field, s);
  }

  /** Raw bytes, e.g. a sub-message encoded elsewhere. */
  bytes(field: number, b: Buffer): void {
    this.tag(field, WIRE_LEN);
    this.varint(b.length);
    this.ensure(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  /** Bytes `[start, end)` of `b` as they are, no tag or length: fields encoded once and copied into many messages. */
  raw(b: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n <= 0) return;
    this.ensure(n);
    const buf = this.buf;
    // Short runs (a label field) copy faster byte by byte than through a subarray view, which is garbage.
    if (n < 64) for (let i = start, o = this.pos; i < end; i++, o++) buf[o] = b[i]!;
    else buf.set(b.subarray(start, end), this.pos);
    this.pos += n;
  }

  /** Packed repeated sint32; nothing for an empty list. */
  packedSint32(field: number, list: readonly number[]): void {
    if (list.length === 0) return;
    let len = 0;
    for (const v of list) len += varintSize(zigzag32(v));
    this.tag(field, WIRE_LEN);
    this.varint(len);
    for (const v of list) this.varint(zigzag32(v));
  }

  /** Packed repeated uint32/uint64 (values below 2^53); nothing for an empty list. */
  packedUint(field: number, list: readonly number[]): void {
    if (list.length === 0) return;
    let len = 0;
    for (const v of list) len += varintSize(v);
    this.tag(field, WIRE_LEN);
    this.varint(len);
    for (const v of list) this.varint(v);
  }

  /** Packed repeated uint32 (values taken modulo 2^32); nothing for an empty list. */
  packedUint32(field: number, list: readonly number[]): void {
    if (list.length === 0) return;
    let len = 0;
    for (const v of list) len += varintSize(v >>> 0);
    this.tag(field, WIRE_LEN);
    this.varint(len);
    for (const v of list) this.varint(v >>> 0);
  }

  /** Packed repeated fixed64 (values below 2^53); nothing for an empty list. */
  packedFixed64(field: number, list: readonly number[]): void {
    if (list.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.varint(list.length * 8);
    this.ensure(list.length * 8);
    for (const v of list) {
      this.buf.writeUInt32LE(v % 0x1_0000_0000, this.pos);
      this.buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), this.pos + 4);
      this.pos += 8;
    }
  }

  /** Packed repeated double; nothing for an empty list. */
  packedDouble(field: number, list: readonly number[]): void {
    if (list.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.varint(list.length * 8);
    this.ensure(list.length * 8);
    for (const v of list) {
      this.buf.writeDoubleLE(v, this.pos);
      this.pos += 8;
    }
  }

  /**
   * Opens a sub-message in place: one length byte is reserved, and {@link join} widens it if the
   * message grew past 127 bytes, so nested messages need no intermediate Buffers.
   */
  fork(field: number): ProtoMark {
    this.tag(field, WIRE_LEN);
    this.ensure(1);
    return this.pos++;
  }

  /** Closes the sub-message opened at `mark`, writing its length. */
  join(mark: ProtoMark): void {
    const len = this.pos - mark - 1;
    const size = varintSize(len);
    if (size > 1) {
      this.ensure(size - 1);
      this.buf.copyWithin(mark + size, mark + 1, this.pos);
      this.pos += size - 1;
    }
    putVarint(this.buf, mark, len);
  }

  /** The bytes written, as a view of the internal buffer (copy it before reusing the writer). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** Forgets what was written, keeping the buffer for the next message. */
  reset(): void {
    this.pos = 0;
  }
}
