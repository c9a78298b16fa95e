/**
 * Finds a context from the raw bytes of a StatsD line (type, name, tag segment) without building a
 * string: the hot path hashes the bytes in place and compares them with the stored copy. This replaced
 * a latin1-string Map key, which cost two string slices and a concatenation per line.
 */

/** One stored key; `next` chains entries whose hashes collide. */
export interface RawKeyEntry<V> {
  readonly hash: number;
  readonly type: number;
  readonly nameLen: number;
  /** Name bytes followed by tag bytes, one char per byte (latin1): a string costs far less than a Buffer. */
  readonly bytes: string;
  readonly value: V;
  next: RawKeyEntry<V> | undefined;
}

let scratch = Buffer.allocUnsafe(256);

function hashRange(h: number, buf: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 16777619);
  return h;
}

function sameBytes(a: string, aStart: number, b: Buffer, bStart: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a.charCodeAt(aStart + i) !== b[bStart + i]) return false;
  return true;
}

/** A hash table from (type, name bytes, tag bytes) to a value, chained on collisions. */
export class RawKeyIndex<V> {
  // A power-of-two bucket array indexed by the hash's low bits: an element load instead of a Map lookup.
  private buckets: (RawKeyEntry<V> | undefined)[] = new Array<RawKeyEntry<V> | undefined>(1024).fill(undefined);
  private mask = 1023;
  private count = 0;
  /** A per-process seed keeps clients from crafting names that all land in one chain. */
  private readonly seed = (Math.random() * 0x100000000) >>> 0;

  /** Number of keys stored. */
  get size(): number {
    return this.count;
  }

  /** FNV-1a over type, name and tags; tagsStart < 0 means no tags. */
  hash(type: number, buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number): number {
    let h = Math.imul((0x811c9dc5 ^ this.seed) ^ type, 16777619);
    h = hashRange(h, buf, nameStart, nameEnd);
    // A separator byte that cannot start a tag keeps "ab"+"c" apart from "a"+"bc".
    h = Math.imul(h ^ 0x7c, 16777619);
    if (tagsStart >= 0) h = hashRange(h, buf, tagsStart, tagsEnd);
    return h;
  }

  /** The value stored for these bytes, if any. */
  get(hash: number, type: number, buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number): V | undefined {
    const nameLen = nameEnd - nameStart;
    const tagsLen = tagsStart >= 0 ? tagsEnd - tagsStart : 0;
    for (let e = this.buckets[hash & this.mask]; e !== undefined; e = e.next) {
      if (e.hash !== hash) continue;
      if (e.type !== type || e.nameLen !== nameLen || e.bytes.length !== nameLen + tagsLen) continue;
      if (!sameBytes(e.bytes, 0, buf, nameStart, nameLen)) continue;
      if (tagsLen > 0 && !sameBytes(e.bytes, nameLen, buf, tagsStart, tagsLen)) continue;
      return e.value;
    }
    return undefined;
  }

  /** Stores a copy of the key bytes; returns the entry so it can be deleted later. */
  add(hash: number, type: number, buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number, value: V): RawKeyEntry<V> {
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
    const i = hash & this.mask;
    const entry: RawKeyEntry<V> = { hash, type, nameLen, bytes, value, next: this.buckets[i] };
    this.buckets[i] = entry;
    if (++this.count > this.buckets.length) this.grow();
    return entry;
  }

  /** Removes one entry. */
  delete(entry: RawKeyEntry<V>): void {
    const i = entry.hash & this.mask;
    let head = this.buckets[i];
    if (head === entry) {
      this.buckets[i] = entry.next;
      this.count--;
      return;
    }
    while (head !== undefined && head.next !== entry) head = head.next;
    if (head !== undefined) {
      head.next = entry.next;
      this.count--;
    }
  }

  /** Doubles the buckets once chains average more than one entry, keeping lookups O(1). */
  private grow(): void {
    const old = this.buckets;
    const size = old.length * 2;
    const next = new Array<RawKeyEntry<V> | undefined>(size).fill(undefined);
    const mask = size - 1;
    for (let e of old) {
      while (e !== undefined) {
        const after = e.next;
        const i = e.hash & mask;
        e.next = next[i];
        next[i] = e;
        e = after;
      }
    }
    this.buckets = next;
    this.mask = mask;
  }
}
