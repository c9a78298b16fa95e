/**
 * Wire encodings of the four Datadog intake routes. Every item is encoded once, on its own, into a
 * Buffer: payloads are then just the items joined inside an envelope, so sizes are exact before
 * compressing, and a payload can be split in half (for a 413 or an over-limit compressed body) without
 * encoding anything again.
 */
import type { Series, ServiceCheck, SketchSeries, StatsdEvent } from '@metrics-distributor/core';
import { SKETCH_PAYLOAD_FOOTER, encodeSketchEntry } from './proto.js';

/** The four kinds of payload, one per intake route. */
export type PayloadKind = 'series' | 'sketches' | 'events' | 'checks';

/** Size limits of one request body of a kind. */
export interface PayloadLimits {
  /** Compressed body bytes at most. */
  maxCompressedBytes: number;
  /** Uncompressed body bytes at most. */
  maxUncompressedBytes: number;
  /** Items per body at most (for series, points: each series carries one point). */
  maxItems: number;
}

/** Datadog's limits (`datadog.md` §3.2–3.4; the agent's serializer caps for the generic routes). */
export const DEFAULT_LIMITS: Readonly<Record<PayloadKind, Readonly<PayloadLimits>>> = Object.freeze({
  series: { maxCompressedBytes: 512_000, maxUncompressedBytes: 5_242_880, maxItems: 10_000 },
  sketches: { maxCompressedBytes: 2_621_440, maxUncompressedBytes: 4_194_304, maxItems: Number.POSITIVE_INFINITY },
  // The events API takes one event per request.
  events: { maxCompressedBytes: 2_621_440, maxUncompressedBytes: 4_194_304, maxItems: 1 },
  checks: { maxCompressedBytes: 2_621_440, maxUncompressedBytes: 4_194_304, maxItems: Number.POSITIVE_INFINITY },
});

/** Route, content type and envelope of one payload kind. */
export interface KindSpec {
  /** Path under the base URL. */
  readonly path: string;
  /** `Content-Type` header. */
  readonly contentType: string;
  /** Bytes before the first item. */
  readonly prefix: Buffer;
  /** Bytes between two items. */
  readonly separator: Buffer;
  /** Bytes after the last item. */
  readonly suffix: Buffer;
}

const EMPTY = Buffer.alloc(0);
const COMMA = Buffer.from(',');

/** Every kind's route and envelope. */
export const KIND_SPECS: Readonly<Record<PayloadKind, KindSpec>> = Object.freeze({
  series: { path: '/api/v2/series', contentType: 'application/json', prefix: Buffer.from('{"series":['), separator: COMMA, suffix: Buffer.from(']}') },
  sketches: { path: '/api/beta/sketches', contentType: 'application/x-protobuf', prefix: EMPTY, separator: EMPTY, suffix: SKETCH_PAYLOAD_FOOTER },
  events: { path: '/api/v1/events', contentType: 'application/json', prefix: EMPTY, separator: EMPTY, suffix: EMPTY },
  checks: { path: '/api/v1/check_run', contentType: 'application/json', prefix: Buffer.from('['), separator: COMMA, suffix: Buffer.from(']') },
});

/** Uncompressed size of the body holding `parts`, without building it. */
export function bodySize(kind: PayloadKind, parts: readonly Buffer[]): number {
  const spec = KIND_SPECS[kind];
  let n = spec.prefix.length + spec.suffix.length + Math.max(0, parts.length - 1) * spec.separator.length;
  for (const p of parts) n += p.length;
  return n;
}

/** The uncompressed body holding `parts`. */
export function assemble(kind: PayloadKind, parts: readonly Buffer[]): Buffer {
  const spec = KIND_SPECS[kind];
  const list: Buffer[] = [spec.prefix];
  for (let i = 0; i < parts.length; i++) {
    if (i > 0 && spec.separator.length > 0) list.push(spec.separator);
    list.push(parts[i]!);
  }
  list.push(spec.suffix);
  return Buffer.concat(list, bodySize(kind, parts));
}

/** `MetricIntakeType` of the v2 API. */
const INTAKE_TYPE = { count: 1, rate: 2, gauge: 3 } as const;

/**
 * One `MetricSeries` of the v2 JSON API, or undefined for a value JSON cannot carry (NaN/±Inf would be
 * written as `null` and make Datadog reject the whole payload). Built by hand: this runs once per
 * context per window and a generic `JSON.stringify` of an object is about twice as slow.
 */
export function encodeSeries(s: Series): Buffer | undefined {
  if (!Number.isFinite(s.value) || !Number.isFinite(s.timestamp)) return undefined;
  // `interval` is int64 on the wire; sub-second windows still report a 1 s interval.
  const interval = Math.max(1, Math.round(s.interval));
  let out = `{"metric":${JSON.stringify(s.metric)},"type":${INTAKE_TYPE[s.type]},"interval":${interval},"points":[{"timestamp":${Math.trunc(s.timestamp)},"value":${s.value}}]`;
  if (s.host !== '') out += `,"resources":[{"type":"host","name":${JSON.stringify(s.host)}}]`;
  out += `,"tags":${JSON.stringify(s.tags)}}`;
  return Buffer.from(out, 'utf8');
}

/** Whether a sketch can be encoded: a finite summary, and as many counts as keys. */
export function sketchIsValid(s: SketchSeries): boolean {
  const d = s.sketch;
  if (!Number.isFinite(d.count) || !Number.isFinite(d.sum) || !Number.isFinite(d.min) || !Number.isFinite(d.max) || !Number.isFinite(d.avg)) return false;
  return d.keys.length === d.counts.length;
}

/** One agent `SketchPayload.Sketch` entry, or undefined when the summary holds a non-finite number. */
export function encodeSketch(s: SketchSeries): Buffer | undefined {
  return sketchIsValid(s) ? encodeSketchEntry(s) : undefined;
}

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
