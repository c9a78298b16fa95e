/**
 * Byte constants and byte-level helpers of the parsers. The metric path keeps its own copies of the
 * constants it reads per byte (see statsd.ts); the helpers are shared.
 */

/** `|` */
export const PIPE = 0x7c;
/** `:` */
export const COLON = 0x3a;
/** `,` */
export const COMMA = 0x2c;
/** `#` */
export const HASH = 0x23;
/** `+` */
export const PLUS = 0x2b;
/** `-` */
export const MINUS = 0x2d;
/** `0` */
export const D0 = 0x30;
/** `9` */
export const D9 = 0x39;

/** Digits of int64 max/min magnitude, for Go `ParseInt` range parity. */
const INT64_MAX_DIGITS = '9223372036854775807';
const INT64_MIN_DIGITS = '9223372036854775808';

/** Index of `byte` in buf[from, to), or -1. */
export function indexOfByte(buf: Buffer, byte: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (buf[i] === byte) return i;
  return -1;
}

/** Case-insensitive ASCII compare of buf[at, at+word.length) with a lower-case word. */
export function equalsLower(buf: Buffer, at: number, end: number, word: string): boolean {
  if (end - at !== word.length) return false;
  for (let k = 0; k < word.length; k++) if ((buf[at + k]! | 0x20) !== word.charCodeAt(k)) return false;
  return true;
}

/** Exact byte compare of buf[at, end) with an ASCII word. */
export function equalsAscii(buf: Buffer, at: number, end: number, word: string): boolean {
  if (end - at !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (buf[at + k] !== word.charCodeAt(k)) return false;
  return true;
}

/** Go `strconv.ParseInt(s, 10, 64)`: `[+-]?\d+` within int64; NaN when invalid. */
export function parseGoInt(buf: Buffer, start: number, end: number): number {
  if (start >= end) return NaN;
  let i = start;
  let neg = false;
  const c0 = buf[i]!;
  if (c0 === PLUS || c0 === MINUS) {
    neg = c0 === MINUS;
    if (++i === end) return NaN;
  }
  while (i < end - 1 && buf[i] === D0) i++;
  const sig = end - i;
  if (sig > 19) {
    // Too many digits for int64, unless something non-digit is in there (still invalid).
    return NaN;
  }
  let v = 0;
  for (let k = i; k < end; k++) {
    const c = buf[k]!;
    if (c < D0 || c > D9) return NaN;
    v = v * 10 + (c - D0);
  }
  // Past 2^53 the running sum may round twice; let Number() round the digits once.
  if (sig > 15) v = Number(buf.toString('latin1', i, end));
  if (sig === 19) {
    const limit = neg ? INT64_MIN_DIGITS : INT64_MAX_DIGITS;
    for (let k = 0; k < 19; k++) {
      const d = buf[i + k]!;
      const l = limit.charCodeAt(k);
      if (d < l) break;
      if (d > l) return NaN;
    }
  }
  return neg ? -v : v;
}

