/**
 * Snappy's block format (https://github.com/google/snappy/blob/main/format_description.txt), the
 * compression remote write requires: a varint of the length, then literals and back-references.
 * Only the encoder: the sink never reads snappy. Matches are found with a 16 K-entry hash table of
 * 4-byte sequences per 64 KiB block, as the reference encoder does, so every offset fits two bytes.
 */

/** Input is compressed in blocks of this size; back-references never cross a block. */
const BLOCK = 1 << 16;
const HASH_BITS = 14;
/** Blocks shorter than this are one literal: too short to hold a match worth a copy. */
const MIN_MATCH_BLOCK = 17;

/** Room the compressed form of `n` bytes may need at worst (the reference's MaxCompressedLength). */
function maxCompressedLength(n: number): number {
  return 32 + n + Math.floor(n / 6);
}

/** Four bytes as a signed 32-bit integer: only compared and hashed, so the sign does not matter, and it stays a small integer for V8. */
function load32(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

function hash(v: number): number {
  return Math.imul(v, 0x1e35a7bd) >>> (32 - HASH_BITS);
}

/** Writes a snappy stream into a buffer sized for the worst case; `o` is the write position. */
class Out {
  readonly buf: Buffer;
  o = 0;

  constructor(n: number) {
    this.buf = Buffer.allocUnsafe(maxCompressedLength(n));
  }

  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.o++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.o++] = n;
  }

  literal(src: Uint8Array, from: number, to: number): void {
    const len = to - from;
    if (len === 0) return;
    const n = len - 1;
    if (n < 60) this.buf[this.o++] = n << 2;
    else {
      // Tag 60..63: the length minus one follows in 1..4 little-endian bytes.
      const bytes = n < 1 << 8 ? 1 : n < 1 << 16 ? 2 : n < 1 << 24 ? 3 : 4;
      this.buf[this.o++] = (59 + bytes) << 2;
      for (let i = 0, v = n; i < bytes; i++, v = Math.floor(v / 256)) this.buf[this.o++] = v & 0xff;
    }
    // Most literals are a sample's few changing bytes: a loop beats a subarray view, which is garbage.
    if (len < 32) for (let i = from, o = this.o; i < to; i++, o++) this.buf[o] = src[i]!;
    else this.buf.set(src.subarray(from, to), this.o);
    this.o += len;
  }

  copy(offset: number, len: number): void {
    // A copy with a 2-byte offset holds 1..64 bytes; the tail is kept ≥ 4 so the last one may be a 1-byte-offset copy.
    while (len >= 68) {
      this.copy2(offset, 64);
      len -= 64;
    }
    if (len > 64) {
      this.copy2(offset, 60);
      len -= 60;
    }
    if (len < 12 && offset < 2048) {
      this.buf[this.o++] = ((offset >>> 8) << 5) | ((len - 4) << 2) | 1;
      this.buf[this.o++] = offset & 0xff;
    } else this.copy2(offset, len);
  }

  private copy2(offset: number, len: number): void {
    this.buf[this.o++] = ((len - 1) << 2) | 2;
    this.buf[this.o++] = offset & 0xff;
    this.buf[this.o++] = offset >>> 8;
  }
}

const table = new Int32Array(1 << HASH_BITS);

/** Compresses one block [start, end) of `src`. */
function block(src: Uint8Array, start: number, end: number, out: Out): void {
  if (end - start < MIN_MATCH_BLOCK) return out.literal(src, start, end);
  table.fill(-1);
  let lit = start;
  let i = start;
  // The last bytes are always a literal: a match needs 4 bytes to compare.
  const limit = end - 4;
  while (i <= limit) {
    const v = load32(src, i);
    const h = hash(v);
    const cand = table[h]!;
    table[h] = i;
    if (cand >= start && load32(src, cand) === v) {
      out.literal(src, lit, i);
      let len = 4;
      // Four bytes per step while they agree (matches run long in label-heavy requests), then byte by byte.
      while (i + len + 4 <= end && load32(src, cand + len) === load32(src, i + len)) len += 4;
      while (i + len < end && src[cand + len] === src[i + len]) len++;
      out.copy(i - cand, len);
      i += len;
      lit = i;
    } else {
      // Skip faster through data that does not compress, as the reference encoder does.
      i += 1 + ((i - lit) >>> 5);
    }
  }
  out.literal(src, lit, end);
}

/** `src` in snappy's block format (not the framed stream format). */
export function snappyCompress(src: Uint8Array): Buffer {
  const out = new Out(src.length);
  out.varint(src.length);
  for (let start = 0; start < src.length; start += BLOCK) block(src, start, Math.min(src.length, start + BLOCK), out);
  return out.buf.subarray(0, out.o);
}
