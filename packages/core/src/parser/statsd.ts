/**
 * DogStatsD / StatsD line parser with Datadog-agent parity (see datadog.md §1).
 *
 * The metric path works on bytes and fills one reused {@link SampleView}, so a packet of metric lines
 * allocates no string or object per line. Events and service checks are rare, so they build strings.
 * Rejected lines go to `handler.bad` and parsing goes on with the next line; no input makes it throw.
 */
import { FNV_OFFSET_BASIS } from '../hash.js';
import type { ErrorCode } from '../errors.js';
import type { MetricType } from '../model.js';
import type { SampleView, StatsdHandler, StatsdParserOptions } from './types.js';
import { equalsLower, indexOfByte, parseGoInt } from './bytes.js';
import { parseEvent, parseServiceCheck } from './events.js';

// The metric path's own byte constants, not imported from bytes.ts: V8 folds a module's own `const`
// into the code, but loads an imported binding from its module cell at every use, and these are read
// for every byte of every line (measured: imported, the ingest bench lost about 6 %).
const NL = 0x0a;
const CR = 0x0d;
const PIPE = 0x7c;
const COLON = 0x3a;
const HASH = 0x23;
const AT = 0x40;
const PLUS = 0x2b;
const MINUS = 0x2d;
const DOT = 0x2e;
const D0 = 0x30;
const D9 = 0x39;
const UNDERSCORE = 0x5f;

/** Powers of ten that are exact doubles: the limit of the correctly-rounded fast path (Clinger). */
const POW10 = [
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
  1e20, 1e21, 1e22,
];

/** What the last {@link scanFloat} saw: 0 invalid, 1 a decimal literal, 2 an `inf`/`infinity`/`nan` literal. */
let scanKind = 0;

/**
 * Strict float scan shared by {@link parseNumber} and the Go-parity wrapper; sets {@link scanKind}.
 * Decimal literals with at most 15 mantissa digits and a net power of ten within ±22 are computed
 * as one exact-operand multiply/divide, which IEEE rounds correctly, so they equal `Number(str)`;
 * anything else goes through `Number()` only after the byte-level syntax check.
 */
function scanFloat(buf: Buffer, start: number, end: number): number {
  scanKind = 0;
  if (start >= end) return NaN;
  let i = start;
  let c = buf[i]!;
  let neg = false;
  let signed = false;
  if (c === PLUS || c === MINUS) {
    neg = c === MINUS;
    signed = true;
    if (++i === end) return NaN;
    c = buf[i]!;
  }
  if ((c < D0 || c > D9) && c !== DOT) {
    // Go's ParseFloat accepts inf/infinity with a sign, but nan only without one.
    if (equalsLower(buf, i, end, 'inf') || equalsLower(buf, i, end, 'infinity')) {
      scanKind = 2;
      return neg ? -Infinity : Infinity;
    }
    if (!signed && equalsLower(buf, i, end, 'nan')) {
      scanKind = 2;
      return NaN;
    }
    return NaN;
  }
  let mant = 0;
  let digits = 0;
  let fracDigits = 0;
  while (i < end) {
    c = buf[i]!;
    if (c < D0 || c > D9) break;
    mant = mant * 10 + (c - D0);
    digits++;
    i++;
  }
  if (i < end && buf[i] === DOT) {
    i++;
    while (i < end) {
      c = buf[i]!;
      if (c < D0 || c > D9) break;
      mant = mant * 10 + (c - D0);
      digits++;
      fracDigits++;
      i++;
    }
  }
  if (digits === 0) return NaN;
  let exp = 0;
  if (i < end && (buf[i]! | 0x20) === 0x65) {
    i++;
    let expNeg = false;
    if (i < end && (buf[i] === PLUS || buf[i] === MINUS)) {
      expNeg = buf[i] === MINUS;
      i++;
    }
    const expStart = i;
    while (i < end) {
      c = buf[i]!;
      if (c < D0 || c > D9) break;
      // Capped: beyond this the fallback below yields 0 or Infinity anyway.
      if (exp < 100000) exp = exp * 10 + (c - D0);
      i++;
    }
    if (i === expStart) return NaN;
    if (expNeg) exp = -exp;
  }
  if (i !== end) return NaN;
  scanKind = 1;
  if (digits <= 15) {
    const p = exp - fracDigits;
    let v: number;
    if (p === 0) v = mant;
    else if (p > 0 && p <= 22) v = mant * POW10[p]!;
    else if (p < 0 && p >= -22) v = mant / POW10[-p]!;
    else return Number(buf.toString('latin1', start, end));
    return neg ? -v : v;
  }
  return Number(buf.toString('latin1', start, end));
}

/**
 * Go `strconv.ParseFloat(s, 64)` parity minus hex floats: like {@link scanFloat}, but a decimal literal that
 * overflows to ±Infinity is invalid (Go returns ErrRange and the agent rejects the line). Check
 * {@link scanKind} !== 0 for validity since NaN is a valid result.
 */
function parseGoFloat(buf: Buffer, start: number, end: number): number {
  const v = scanFloat(buf, start, end);
  if (scanKind === 1 && (v === Infinity || v === -Infinity)) scanKind = 0;
  return v;
}

/**
 * Strict float parse of buf[start,end) by bytes, `^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$` plus Go's
 * `inf`/`infinity` (any case, optional sign) and `nan` (any case, no sign); returns NaN when invalid.
 */
export function parseNumber(buf: Buffer, start: number, end: number): number {
  return scanFloat(buf, start, end);
}

/** Decodes a SampleView's name as a string (utf8). */
export function viewName(v: SampleView): string {
  return v.buf.toString('utf8', v.nameStart, v.nameEnd);
}

/** Splits a SampleView's raw tags into strings ([] when none). */
export function viewTags(v: SampleView): string[] {
  if (v.tagsStart < 0) return [];
  return v.buf.toString('utf8', v.tagsStart, v.tagsEnd).split(',');
}

/** Stateful-per-instance DogStatsD parser; one instance per receiving loop, not re-entrant. */
export class StatsdParser {
  private readonly nameHashBasis: number;
  /** Results of {@link scanNameValue}: the name's `:` and the name's hash. */
  private scanColon = 0;
  private scanHash = 0;
  private readonly gaugeDeltas: boolean;
  private readonly view: SampleView;

  constructor(opts?: StatsdParserOptions) {
    this.gaugeDeltas = opts?.gaugeDeltas === true;
    this.nameHashBasis = opts?.nameHashBasis ?? FNV_OFFSET_BASIS;
    this.view = {
      buf: Buffer.alloc(0),
      nameStart: 0,
      nameEnd: 0,
      nameHash: 0,
      type: 'g',
      values: new Float64Array(16),
      valueCount: 0,
      setStart: -1,
      setEnd: -1,
      sampleRate: 1,
      tagsStart: -1,
      tagsEnd: -1,
      timestampS: 0,
      gaugeDelta: 0,
      containerStart: -1,
      containerEnd: -1,
      cardinalityStart: -1,
      cardinalityEnd: -1,
    };
  }

  /** Parses every line of buf[start,end) (split on \n, one trailing \r dropped per line, empty lines skipped). Returns the number of non-empty lines seen (good + bad). */
  parse(buf: Buffer, handler: StatsdHandler, start = 0, end: number = buf.length): number {
    if (start < 0) start = 0;
    if (end > buf.length) end = buf.length;
    let lines = 0;
    let pos = start;
    while (pos < end) {
      // Fast path for the usual metric line: the name and value scans also watch for the newline, so
      // the line's end is found by scanning only what follows the first `|`, not by a native indexOf
      // call over the whole line first. Anything else (events, checks, malformed lines) takes the
      // general path below from the same position.
      const b0 = buf[pos];
      if (b0 !== UNDERSCORE && b0 !== NL && b0 !== CR) {
        const pipe = this.scanNameValue(buf, pos, end);
        if (pipe >= 0) {
          // One native search beats a JS loop over the type, fields and tags: on this V8 every
          // byte read in a loop costs some twenty instructions (map and bounds checks each time).
          let nl = buf.indexOf(NL, pipe + 1);
          if (nl < 0 || nl > end) nl = end;
          const lineEnd = buf[nl - 1] === CR ? nl - 1 : nl;
          lines++;
          const code = this.parseFrom(buf, pos, this.scanColon, this.scanHash, pipe, lineEnd);
          if (code === null) handler.sample(this.view);
          else handler.bad(code, buf, pos, lineEnd);
          pos = nl + 1;
          continue;
        }
      }
      let nl = buf.indexOf(NL, pos);
      if (nl < 0 || nl > end) nl = end;
      let lineEnd = nl;
      if (lineEnd > pos && buf[lineEnd - 1] === CR) lineEnd--;
      if (lineEnd > pos) {
        lines++;
        this.dispatch(buf, handler, pos, lineEnd);
      }
      pos = nl + 1;
    }
    return lines;
  }

  /** Parses exactly one line buf[start,end) (no \n inside; a trailing \r is dropped). Returns false if it was empty. For TCP/HTTP front-ends. */
  parseLine(buf: Buffer, handler: StatsdHandler, start: number, end: number): boolean {
    if (start < 0) start = 0;
    if (end > buf.length) end = buf.length;
    if (end > start && buf[end - 1] === CR) end--;
    if (end <= start) return false;
    this.dispatch(buf, handler, start, end);
    return true;
  }

  private dispatch(buf: Buffer, handler: StatsdHandler, s: number, e: number): void {
    // Classification as in the agent's findMessageType: garbage falls through to the metric path.
    if (e - s >= 3 && buf[s] === UNDERSCORE) {
      const b1 = buf[s + 1];
      const b2 = buf[s + 2];
      if (b1 === 0x65 && b2 === 0x7b) {
        const ev = parseEvent(buf, s, e);
        if (ev === null) handler.bad('MD_ERR_PARSE_EVENT', buf, s, e);
        else handler.event(ev);
        return;
      }
      if (b1 === 0x73 && b2 === 0x63) {
        const sc = parseServiceCheck(buf, s, e);
        if (sc === null) handler.bad('MD_ERR_PARSE_SERVICE_CHECK', buf, s, e);
        else handler.serviceCheck(sc);
        return;
      }
    }
    const code = this.parseMetric(buf, s, e);
    if (code === null) handler.sample(this.view);
    else handler.bad(code, buf, s, e);
  }

  /**
   * For the fast path of {@link parse}: finds the name's `:` (hashing the name) and then the first `|`,
   * stopping at a newline or `end`. Returns the `|` (with the colon and hash in `scanColon`/`scanHash`)
   * or -1 when the line is not a well-formed start of a metric, which the general path then reports.
   */
  private scanNameValue(buf: Buffer, s: number, end: number): number {
    let colon = s;
    let h = this.nameHashBasis;
    for (;;) {
      if (colon === end) return -1;
      const b = buf[colon]!;
      if (b === COLON) break;
      if (b === PIPE || b === NL) return -1;
      // hash.ts's fnv1aStep, written out: an imported function per name byte cost about 2 % of the bench.
      h = Math.imul(h ^ b, 16777619);
      colon++;
    }
    if (colon === s) return -1;
    let pipe = colon + 1;
    for (;;) {
      if (pipe === end) return -1;
      const b = buf[pipe];
      if (b === PIPE) break;
      if (b === NL) return -1;
      pipe++;
    }
    this.scanColon = colon;
    this.scanHash = h;
    return pipe;
  }

  /** Fills the view from a metric line (no newline inside); returns null on success, else the rejection code. */
  private parseMetric(buf: Buffer, s: number, e: number): ErrorCode | null {
    // The first `:` before the first `|` (the agent's split order); anything else is a format error.
    const pipe = this.scanNameValue(buf, s, e);
    return pipe < 0 ? 'MD_ERR_PARSE_FORMAT' : this.parseFrom(buf, s, this.scanColon, this.scanHash, pipe, e);
  }

  /** The rest of {@link parseMetric} once the name's `:` (and the name's hash) and the first `|` are known. */
  private parseFrom(buf: Buffer, s: number, colon: number, h: number, pipe: number, e: number): ErrorCode | null {
    if (colon + 1 === pipe) return 'MD_ERR_PARSE_VALUE';

    const typeStart = pipe + 1;
    let typeEnd = indexOfByte(buf, PIPE, typeStart, e);
    const hasFields = typeEnd >= 0;
    if (!hasFields) typeEnd = e;
    let type: MetricType;
    const tlen = typeEnd - typeStart;
    const t0 = buf[typeStart];
    if (tlen === 1) {
      if (t0 === 0x67) type = 'g';
      else if (t0 === 0x63) type = 'c';
      else if (t0 === 0x68) type = 'h';
      else if (t0 === 0x64) type = 'd';
      else if (t0 === 0x73) type = 's';
      else return 'MD_ERR_PARSE_TYPE';
    } else if (tlen === 2 && t0 === 0x6d && buf[typeStart + 1] === 0x73) {
      type = 'ms';
    } else {
      return 'MD_ERR_PARSE_TYPE';
    }

    const v = this.view;
    v.buf = buf;
    v.nameStart = s;
    v.nameEnd = colon;
    v.nameHash = h;
    v.type = type;
    v.valueCount = 0;
    v.setStart = -1;
    v.setEnd = -1;
    v.sampleRate = 1;
    v.tagsStart = -1;
    v.tagsEnd = -1;
    v.timestampS = 0;
    v.gaugeDelta = 0;
    v.containerStart = -1;
    v.containerEnd = -1;
    v.cardinalityStart = -1;
    v.cardinalityEnd = -1;

    const valStart = colon + 1;
    if (type === 's') {
      // Set members are opaque: `:` inside is part of the member, never the multi-value form.
      v.setStart = valStart;
      v.setEnd = pipe;
    } else {
      const x = parseGoFloat(buf, valStart, pipe);
      // A `:` fails the strict scan, so the common single value needs no separate search for one.
      if (scanKind === 0) {
        const code = this.parseMultiValue(buf, valStart, pipe);
        if (code !== null) return code;
      } else {
        v.values[0] = x;
        v.valueCount = 1;
        if (this.gaugeDeltas && type === 'g') {
          const sign = buf[valStart];
          if (sign === PLUS) v.gaugeDelta = 1;
          else if (sign === MINUS) v.gaugeDelta = -1;
        }
      }
    }

    if (!hasFields) return null;
    let p = typeEnd + 1;
    for (;;) {
      let q = indexOfByte(buf, PIPE, p, e);
      if (q < 0) q = e;
      if (q > p) {
        const c = buf[p];
        if (c === HASH) {
          // Last `#` wins; a bare `#` means no tags.
          if (q > p + 1) {
            v.tagsStart = p + 1;
            v.tagsEnd = q;
          } else {
            v.tagsStart = -1;
            v.tagsEnd = -1;
          }
        } else if (c === AT) {
          const r = parseGoFloat(buf, p + 1, q);
          if (scanKind === 0) return 'MD_ERR_PARSE_RATE';
          // The agent does not range-check the rate (`@0` would make counters Inf); we report anything
          // outside (0,1], NaN and ±Inf included, as 1 so every consumer sees a usable rate.
          v.sampleRate = r > 0 && r <= 1 ? r : 1;
        } else if (c === 0x54) {
          // Any field starting with `T` is a timestamp in the agent, so `Tfoo` rejects the line.
          const ts = parseGoInt(buf, p + 1, q);
          if (!(ts >= 1)) return 'MD_ERR_PARSE_TIMESTAMP';
          v.timestampS = ts;
        } else if (c === 0x63) {
          // Bounded by q: the byte after the field may belong to the next line or lie outside [start,end).
          if (q - p >= 2 && buf[p + 1] === COLON) {
            v.containerStart = p + 2;
            v.containerEnd = q;
          } else if (q - p >= 5 && buf[p + 1] === 0x61 && buf[p + 2] === 0x72 && buf[p + 3] === 0x64 && buf[p + 4] === COLON) {
            v.cardinalityStart = p + 5;
            v.cardinalityEnd = q;
          }
        }
        // `e:` external data and unknown fields are ignored, as in the agent.
      }
      if (q >= e) break;
      p = q + 1;
    }
    return null;
  }

  /** The v1.1 multi-value form (`x:1:2:3|d`): empty items are skipped (`21::22`), any bad item rejects the line. */
  private parseMultiValue(buf: Buffer, valStart: number, pipe: number): ErrorCode | null {
    if (indexOfByte(buf, COLON, valStart, pipe) < 0) return 'MD_ERR_PARSE_VALUE';
    const v = this.view;
    let p = valStart;
    let n = 0;
    while (p < pipe) {
      let q = indexOfByte(buf, COLON, p, pipe);
      if (q < 0) q = pipe;
      if (q > p) {
        const x = parseGoFloat(buf, p, q);
        if (scanKind === 0) return 'MD_ERR_PARSE_VALUE';
        if (n === v.values.length) {
          const grown = new Float64Array(n * 2);
          grown.set(v.values);
          v.values = grown;
        }
        v.values[n++] = x;
      }
      p = q + 1;
    }
    if (n === 0) return 'MD_ERR_PARSE_VALUE';
    v.valueCount = n;
    return null;
  }
}
