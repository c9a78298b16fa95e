/**
 * Finds a context from the raw bytes of a StatsD line (type, name, tag segment) without building a
 * string: the hot path hashes the bytes in place and compares them with the stored key. This replaced
 * a latin1-string Map key, which cost two string slices and a concatenation per line.
 *
 * The index chains the caller's own objects (anything {@link RawKeyed}): a context can be its own
 * entry and compare the bytes with its name and tags, so the usual key costs neither an entry object
 * nor a copy of its bytes. {@link RawKey} is the stand-alone entry for every other key.
 */

import { fnv1aBytes, fnv1aStep, seededBasis } from './hash.js';

/** An entry of a {@link RawKeyIndex}. */
export interface RawKeyed<V> {
  /** Hash of the key, from {@link RawKeyIndex.hash}; set before {@link RawKeyIndex.add}. */
  rawHash: number;
  /** Next entry in the same bucket; owned by the index. */
  rawNext: RawKeyed<V> | undefined;
  /** What the key resolves to. */
  readonly rawValue: V;
  /** Whether the key is exactly these bytes; tagsStart < 0 means no tag segment. */
  rawMatches(type: number, buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number): boolean;
}

let scratch = Buffer.allocUnsafe(256);

/**
 * Whether `len` chars of `a` from `aStart` equal `len` bytes of `b` from `bStart`. Four chars per
 * branch (XORs or-ed): a key found by its hash almost always matches, so the loop runs to the end and
 * the branches, not the early exit, are what it costs (this is most of rawMatches' self time).
 */
export function sameBytes(a: string, aStart: number, b: Buffer, bStart: number, len: number): boolean {
  let i = 0;
  for (; i + 3 < len; i += 4) {
    const d =
      (a.charCodeAt(aStart + i) ^ b[bStart + i]!) |
      (a.charCodeAt(aStart + i + 1) ^ b[bStart + i + 1]!) |
      (a.charCodeAt(aStart + i + 2) ^ b[bStart + i + 2]!) |
      (a.charCodeAt(aStart + i + 3) ^ b[bStart + i + 3]!);
    if (d !== 0) return false;
  }
  for (; i < len; i++) if (a.charCodeAt(aStart + i) !== b[bStart + i]) return false;
  return true;
}

/**
 * A DataView over `buf`, kept for the last Buffer asked about: every line of a packet asks about the
 * same one, so a packet costs one DataView, not one per line.
 */
let viewBuf: Buffer | undefined;
let viewOfBuf: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

/** The DataView of `buf`'s bytes, reused while the same Buffer is asked about. */
export function dataViewOf(buf: Buffer): DataView<ArrayBufferLike> {
  if (buf !== viewBuf) {
    viewOfBuf = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    viewBuf = buf;
  }
  return viewOfBuf;
}

/** 32-bit words a segment of `len` bytes takes in a {@link KeyWords} store: ⌈len/4⌉, and one for 1–3 bytes. */
export function wordsOf(len: number): number {
  return (len + 3) >>> 2;
}

/**
 * The word of a 1–3 byte segment, bytes little-endian: too short for a 4-byte read, which must not
 * run past the segment (the packet may end there).
 */
function shortWord(dv: DataView, start: number, len: number): number {
  let w = 0;
  for (let i = 0; i < len; i++) w |= dv.getUint8(start + i) << (8 * i);
  return w;
}

/**
 * Segment `dv[start, start+len)` as words: the 4-byte reads at 0, 4, 8… and, when `len` is not a
 * multiple of 4, a last read ending exactly at the segment's end (overlapping the one before), so no
 * read goes past the segment. Stored and compared the same way.
 */
function writeSegment(words: Int32Array, at: number, dv: DataView, start: number, len: number): void {
  if (len < 4) {
    words[at] = shortWord(dv, start, len);
    return;
  }
  const last = len - 4;
  for (let i = 0; i < last; i += 4) words[at++] = dv.getInt32(start + i, true);
  words[at] = dv.getInt32(start + last, true);
}

/**
 * Whether segment `dv[start, start+len)` (len ≥ 1) equals the words at `at`. Four bytes per read: on
 * this V8 each element read of a typed array or char of a string costs some twenty instructions
 * (map and bounds checks are not hoisted out of the loop), so a byte loop was most of a lookup.
 */
export function segmentMatches(words: Int32Array, at: number, dv: DataView, start: number, len: number): boolean {
  if (len < 4) return words[at] === shortWord(dv, start, len);
  const last = len - 4;
  for (let i = 0; i < last; i += 4) if (words[at++] !== dv.getInt32(start + i, true)) return false;
  return words[at] === dv.getInt32(start + last, true);
}

/**
 * Byte forms of keys (name segment, then tag segment) as 32-bit words in one growing array, so a key
 * costs no object of its own. Space of removed keys is counted as dead and reclaimed by
 * {@link compactInto} when the owner moves the live keys into a fresh store.
 */
export class KeyWords {
  /** The words; replaced when the store grows or is compacted. */
  words = new Int32Array(1024);
  /** Words handed out so far. */
  used = 0;
  /** Words of removed keys, not yet reclaimed. */
  dead = 0;

  /** Stores a key's name and tag segments (tagsStart < 0: none); returns its word offset. */
  add(buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number): number {
    const nameLen = nameEnd - nameStart;
    const tagsLen = tagsStart >= 0 ? tagsEnd - tagsStart : 0;
    const need = wordsOf(nameLen) + wordsOf(tagsLen);
    this.reserve(need);
    const at = this.used;
    const dv = dataViewOf(buf);
    if (nameLen > 0) writeSegment(this.words, at, dv, nameStart, nameLen);
    if (tagsLen > 0) writeSegment(this.words, at + wordsOf(nameLen), dv, tagsStart, tagsLen);
    this.used += need;
    return at;
  }

  /** Grows the store, if need be, so that `need` more words fit. */
  private reserve(need: number): void {
    if (this.used + need <= this.words.length) return;
    let cap = this.words.length * 2;
    while (cap < this.used + need) cap *= 2;
    const grown = new Int32Array(cap);
    grown.set(this.words.subarray(0, this.used));
    this.words = grown;
  }

  /** Counts the words of a removed key as dead. */
  free(nameLen: number, tagsLen: number): void {
    this.dead += wordsOf(nameLen) + wordsOf(tagsLen);
  }

  /** Whether dead words are over half of the store, so that moving the live keys would pay. */
  get wantsCompaction(): boolean {
    return this.dead > 4096 && this.dead * 2 > this.used;
  }

  /** Copies `n` words from offset `at` of this store into `into` and returns their new offset there. */
  moveTo(into: KeyWords, at: number, n: number): number {
    into.reserve(n);
    const to = into.used;
    into.words.set(this.words.subarray(at, at + n), to);
    into.used += n;
    return to;
  }
}

/** A stand-alone key: a copy of the key bytes and the value they resolve to. */
export class RawKey<V> implements RawKeyed<V> {
  rawNext: RawKeyed<V> | undefined = undefined;
  private readonly type: number;
  private readonly nameLen: number;
  /** Name bytes followed by tag bytes, one char per byte (latin1): a string costs far less than a Buffer. */
  private readonly bytes: string;

  constructor(
    public rawHash: number,
    type: number,
    buf: Buffer,
    nameStart: number,
    nameEnd: number,
    tagsStart: number,
    tagsEnd: number,
    readonly rawValue: V,
  ) {
    const nameLen = nameEnd - nameStart;
    const tagsLen = tagsStart >= 0 ? tagsEnd - tagsStart : 0;
    let bytes: string;
    if (tagsLen === 0) bytes = buf.toString('latin1', nameStart, nameEnd);
    else {
      // One flat string: a concatenation would leave a cons string, slow to read char by char.
      if (scratch.length < nameLen + tagsLen) scratch = Buffer.allocUnsafe(Math.max(2 * scratch.length, nameLen + tagsLen));
      buf.copy(scratch, 0, nameStart, nameEnd);
      buf.copy(scratch, nameLen, tagsStart, tagsEnd);
      bytes = scratch.toString('latin1', 0, nameLen + tagsLen);
    }
    this.type = type;
    this.nameLen = nameLen;
    this.bytes = bytes;
  }

  /** Compares type, then lengths, then bytes. */
  rawMatches(type: number, buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number): boolean {
    const nameLen = nameEnd - nameStart;
    const tagsLen = tagsStart >= 0 ? tagsEnd - tagsStart : 0;
    const bytes = this.bytes;
    if (this.type !== type || this.nameLen !== nameLen || bytes.length !== nameLen + tagsLen) return false;
    if (!sameBytes(bytes, 0, buf, nameStart, nameLen)) return false;
    return tagsLen === 0 || sameBytes(bytes, nameLen, buf, tagsStart, tagsLen);
  }
}

/** Bucket count up to which {@link RawKeyIndex} grows fourfold rather than twofold. */
const MAX_FOURFOLD_BUCKETS = 1 << 20;

/** A hash table from (type, name bytes, tag bytes) to entries, chained on collisions. */
export class RawKeyIndex<V> {
  /** Bucket heads; a power of two long, at least as long as the number of entries (and up to 4 times). */
  private buckets: (RawKeyed<V> | undefined)[] = new Array<RawKeyed<V> | undefined>(1024).fill(undefined);
  private count = 0;
  /** Seeded per index, so clients cannot craft names that all land in one chain. */
  private readonly basis = seededBasis();

  /** Number of keys stored. */
  get size(): number {
    return this.count;
  }

  /** The seeded FNV-1a offset basis: a parser given it as `nameHashBasis` hashes names as this index does. */
  get nameHashBasis(): number {
    return this.basis;
  }

  /** FNV-1a over name, type and tags; tagsStart < 0 means no tags. */
  hash(type: number, buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number): number {
    return this.hashAfterName(fnv1aBytes(this.basis, buf, nameStart, nameEnd), type, buf, tagsStart, tagsEnd);
  }

  /** {@link hash} from the hash of the name bytes alone (a parser's `nameHash`), without reading them again. */
  hashAfterName(nameHash: number, type: number, buf: Buffer, tagsStart: number, tagsEnd: number): number {
    // The type, then a separator byte that cannot start a tag, keep "ab"+"c" apart from "a"+"bc".
    const h = fnv1aStep(fnv1aStep(nameHash, type), 0x7c);
    return tagsStart >= 0 ? fnv1aBytes(h, buf, tagsStart, tagsEnd) : h;
  }

  /** The value stored for these bytes, if any. */
  get(hash: number, type: number, buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number): V | undefined {
    for (let e = this.buckets[hash & (this.buckets.length - 1)]; e !== undefined; e = e.rawNext) {
      if (e.rawHash === hash && e.rawMatches(type, buf, nameStart, nameEnd, tagsStart, tagsEnd)) return e.rawValue;
    }
    return undefined;
  }

  /** Stores an entry whose `rawHash` is set; it must not be stored already. */
  add(entry: RawKeyed<V>): void {
    if (this.count >= this.buckets.length) this.grow();
    const i = entry.rawHash & (this.buckets.length - 1);
    entry.rawNext = this.buckets[i];
    this.buckets[i] = entry;
    this.count++;
  }

  /** Removes one entry; a no-op if it is not stored. */
  delete(entry: RawKeyed<V>): void {
    const i = entry.rawHash & (this.buckets.length - 1);
    let e = this.buckets[i];
    if (e === entry) {
      this.buckets[i] = entry.rawNext;
    } else {
      while (e !== undefined && e.rawNext !== entry) e = e.rawNext;
      if (e === undefined) return;
      e.rawNext = entry.rawNext;
    }
    entry.rawNext = undefined;
    this.count--;
  }

  /**
   * Grows the buckets fourfold (twofold past 2^20) and rehashes every chain. A burst of new keys (a
   * first window of 200k contexts) otherwise rehashes each key some 1.3 times on its way up, every
   * move a cache miss on the entry; fourfold steps move it ~0.4 times, for at most 32 bytes of
   * buckets per entry rather than 16.
   */
  private grow(): void {
    const old = this.buckets;
    const buckets = new Array<RawKeyed<V> | undefined>(old.length * (old.length < MAX_FOURFOLD_BUCKETS ? 4 : 2)).fill(undefined);
    const mask = buckets.length - 1;
    for (let e of old) {
      while (e !== undefined) {
        const next = e.rawNext;
        const i = e.rawHash & mask;
        e.rawNext = buckets[i];
        buckets[i] = e;
        e = next;
      }
    }
    this.buckets = buckets;
  }
}
