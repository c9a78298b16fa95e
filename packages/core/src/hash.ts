/**
 * The one FNV-1a of the project (32-bit), over bytes or over a string's UTF-16 code units. Every hash
 * table of the aggregator (raw-bytes index, contexts, tag sets) and the parser's name scan use it, so
 * a hash continued from another (the parser's name hash into the raw index) stays the same function.
 */

/** The FNV-1a 32-bit offset basis. */
export const FNV_OFFSET_BASIS = 0x811c9dc5;

/** The FNV-1a 32-bit prime. */
const FNV_PRIME = 16777619;

/**
 * One FNV-1a step: mixes byte (or code unit) `b` into `h`. The parser's name scan writes this step
 * out in its own loop (a separate pass would read every name byte twice, and a call per byte costs).
 */
export function fnv1aStep(h: number, b: number): number {
  return Math.imul(h ^ b, FNV_PRIME);
}

/** FNV-1a over `buf[start, end)`, continuing from `h`. */
export function fnv1aBytes(h: number, buf: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, FNV_PRIME);
  return h;
}

/** FNV-1a over a string's UTF-16 code units, continuing from `h`. */
export function fnv1aString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h;
}

/** A random offset basis: a per-process (or per-table) seed keeps clients from crafting names that all collide. */
export function seededBasis(): number {
  return (FNV_OFFSET_BASIS ^ ((Math.random() * 0x100000000) >>> 0)) | 0;
}
