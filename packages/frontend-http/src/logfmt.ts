/**
 * logfmt tokenising and l2met values (`40.9MB`), as pure scanners with no metric knowledge: what a
 * pair means is in `heroku-metrics.ts`. Values are stricter than l2met's scanner (which reads `1,000`
 * as 1) and also broader: signs and exponents parse, which l2met rejects or misreads.
 */

/** One logfmt pair; `value` is undefined for a bare key (`count#signups`). */
export interface Pair {
  key: string;
  value: string | undefined;
}

const SP = 0x20;
const TAB = 0x09;
const EQ = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Walks the logfmt pairs of a line by offsets, without building a string or an object per pair, so
 * a caller can look only at the keys it wants. {@link logfmt} is built on it, so both read a line alike.
 * Reusable: {@link LogfmtCursor.reset} starts a new line.
 */
export class LogfmtCursor {
  /** Key is `line[keyStart, keyEnd)`; never empty. */
  keyStart = 0;
  /** End of the key. */
  keyEnd = 0;
  /** Raw value is `line[valueStart, valueEnd)` (inside the quotes when quoted); -1 for a bare key. */
  valueStart = -1;
  /** End of the raw value. */
  valueEnd = -1;
  /** The value was quoted and holds a backslash, so {@link value} must unescape it. */
  escaped = false;
  /** The line being walked. */
  line = '';
  private pos = 0;
  /** Whether the current key is the one passed to {@link next} as expected. */
  matched = false;
  /** Whether the line holds a tab; without one, values end at the next space, found by `indexOf`. */
  private tabs = false;
  /** Index of the next backslash at or after `pos` (-1: none left); quoted values without one need no unescaping. */
  private backslash = -1;

  /** Starts walking `line`. */
  reset(line: string): this {
    this.line = line;
    this.pos = 0;
    this.tabs = line.includes('\t');
    this.backslash = line.indexOf('\\');
    return this;
  }

  /**
   * Moves to the next pair with a non-empty key (`k=v`, `k="quoted \" value"`, bare `k`); false at the
   * end. An unclosed quote runs to the end of the line, as in kr/logfmt's lenient reading.
   *
   * `expected` is a key the caller expects here (a non-empty key seen before): when the line has it,
   * its characters are compared once instead of scanned, and {@link matched} tells the caller so.
   */
  next(expected?: string): boolean {
    const line = this.line;
    const n = line.length;
    let i = this.pos;
    for (;;) {
      let c = line.charCodeAt(i);
      while (i < n && (c === SP || c === TAB)) c = line.charCodeAt(++i);
      if (i >= n) {
        this.pos = i;
        return false;
      }
      const keyStart = i;
      let matched = false;
      if (expected !== undefined && line.startsWith(expected, i)) {
        // A key ends at the first `=`, space or tab, and `expected` holds none: it is this key when one
        // of those (or the end) follows.
        const after = line.charCodeAt(i + expected.length);
        if (after === EQ || after === SP || after === TAB || i + expected.length === n) {
          i += expected.length;
          c = after;
          matched = true;
        }
      }
      // Most key characters are letters or `_`, above `=`: one comparison for those.
      if (!matched) while (i < n && (c > EQ || (c !== EQ && c !== SP && c !== TAB))) c = line.charCodeAt(++i);
      const keyEnd = i;
      this.matched = matched;
      let valueStart = -1;
      let valueEnd = -1;
      let escaped = false;
      if (c === EQ) {
        i++;
        if (line.charCodeAt(i) === QUOTE) {
          valueStart = ++i;
          let q = line.indexOf('"', i);
          if (q < 0) q = n;
          if (this.backslash >= 0 && this.backslash < i) this.backslash = line.indexOf('\\', i);
          if (this.backslash < 0 || this.backslash > q) {
            // No backslash before the closing quote: it is the first quote.
            i = q;
          } else {
            while (i < n) {
              c = line.charCodeAt(i);
              if (c === QUOTE) break;
              if (c === BACKSLASH && i + 1 < n) {
                escaped = true;
                i += 2;
                continue;
              }
              i++;
            }
          }
          valueEnd = i;
          if (i < n) i++; // closing quote
        } else {
          valueStart = i;
          if (this.tabs) {
            c = line.charCodeAt(i);
            while (i < n && c !== SP && c !== TAB) c = line.charCodeAt(++i);
          } else {
            i = line.indexOf(' ', i);
            if (i < 0) i = n;
          }
          valueEnd = i;
        }
      }
      if (keyEnd > keyStart) {
        this.pos = i;
        this.keyStart = keyStart;
        this.keyEnd = keyEnd;
        this.valueStart = valueStart;
        this.valueEnd = valueEnd;
        this.escaped = escaped;
        return true;
      }
    }
  }

  /** True when the current key is exactly `k`. */
  keyIs(k: string): boolean {
    return this.keyEnd - this.keyStart === k.length && this.line.startsWith(k, this.keyStart);
  }

  /** The current key. */
  key(): string {
    return this.line.slice(this.keyStart, this.keyEnd);
  }

  /** The current value, unescaped; undefined for a bare key. */
  value(): string | undefined {
    if (this.valueStart < 0) return undefined;
    return this.escaped ? unescapeValue(this.line, this.valueStart, this.valueEnd) : this.line.slice(this.valueStart, this.valueEnd);
  }
}

/** A quoted logfmt value `line[start, end)` with its escapes undone (see {@link LogfmtCursor.next}). */
export function unescapeValue(line: string, start: number, end: number): string {
  let v = '';
  let chunk = start;
  let i = start;
  while (i < end) {
    // A backslash takes the next character as it is; only a final one (unclosed quote) stays.
    if (line.charCodeAt(i) === BACKSLASH && i + 1 < end) {
      v += line.slice(chunk, i);
      chunk = i + 1;
      i += 2;
      continue;
    }
    i++;
  }
  return v + line.slice(chunk, end);
}

const cursor = new LogfmtCursor();

/**
 * Splits a logfmt line into pairs: `k=v`, `k="quoted \" value"`, bare `k`. Never throws: an unclosed
 * quote runs to the end of the line, as in kr/logfmt's lenient reading.
 */
export function logfmt(line: string): Pair[] {
  const out: Pair[] = [];
  const c = cursor.reset(line);
  while (c.next()) out.push({ key: c.key(), value: c.value() });
  return out;
}

/** A number and the unit written right after it (`40.9MB` → 40.9, `MB`). */
export interface UnitValue {
  value: number;
  /** Letters (or `%`) after the number; undefined when none. Never converted. */
  unit: string | undefined;
}

/** Longest unit kept; longer letter runs are not units but garbage. */
const MAX_UNIT_LENGTH = 24;
/** Digit runs up to this long are summed exactly in a double; longer ones go through Number(). */
const MAX_FAST_DIGITS = 15;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isUnitChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x25;
}

/** Results of {@link scanUnitValue}, overwritten by every call. */
export const scanned = {
  /** The number. */
  value: 0,
  /** Where the unit starts; equals the end when there is none. */
  unitStart: 0,
};

/**
 * Parses `s[start, end)` as an l2met value (see {@link parseUnitValue}) into {@link scanned} without
 * allocating; false when it is not one. The grammar is
 * `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)? [A-Za-z%]*`, the unit at most 24 long.
 */
export function scanUnitValue(s: string, start: number, end: number): boolean {
  let i = start;
  let c = s.charCodeAt(i);
  let plain = true;
  if (c === 0x2b || c === 0x2d) {
    plain = false;
    c = s.charCodeAt(++i);
  }
  const intStart = i;
  let acc = 0;
  while (i < end && isDigit(c)) {
    acc = acc * 10 + (c - 0x30);
    c = s.charCodeAt(++i);
  }
  let digits = i - intStart;
  if (i < end && c === 0x2e) {
    plain = false;
    c = s.charCodeAt(++i);
    const fracStart = i;
    while (i < end && isDigit(c)) c = s.charCodeAt(++i);
    digits += i - fracStart;
  }
  if (digits === 0) return false;
  if (i < end && (c === 0x65 || c === 0x45)) {
    // An exponent needs digits; without them the `e` is the start of the unit.
    let j = i + 1;
    let d = s.charCodeAt(j);
    if (j < end && (d === 0x2b || d === 0x2d)) d = s.charCodeAt(++j);
    const expStart = j;
    while (j < end && isDigit(d)) d = s.charCodeAt(++j);
    if (j > expStart) {
      plain = false;
      i = j;
    }
  }
  const numEnd = i;
  while (i < end && isUnitChar(s.charCodeAt(i))) i++;
  if (i !== end || end - numEnd > MAX_UNIT_LENGTH) return false;
  const value = plain && numEnd - intStart <= MAX_FAST_DIGITS ? acc : Number(s.slice(start, numEnd));
  if (!Number.isFinite(value)) return false;
  scanned.value = value;
  scanned.unitStart = numEnd;
  return true;
}

/**
 * Parses an l2met value: optional sign, decimals, exponent, then an optional unit of letters or `%`.
 * Anything else (`1,000`, `5ms!`, `NaN`, a literal `\n`, an overflow to Infinity) is undefined.
 */
export function parseUnitValue(raw: string): UnitValue | undefined {
  if (!scanUnitValue(raw, 0, raw.length)) return undefined;
  return { value: scanned.value, unit: scanned.unitStart < raw.length ? raw.slice(scanned.unitStart) : undefined };
}
