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

/** A hash table from (type, name bytes, tag bytes) to entries, chained on collisions. */
export class RawKeyIndex<V> {
  /** Bucket heads; a power of two long, at least as long as the number of entries. */
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

  /** Doubles the buckets and rehashes every chain. */
  private grow(): void {
    const old = this.buckets;
    const buckets = new Array<RawKeyed<V> | undefined>(old.length * 2).fill(undefined);
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
