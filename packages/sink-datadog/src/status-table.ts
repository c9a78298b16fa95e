/**
 * What each Datadog answer means: the README's error table, in one place. The sink's transport
 * classifies every response here into core's `SendOutcome`, and core's `DeliveryPolicy` acts on it:
 *
 * | answer | outcome | what happens |
 * | --- | --- | --- |
 * | 2xx | `ok` | delivered |
 * | 400 | `rejected` `bad_request` | dropped, counted, the response body logged (truncated) |
 * | 403 | `rejected` `forbidden` | dropped, counted, one loud "invalid API key" line a minute |
 * | 413 | `too_large` | split in two at an item boundary (`payload.ts`, no re-encoding) and each half sent again, recursively; a payload of one item still refused is dropped (`payload_too_large`) and logged naming the item |
 * | 408, 429, 5xx, any other status, timeout, connection error | `retryable` | kept in the retry buffer, retried with backoff; `Retry-After` / `X-RateLimit-Reset` honoured |
 */
import type { IncomingHttpHeaders } from 'node:http';
import { MdError, retryAfterMs, type SendOutcome } from '@metrics-distributor/core';

/** Retry-After / X-RateLimit-Reset longer than this is treated as this: a misbehaving proxy must not park data for days. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;
/** Response bodies of rejected payloads are logged up to this many characters. */
export const LOGGED_BODY_CHARS = 500;

/** What one POST came back with: a status (and the head of its body), or no answer at all. */
export type Answer =
  | { readonly status: number; readonly headers: IncomingHttpHeaders; readonly body: string }
  | { readonly status: undefined; readonly error: unknown };

/** What the log lines about a payload say besides the answer. */
export interface AnswerContext {
  /** The route, e.g. `/api/v2/series`. */
  readonly endpoint: string;
  /** The API key as it may be logged. */
  readonly maskedKey: string;
}

/** An error as one short line (name, code, message), for logs of failed requests. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${err.name} ${code}: ${err.message}` : `${err.name}: ${err.message}`;
  }
  return String(err);
}

/** The table above, as a function. */
export function classify(answer: Answer, ctx: AnswerContext): SendOutcome {
  const status = answer.status;
  if (status !== undefined && status >= 200 && status < 300) return { kind: 'ok' };
  switch (status) {
    case 400:
      return {
        kind: 'rejected',
        reason: 'bad_request',
        log: {
          code: 'MD_ERR_SINK_REJECTED',
          level: 'error',
          // Each 400 is a different malformed payload worth seeing, so more often than other drops.
          intervalMs: 10_000,
          fields: { status, endpoint: ctx.endpoint, body: answer.body.slice(0, LOGGED_BODY_CHARS) },
          message: 'Datadog rejected a payload as malformed (400 Bad Request); dropped.',
        },
      };
    case 403:
      return {
        kind: 'rejected',
        reason: 'forbidden',
        log: {
          code: 'MD_ERR_SINK_AUTH',
          level: 'error',
          fields: { status, endpoint: ctx.endpoint, key: ctx.maskedKey },
          message: 'Datadog answered 403 Forbidden: invalid API key. Payloads are dropped until --datadog-api-key / DD_API_KEY is fixed.',
        },
      };
    case 413:
      // The sink adds the log naming the item when the payload holds only one (see DatadogSink.send).
      return { kind: 'too_large' };
    case undefined:
      return {
        kind: 'retryable',
        error: new MdError(answer.error instanceof MdError ? answer.error.code : 'MD_ERR_SINK_EXPORT', 'Datadog request failed'),
        fields: { error: describe(answer.error), endpoint: ctx.endpoint },
      };
    default:
      // 408, 429, 5xx, and other statuses (the agent retries those too).
      return {
        kind: 'retryable',
        error: new MdError('MD_ERR_SINK_EXPORT', 'Datadog request failed'),
        retryAfterMs: retryAfterMs(answer.headers, MAX_RETRY_AFTER_MS, Date.now(), ['x-ratelimit-reset']),
        fields: { status, endpoint: ctx.endpoint },
      };
  }
}
