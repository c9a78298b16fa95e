/**
 * The four Datadog intake routes this sink posts to: their payload kind, path, content type, and the
 * envelope (prefix, separator, suffix) that joins encoded items into one body. Items are encoded on
 * their own, so a body can be split at item boundaries without encoding anything again.
 */
import type { BatchItemKind } from '@metrics-distributor/core';
import { SKETCH_PAYLOAD_FOOTER } from './proto.js';

/** The four kinds of payload, one per intake route. */
export type PayloadKind = 'series' | 'sketches' | 'events' | 'checks';

/** Every kind, in the order a window's items are sent. */
export const KINDS: readonly PayloadKind[] = ['series', 'sketches', 'events', 'checks'];

/** The window's item array each kind comes from, for core's per-item delivery records. */
export const BATCH_KIND: Readonly<Record<PayloadKind, BatchItemKind>> = { series: 'series', sketches: 'sketches', events: 'events', checks: 'serviceChecks' };

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
