/**
 * Logplex framing (RFC 6587 octet counting) and the RFC 5424 header as Heroku writes it.
 * Pure functions over bytes and strings: no I/O, no counters, no aggregator.
 *
 * Real senders get octet counts wrong (logreference §1.6): the count includes an LF the body lacks,
 * excludes an LF the body has, or is simply off. The rules below parse every sample listed there.
 */

const SP = 0x20;
const LF = 0x0a;
const CR = 0x0d;
const LT = 0x3c;
const GT = 0x3e;
const D0 = 0x30;
const D9 = 0x39;

/** Longest MSG-LEN we read; 7 digits is already 10 MB, far above any sane frame. */
const MAX_LEN_DIGITS = 7;

/** Receives the pieces of a logplex body, in order. Offsets are `[start, end)` into the body. */
export interface FrameVisitor {
  /** One message, trailing `\n`/`\r` already stripped. */
  frame(start: number, end: number): void;
  /** Bytes that are not a frame (no `<len> <` header): the caller line-splits and retries them. */
  junk(start: number, end: number): void;
}

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= D0 && b <= D9;
}

/**
 * If `buf[pos…]` starts with `<len> <PRI>` (len without a leading zero, PRI 1–3 digits) returns the
 * message start (the `<`) and the declared length; otherwise undefined. Checking the PRI as well as the
 * `<` keeps a digit run inside a message from being taken for a frame header.
 */
export function frameHeaderAt(buf: Buffer, pos: number): { msgStart: number; count: number } | undefined {
  let i = pos;
  const len = buf.length;
  if (i >= len || buf[i] === D0) return undefined;
  let count = 0;
  while (i < len && isDigit(buf[i]) && i - pos < MAX_LEN_DIGITS) {
    count = count * 10 + (buf[i]! - D0);
    i++;
  }
  if (i === pos || buf[i] !== SP || buf[i + 1] !== LT) return undefined;
  let j = i + 2;
  const priStart = j;
  while (j < len && isDigit(buf[j]) && j - priStart < 3) j++;
  if (j === priStart || buf[j] !== GT) return undefined;
  return { msgStart: i + 1, count };
}

/** Skips the separators logplex and its imitators leave between frames: SP, CR and LF. */
function skipSeparators(buf: Buffer, pos: number): number {
  let i = pos;
  while (i < buf.length && (buf[i] === SP || buf[i] === LF || buf[i] === CR)) i++;
  return i;
}

/**
 * Finds LFs in one body. It remembers the last answer, so the many searches of a body that has few
 * or no LFs do not each scan to its end (which made splitting such a body quadratic).
 */
class LfFinder {
  /** The first LF at or after `from`, or -1 when there is none. */
  private lf = -1;
  private from = Number.MAX_SAFE_INTEGER;

  constructor(private readonly buf: Buffer) {}

  /** Index of the first LF at or after `from`, or -1. */
  at(from: number): number {
    if (from < this.from || (this.lf >= 0 && this.lf < from)) {
      this.lf = this.buf.indexOf(LF, from);
      this.from = from;
    }
    return this.lf;
  }
}

/**
 * The first frame boundary at or after `from`: the index just past an LF that is followed by a frame
 * header. Only boundaries strictly before `limit` count. Undefined when there is none.
 */
function nextBoundary(buf: Buffer, lfs: LfFinder, from: number, limit: number): number | undefined {
  let i = lfs.at(from);
  while (i >= 0 && i + 1 < limit) {
    if (frameHeaderAt(buf, i + 1) !== undefined) return i + 1;
    i = lfs.at(i + 1);
  }
  return undefined;
}

/**
 * Splits a logplex body into frames (logreference §1.6 rules 1–4):
 * 1. read `<len> ` and take `len` bytes, clamped to the end of the body (a short final frame);
 * 2. a count that runs past an `LF<len> <PRI>` boundary was too long: the frame ends at that LF;
 * 3. a count that stops mid-line, short of the next frame header, was too short (it counted characters,
 *    or the sender forgot bytes): the frame runs on to the next boundary or the end;
 * 4. SP, CR and LF between frames are skipped; anything else up to the next boundary is junk.
 * One trailing LF and then one CR are stripped from each message.
 */
export function readFrames(buf: Buffer, visitor: FrameVisitor): void {
  const len = buf.length;
  const lfs = new LfFinder(buf);
  let pos = skipSeparators(buf, 0);
  while (pos < len) {
    const header = frameHeaderAt(buf, pos);
    if (header === undefined) {
      const next = nextBoundary(buf, lfs, pos, len) ?? len;
      visitor.junk(pos, next);
      pos = skipSeparators(buf, next);
      continue;
    }
    const start = header.msgStart;
    let end = Math.min(start + header.count, len);
    const inside = nextBoundary(buf, lfs, start, end);
    if (inside !== undefined) {
      end = inside;
    } else if (end < len && buf[end - 1] !== LF && buf[end] !== LF && buf[end] !== CR) {
      // The count stops mid-line. Unless a frame header follows right there, it was too short.
      if (frameHeaderAt(buf, skipSeparators(buf, end)) === undefined) end = nextBoundary(buf, lfs, end, len) ?? len;
    }
    let msgEnd = end;
    if (msgEnd > start && buf[msgEnd - 1] === LF) msgEnd--;
    if (msgEnd > start && buf[msgEnd - 1] === CR) msgEnd--;
    visitor.frame(start, msgEnd);
    pos = skipSeparators(buf, end);
  }
}

/** An RFC 5424 message as logplex sends it: header fields as strings, `-` kept as `-`. */
export interface SyslogMessage {
  /** facility × 8 + severity; Heroku's values carry no alerting meaning (logreference §1.3). */
  pri: number;
  /** RFC 3339 timestamp string, or `-`. */
  timestamp: string;
  /** `host` on HTTPS drains; the drain token on old syslog-style bodies. */
  hostname: string;
  /** `app` for the application and add-ons, `heroku` for the platform. */
  appName: string;
  /** `web.1`, `router`, `heroku-postgres`, `logplex`… */
  procId: string;
  /** Always `-` from logplex. */
  msgId: string;
  /** The free text: everything after MSGID, a leading nil STRUCTURED-DATA (`- `) removed. */
  msg: string;
}

/**
 * Where the header fields of a syslog line start and end, filled by {@link scanSyslog}: `[start, end)`
 * pairs for TIMESTAMP, HOSTNAME, APP-NAME, PROCID and MSGID, then the MSG start. Offsets instead of
 * strings let the hot path slice only the fields it uses and compare the timestamp in place.
 */
export type SyslogOffsets = Int32Array;

/** A buffer for {@link scanSyslog}: 5 field pairs and the MSG start. */
export function syslogOffsets(): SyslogOffsets {
  return new Int32Array(11);
}

/** Index of the MSG start in {@link SyslogOffsets}. */
export const MSG_START = 10;

function isDigitCode(c: number): boolean {
  return c >= D0 && c <= D9;
}

/**
 * Scans `<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG` into `out` and returns PRI, or
 * -1 when the header is broken. Each field is one or more non-space characters followed by one space;
 * MSG may be missing after MSGID but not before. A leading nil STRUCTURED-DATA (`- `, or a MSG of just
 * `-`) is skipped, so MSG starts after it.
 */
export function scanSyslog(line: string, out: SyslogOffsets): number {
  const n = line.length;
  if (n < 5 || line.charCodeAt(0) !== LT) return -1;
  let i = 1;
  let pri = 0;
  while (i < n && i < 4 && isDigitCode(line.charCodeAt(i))) pri = pri * 10 + line.charCodeAt(i++) - D0;
  if (i === 1 || line.charCodeAt(i) !== GT || pri > 191) return -1;
  const versionStart = ++i;
  while (i < n && i - versionStart < 2 && isDigitCode(line.charCodeAt(i))) i++;
  if (i === versionStart || line.charCodeAt(i) !== SP) return -1;
  i++;
  for (let f = 0; f < 5; f++) {
    const sp = line.indexOf(' ', i);
    const end = sp < 0 ? n : sp;
    if (end === i) return -1;
    out[2 * f] = i;
    out[2 * f + 1] = end;
    // A message may stop right after MSGID (no MSG), but not before.
    if (sp < 0 && f < 4) return -1;
    i = sp < 0 ? n : sp + 1;
  }
  if (i === n - 1 && line.charCodeAt(i) === 0x2d) i = n;
  else if (line.charCodeAt(i) === 0x2d && line.charCodeAt(i + 1) === SP) i += 2;
  out[MSG_START] = i;
  return pri;
}

const scratch = syslogOffsets();

/**
 * Parses `<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`. Logplex sends no
 * STRUCTURED-DATA; other senders put a `-` there, which is dropped. A `[`-opening MSG is left alone
 * because Heroku Postgres log lines start with `[COLOR]`. Returns undefined when the header is broken.
 */
export function parseSyslog(line: string): SyslogMessage | undefined {
  const pri = scanSyslog(line, scratch);
  if (pri < 0) return undefined;
  const o = scratch;
  return {
    pri,
    timestamp: line.slice(o[0], o[1]),
    hostname: line.slice(o[2], o[3]),
    appName: line.slice(o[4], o[5]),
    procId: line.slice(o[6], o[7]),
    msgId: line.slice(o[8], o[9]),
    msg: line.slice(o[MSG_START]),
  };
}

/**
 * Epoch ms of an RFC 3339 timestamp (`2012-11-30T06:45:29+00:00`, fractions up to ns, `Z` or `±hh:mm`),
 * or undefined for `-` and anything malformed such as logplex-input's `…25Z+00:00`: the caller then uses
 * the receive time.
 */
export function parseRfc3339(ts: string): number | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (m === null) return undefined;
  const ms = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
  const base = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms);
  const zone = m[8]!;
  if (zone === 'Z') return base;
  const sign = zone[0] === '-' ? -1 : 1;
  const offsetMin = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6));
  return base - sign * offsetMin * 60_000;
}
