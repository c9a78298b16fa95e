/**
 * Request bodies: decompression with a hard output cap, format detection, and splitting a body into
 * log records (logplex frames, text lines, NDJSON or JSON-array objects). No counters, no aggregator.
 */
import { promisify } from 'node:util';
import { gunzip, inflate, inflateRaw, type ZlibOptions } from 'node:zlib';
import { MSG_START, parseRfc3339, readFrames, scanSyslog, syslogOffsets } from './logplex.js';

const gunzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gunzip);
const inflateAsync = promisify<Buffer, ZlibOptions, Buffer>(inflate);
const inflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(inflateRaw);

/** Why a body could not be decoded; each maps to one status code (413, 415, 400). */
export type BodyErrorKind = 'too_large' | 'unsupported_encoding' | 'corrupt';

/** A body that cannot be used at all, as opposed to bad lines inside a good body. */
export class BodyError extends Error {
  constructor(
    /** What went wrong. */
    readonly kind: BodyErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BodyError';
  }
}

function isTooLarge(err: unknown): boolean {
  return err instanceof RangeError || (err as { code?: string } | null)?.code === 'ERR_BUFFER_TOO_LARGE';
}

async function inflateCapped(fn: (b: Buffer, o: ZlibOptions) => Promise<Buffer>, buf: Buffer, maxBytes: number, what: string): Promise<Buffer> {
  try {
    // zlib stops producing output at maxOutputLength, so a bomb costs at most maxBytes of memory.
    return await fn(buf, { maxOutputLength: maxBytes });
  } catch (err) {
    if (isTooLarge(err)) throw new BodyError('too_large', `${what} body inflates past ${maxBytes} bytes`, { cause: err });
    throw new BodyError('corrupt', `${what} body does not decode`, { cause: err });
  }
}

/**
 * Undoes `Content-Encoding` (`gzip`, `x-gzip`, `deflate`, `identity`, or a comma list applied in
 * order), never producing more than `maxBytes`. `deflate` is zlib-wrapped per RFC 9110, but raw deflate
 * is accepted too because some clients send it.
 */
export async function decodeBody(raw: Buffer, contentEncoding: string | undefined, maxBytes: number): Promise<Buffer> {
  if (contentEncoding === undefined) return raw;
  const codings = contentEncoding
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  let buf = raw;
  for (let i = codings.length - 1; i >= 0; i--) {
    const coding = codings[i]!;
    if (coding === 'gzip' || coding === 'x-gzip') {
      buf = await inflateCapped(gunzipAsync, buf, maxBytes, 'gzip');
    } else if (coding === 'deflate') {
      try {
        buf = await inflateCapped(inflateAsync, buf, maxBytes, 'deflate');
      } catch (err) {
        if (err instanceof BodyError && err.kind === 'too_large') throw err;
        buf = await inflateCapped(inflateRawAsync, buf, maxBytes, 'deflate');
      }
    } else {
      throw new BodyError('unsupported_encoding', `Content-Encoding ${coding.slice(0, 40)} is not supported`);
    }
  }
  return buf;
}

/** How a body is split into records. */
export type BodyFormat = 'logplex' | 'text' | 'ndjson' | 'json';

const NDJSON_TYPES = new Set(['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines', 'application/jsonlines', 'application/jsonstream']);

function firstNonSpace(body: Buffer): number | undefined {
  for (const b of body) if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return b;
  return undefined;
}

/** `<len> <PRI>` at the start: an octet-counted body whatever its Content-Type says. */
function looksOctetCounted(body: Buffer): boolean {
  return /^\s*[1-9]\d{0,6} <\d{1,3}>/.test(body.toString('latin1', 0, 32));
}

/**
 * Picks the format from Content-Type, sniffing where senders are known to mislabel (logreference §5.5):
 * `application/logplex-1` is logplex; NDJSON types are NDJSON; `application/json` is an array when it
 * starts with `[`, else NDJSON; `text/plain` is logplex when octet-counted, else lines; anything else
 * is sniffed: `[` array, `{` NDJSON, `<len> <` logplex, otherwise lines.
 */
export function detectFormat(contentType: string | undefined, body: Buffer): BodyFormat {
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (media === 'application/logplex-1') return 'logplex';
  if (NDJSON_TYPES.has(media)) return 'ndjson';
  const first = firstNonSpace(body);
  if (media === 'application/json') return first === 0x5b ? 'json' : 'ndjson';
  if (looksOctetCounted(body)) return 'logplex';
  if (media === 'text/plain') return 'text';
  if (first === 0x5b) return 'json';
  if (first === 0x7b) return 'ndjson';
  return 'text';
}

/** One log line, whatever the transport. */
export interface LogRecord {
  /** Syslog APP-NAME, when the line had a syslog header. */
  appName: string | undefined;
  /** Syslog PROCID, when the line had a syslog header. */
  procId: string | undefined;
  /** The message text. */
  msg: string;
  /** Epoch ms from the syslog header or the JSON `timestamp`; undefined when absent or unparseable. */
  timestampMs: number | undefined;
}

/** Why a record was rejected; each is counted in `metrics_distributor.bad`. */
export type BadRecordReason = 'bad_frame' | 'bad_syslog' | 'bad_json';

/** Receives the records of a body, in order. */
export interface RecordVisitor {
  /** A record that parsed. */
  record(r: LogRecord): void;
  /** A frame, line or object that did not; `sample` is its first bytes, for a rate-limited log. */
  bad(reason: BadRecordReason, sample: string): void;
  /** A line over the size limit, skipped unread. */
  tooLarge(bytes: number): void;
}

const SYSLOG_START = /^<\d{1,3}>/;

const offsets = syslogOffsets();

/**
 * The last timestamp parsed, as the bytes it was read from, and its value. A logplex body stamps its
 * lines within the same second or two, often with one identical string, so comparing the bytes in
 * place spares most RFC 3339 parses and every timestamp string.
 */
let lastStampBytes: Uint8Array = new Uint8Array(0);
let lastStampMs: number | undefined;

/**
 * The value of the timestamp `text[start, end)`, where `text` is `buf` decoded from `bufStart`. The
 * header before the timestamp is ASCII (scanSyslog checked it), so the field starts at byte
 * `bufStart + start`; it ends at the first space byte, as it ends at the first space character.
 */
function stampAt(text: string, start: number, end: number, buf: Buffer, bufStart: number): number | undefined {
  const b = bufStart + start;
  const last = lastStampBytes;
  const n = last.length;
  if (n > 0 && buf[b + n] === 0x20) {
    let i = 0;
    while (i < n && buf[b + i] === last[i]) i++;
    // No timestamp holds a space, so equal bytes up to a space are the whole field.
    if (i === n) return lastStampMs;
  }
  const stamp = text.slice(start, end);
  lastStampMs = parseRfc3339(stamp);
  // The field's bytes run to the first space byte; counting the string's UTF-8 length instead would be
  // wrong for bytes that do not decode.
  lastStampBytes = Uint8Array.from(buf.subarray(b, buf.indexOf(0x20, b)));
  return lastStampMs;
}

function syslogRecord(text: string, buf: Buffer, bufStart: number): LogRecord | undefined {
  const o = offsets;
  if (scanSyslog(text, o) < 0) return undefined;
  return { appName: text.slice(o[4], o[5]), procId: text.slice(o[6], o[7]), msg: text.slice(o[MSG_START]), timestampMs: stampAt(text, o[0]!, o[1]!, buf, bufStart) };
}

const SAMPLE_CHARS = 200;

/** Each LF-separated line of `buf[start, end)`, CR stripped, blank lines skipped. */
function forEachLine(buf: Buffer, start: number, end: number, fn: (s: number, e: number) => void): void {
  let pos = start;
  while (pos < end) {
    let nl = buf.indexOf(0x0a, pos);
    if (nl < 0 || nl > end) nl = end;
    let e = nl;
    if (e > pos && buf[e - 1] === 0x0d) e--;
    let s = pos;
    while (s < e && (buf[s] === 0x20 || buf[s] === 0x09)) s++;
    if (e > s) fn(s, e);
    pos = nl + 1;
  }
}

/** A text line: a bare RFC 5424 line when it starts with `<PRI>`, else a plain app line. */
function textLine(buf: Buffer, s: number, e: number, maxLineBytes: number, v: RecordVisitor, syslogOnly: boolean): void {
  if (e - s > maxLineBytes) return v.tooLarge(e - s);
  const text = buf.toString('utf8', s, e);
  if (SYSLOG_START.test(text)) {
    const r = syslogRecord(text, buf, s);
    if (r === undefined) return v.bad('bad_syslog', text.slice(0, SAMPLE_CHARS));
    return v.record(r);
  }
  if (syslogOnly) return v.bad('bad_frame', text.slice(0, SAMPLE_CHARS));
  v.record({ appName: undefined, procId: undefined, msg: text, timestampMs: undefined });
}

/** Epoch ms of a JSON `timestamp`: Unix ms (Vercel), Unix seconds when below 1e11, or an ISO string (Fly). */
function jsonTimestamp(ts: unknown): number | undefined {
  if (typeof ts === 'number' && Number.isFinite(ts) && ts > 0) return ts < 1e11 ? ts * 1000 : ts;
  if (typeof ts === 'string') {
    const ms = Date.parse(ts);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

/** A Vercel/Fly/NDJSON object: the log line is `message` (or `msg`); an object without one is still a record. */
function jsonRecord(obj: unknown, maxLineBytes: number, v: RecordVisitor, sample: () => string): void {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return v.bad('bad_json', sample());
  const o = obj as Record<string, unknown>;
  const message = typeof o['message'] === 'string' ? o['message'] : typeof o['msg'] === 'string' ? o['msg'] : '';
  if (Buffer.byteLength(message) > maxLineBytes) return v.tooLarge(Buffer.byteLength(message));
  v.record({ appName: undefined, procId: undefined, msg: message, timestampMs: jsonTimestamp(o['timestamp']) });
}

/**
 * The first characters of a bad JSON array element, for the log. JSON.stringify recurses, so a deeply
 * nested element (`[[[…]]]`, which JSON.parse accepts) would overflow the stack and fail the request.
 */
function jsonSample(item: unknown): string {
  try {
    return JSON.stringify(item).slice(0, SAMPLE_CHARS);
  } catch {
    return Array.isArray(item) ? '[…]' : typeof item;
  }
}

/**
 * Splits a decoded body into records. Never throws on content: every frame, line or object ends up in
 * exactly one of `record`, `bad` or `tooLarge`, and one bad piece never stops the rest.
 */
export function forEachRecord(body: Buffer, format: BodyFormat, maxLineBytes: number, v: RecordVisitor): void {
  switch (format) {
    case 'logplex':
      readFrames(body, {
        frame(start, end) {
          if (end - start > maxLineBytes) return v.tooLarge(end - start);
          const text = body.toString('utf8', start, end);
          const r = syslogRecord(text, body, start);
          if (r === undefined) return v.bad('bad_syslog', text.slice(0, SAMPLE_CHARS));
          v.record(r);
        },
        junk(start, end) {
          // Bytes without a frame header: bare syslog lines are still used, anything else is bad.
          forEachLine(body, start, end, (s, e) => textLine(body, s, e, maxLineBytes, v, true));
        },
      });
      return;
    case 'text':
      forEachLine(body, 0, body.length, (s, e) => textLine(body, s, e, maxLineBytes, v, false));
      return;
    case 'ndjson':
      forEachLine(body, 0, body.length, (s, e) => {
        const text = body.toString('utf8', s, e);
        let obj: unknown;
        try {
          obj = JSON.parse(text);
        } catch {
          return v.bad('bad_json', text.slice(0, SAMPLE_CHARS));
        }
        jsonRecord(obj, maxLineBytes, v, () => text.slice(0, SAMPLE_CHARS));
      });
      return;
    case 'json': {
      const text = body.toString('utf8');
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch {
        return v.bad('bad_json', text.slice(0, SAMPLE_CHARS));
      }
      const items = Array.isArray(data) ? (data as unknown[]) : [data];
      for (const item of items) jsonRecord(item, maxLineBytes, v, () => jsonSample(item));
      return;
    }
  }
}
