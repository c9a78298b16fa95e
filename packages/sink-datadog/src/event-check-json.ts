/**
 * The JSON bodies of events (`POST /api/v1/events`, one event per request) and service checks (the
 * elements of `POST /api/v1/check_run`). Series and sketches have their own cached encoders
 * (`writer.ts`, `proto.ts`): they run once per context per window, these rarely.
 */
import type { ServiceCheck, StatsdEvent } from '@metrics-distributor/core';

/** The events API's limits on `text` and `aggregation_key`, in characters (`datadog.md` §3.5). */
export const EVENT_TEXT_MAX_CHARS = 4000;
const EVENT_AGGREGATION_KEY_MAX_CHARS = 100;

/**
 * The first `max` characters (code points, so a surrogate pair is never split). Over-long fields are
 * cut rather than sent whole: the API answers 400 to them and the whole event would be lost.
 */
export function truncateChars(s: string | undefined, max: number): string | undefined {
  if (s === undefined || s.length <= max) return s;
  let n = 0;
  let i = 0;
  while (i < s.length && n < max) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
    n++;
  }
  return s.slice(0, i);
}

/** One `EventCreateRequest` body for `POST /api/v1/events`. */
export function encodeEvent(e: StatsdEvent): Buffer {
  return Buffer.from(
    JSON.stringify({
      title: e.title,
      text: truncateChars(e.text, EVENT_TEXT_MAX_CHARS),
      date_happened: e.timestampS,
      priority: e.priority,
      host: e.host,
      tags: e.tags,
      alert_type: e.alertType,
      aggregation_key: truncateChars(e.aggregationKey, EVENT_AGGREGATION_KEY_MAX_CHARS),
      source_type_name: e.sourceType,
    }),
    'utf8',
  );
}

/** One element of the `POST /api/v1/check_run` array. */
export function encodeCheck(c: ServiceCheck): Buffer {
  return Buffer.from(
    JSON.stringify({ check: c.name, host_name: c.host ?? '', timestamp: c.timestampS, status: c.status, message: c.message, tags: c.tags }),
    'utf8',
  );
}
