/**
 * What an OTLP/HTTP answer means (OTLP 1.x, "OTLP/HTTP Response"), as core's `SendOutcome`:
 *
 * | answer | outcome |
 * | --- | --- |
 * | 2xx | `ok`; a `partial_success` with rejected points is counted by the sink (`partial_success`) |
 * | 429, 502, 503, 504, timeout, connection error | `retryable`, `Retry-After` (seconds or HTTP date) honoured |
 * | 400 | `rejected` `bad_request` |
 * | 401, 403 | `rejected` `forbidden` |
 * | 413 | `too_large`: split in halves and re-sent |
 * | any other status | `rejected` `rejected`: the spec says not to retry it |
 */
import type { IncomingHttpHeaders } from 'node:http';
import { MdError, retryAfterMs, type SendOutcome } from '@metrics-distributor/core';

/** A `Retry-After` longer than this is cut to it: a misbehaving proxy must not park data for hours. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;
/** Characters of an error body or message kept for the log. */
export const LOGGED_CHARS = 500;

/** One POST's answer: a status, headers and the head of the body; or no answer at all. */
export type Answer =
  | { readonly status: number; readonly headers: IncomingHttpHeaders; readonly body: Buffer }
  | { readonly status: undefined; readonly error: unknown };

/** What a 2xx body said about points the receiver refused. */
export interface PartialSuccess {
  readonly rejected: number;
  readonly message: string;
}

/** Reads a varint at `pos` of `b`: [value, next position], or undefined past the end. */
function varint(b: Buffer, pos: number): [number, number] | undefined {
  let v = 0;
  let mul = 1;
  while (pos < b.length) {
    const byte = b[pos++]!;
    v += (byte & 0x7f) * mul;
    if (byte < 0x80) return [v, pos];
    mul *= 128;
  }
  return undefined;
}

/** Fields of a message: [field, wire, value or [start, end) of a length-delimited field]. Stops at anything unreadable. */
function* fields(b: Buffer): Generator<[number, number, number, number]> {
  let pos = 0;
  while (pos < b.length) {
    const key = varint(b, pos);
    if (key === undefined) return;
    const [k, p] = key;
    const wire = k & 7;
    const field = Math.floor(k / 8);
    if (wire === 0) {
      const v = varint(b, p);
      if (v === undefined) return;
      yield [field, wire, v[0], v[1]];
      pos = v[1];
    } else if (wire === 2) {
      const len = varint(b, p);
      if (len === undefined || len[1] + len[0] > b.length) return;
      yield [field, wire, len[1], len[1] + len[0]];
      pos = len[1] + len[0];
    } else if (wire === 1) pos = p + 8;
    else if (wire === 5) pos = p + 4;
    else return;
  }
}

/** `ExportMetricsServiceResponse.partial_success` from a protobuf body. */
function partialFromProtobuf(body: Buffer): PartialSuccess | undefined {
  for (const [f, wire, start, end] of fields(body)) {
    if (f !== 1 || wire !== 2) continue;
    let rejected = 0;
    let message = '';
    for (const [pf, pw, a, b] of fields(body.subarray(start, end))) {
      // int64 on the wire; a negative count is nonsense and read as none.
      if (pf === 1 && pw === 0) rejected = a < 2 ** 53 ? a : 0;
      if (pf === 2 && pw === 2) message = body.subarray(start + a, start + b).toString('utf8');
    }
    return { rejected, message };
  }
  return undefined;
}

/** The same from a JSON body (`partialSuccess.rejectedDataPoints` is an int64: a string, or a number from lax encoders). */
function partialFromJson(body: Buffer): PartialSuccess | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const ps = (doc as { partialSuccess?: { rejectedDataPoints?: unknown; errorMessage?: unknown } } | null)?.partialSuccess;
  if (ps === undefined || ps === null || typeof ps !== 'object') return undefined;
  const n = Number(ps.rejectedDataPoints ?? 0);
  return { rejected: Number.isSafeInteger(n) && n > 0 ? n : 0, message: typeof ps.errorMessage === 'string' ? ps.errorMessage : '' };
}

/** The partial success a 2xx answer carries, by its content type; undefined when there is none. */
export function partialSuccess(headers: IncomingHttpHeaders, body: Buffer): PartialSuccess | undefined {
  if (body.length === 0) return undefined;
  const type = String(headers['content-type'] ?? '');
  const ps = type.includes('json') ? partialFromJson(body) : partialFromProtobuf(body);
  return ps === undefined || (ps.rejected === 0 && ps.message === '') ? undefined : ps;
}

/** An error as one short line, for the log of a failed request. */
export function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return `${err.name}${typeof code === 'string' ? ` ${code}` : ''}: ${err.message}`;
}

/** The status the body of an error answer is logged with: the receiver's `Status.message` is usually readable text. */
function bodyText(body: Buffer): string {
  return body.toString('utf8').replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, LOGGED_CHARS);
}

/** The table above, as a function. */
export function classify(answer: Answer, url: string, nowMs = Date.now()): SendOutcome {
  if (answer.status === undefined) {
    const code = answer.error instanceof MdError ? answer.error.code : 'MD_ERR_SINK_EXPORT';
    return { kind: 'retryable', error: new MdError(code, 'OTLP request failed', { cause: answer.error }), fields: { error: describe(answer.error), url } };
  }
  const status = answer.status;
  if (status >= 200 && status < 300) return { kind: 'ok' };
  const fields = { status, url, body: bodyText(answer.body) };
  switch (status) {
    case 429:
    case 502:
    case 503:
    case 504:
      return { kind: 'retryable', error: new MdError('MD_ERR_SINK_EXPORT', `OTLP receiver answered ${status}`), retryAfterMs: retryAfterMs(answer.headers, MAX_RETRY_AFTER_MS, nowMs), fields };
    case 413:
      return { kind: 'too_large' };
    case 400:
      return { kind: 'rejected', reason: 'bad_request', log: { code: 'MD_ERR_SINK_REJECTED', level: 'error', fields, message: 'OTLP receiver refused a request as malformed (400); dropped.' } };
    case 401:
    case 403:
      return {
        kind: 'rejected',
        reason: 'forbidden',
        log: { code: 'MD_ERR_SINK_AUTH', level: 'error', fields, message: `OTLP receiver refused the credentials (${status}); requests are dropped until --otlp-header is fixed.` },
      };
    default:
      return {
        kind: 'rejected',
        reason: 'rejected',
        log: { code: 'MD_ERR_SINK_REJECTED', level: 'error', fields, message: `OTLP receiver answered ${status}, which the OTLP spec says not to retry; dropped.` },
      };
  }
}
