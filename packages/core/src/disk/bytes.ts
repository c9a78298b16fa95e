/**
 * The byte-level writer and reader of the binary window record: varints, little-endian doubles and
 * a per-record string table. Hand-written rather than protobuf because the record needs its string
 * table and its slicing, and every field here has one fixed meaning.
 */

/** Below this, a writer's memory is kept by {@link ByteWriter.reset} however little the last use took. */
const KEEP_BYTES = 1024 * 1024;

/** A growable byte buffer written front to back; {@link reset} reuses its memory for the next record. */
export class ByteWriter {
  private buf: Buffer;
  /** Bytes written so far. */
  length = 0;

  /** A writer starting with room for `initialBytes`. */
  constructor(private readonly initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /**
   * Starts again at byte 0, keeping the memory: what {@link bytes} returned before is overwritten from
   * now on. A window's record is tens of MB at 200k contexts, and that much fresh external memory per
   * window brought V8's next full mark-compact forward (about one more per window). Memory four times
   * larger than the last use (over 1 MiB) is given up for a smaller allocation, so one outsized window
   * does not pin its size for good.
   */
  reset(): void {
    if (this.buf.length > KEEP_BYTES && this.length * 4 < this.buf.length) this.buf = Buffer.allocUnsafe(Math.max(this.initialBytes, this.length * 2));
    this.length = 0;
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** One byte. */
  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }

  /** An unsigned integer below 2^53, 7 bits a byte. */
  varuint(v: number): void {
    this.room(8);
    const b = this.buf;
    // Bit operations are only safe below 2^31; larger values (counts of a huge window, never indices) divide.
    while (v >= 0x80) {
      b[this.length++] = (v % 0x80) | 0x80;
      v = v >= 0x80000000 ? Math.floor(v / 0x80) : v >>> 7;
    }
    b[this.length++] = v;
  }

  /** A signed 32-bit integer, zigzag encoded so small negatives stay short. */
  varint(v: number): void {
    this.varuint(((v << 1) ^ (v >> 31)) >>> 0);
  }

  /** A double, 8 bytes little-endian: values are kept bit for bit. */
  f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.length);
    this.length += 8;
  }

  /** A string as its UTF-8 byte length and bytes. */
  str(s: string): void {
    // Short strings (nearly all names and tags) take a one-byte length: write the bytes after it and
    // fill it in, sparing a byte-length pass over each string.
    if (s.length < 42) {
      this.room(1 + 3 * s.length);
      const n = this.buf.write(s, this.length + 1, 'utf8');
      this.buf[this.length] = n;
      this.length += 1 + n;
      return;
    }
    const n = Buffer.byteLength(s, 'utf8');
    this.varuint(n);
    this.room(n);
    this.buf.write(s, this.length, n, 'utf8');
    this.length += n;
  }

  /** The bytes written, sharing this writer's memory. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** Thrown by {@link ByteReader} on data that does not have the structure it should; the decoder turns it into undefined. */
export class MalformedRecord extends Error {}

/** Reads what {@link ByteWriter} wrote; throws {@link MalformedRecord} past the end or on a bad varint. */
export class ByteReader {
  /** Next byte to read. */
  pos: number;

  /** A reader of `buf` from `start`. */
  constructor(
    private readonly buf: Buffer,
    start = 0,
  ) {
    this.pos = start;
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  /** True once every byte has been read. */
  get done(): boolean {
    return this.pos === this.buf.length;
  }

  /** One byte. */
  u8(): number {
    const v = this.buf[this.pos++];
    if (v === undefined) throw new MalformedRecord('record ends early');
    return v;
  }

  /** An unsigned varint. */
  varuint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
    throw new MalformedRecord('varint too long');
  }

  /** A zigzag signed varint. */
  varint(): number {
    const z = this.varuint();
    return (z >>> 1) ^ -(z & 1);
  }

  /** A little-endian double. */
  f64(): number {
    if (this.pos + 8 > this.buf.length) throw new MalformedRecord('record ends early');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Skips `n` bytes. */
  skip(n: number): void {
    if (this.pos + n > this.buf.length) throw new MalformedRecord('record ends early');
    this.pos += n;
  }

  /** A length-prefixed UTF-8 string. */
  str(): string {
    const n = this.varuint();
    const end = this.pos + n;
    if (end > this.buf.length) throw new MalformedRecord('record ends early');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }
}
