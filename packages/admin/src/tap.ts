/**
 * `/api/tap`: the aggregator's tap as a stream of NDJSON lines. One `{"tap":…}` line first (what the
 * stream shows), then `{"sample":…}` per sample shown and `{"skipped":N}` whenever lines were not
 * shown. Sampling and the rate limit are the tap's (core); a client that reads too slowly has its
 * deliveries counted as skipped instead of buffered, so memory stays bounded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULT_TAP_PER_SECOND, MAX_TAP_PER_SECOND, type MetricType, type TapFilter, type TapSource } from '@metrics-distributor/core';

/** Wire types a `type=` list may name. */
const TYPES: readonly MetricType[] = ['c', 'g', 's', 'h', 'ms', 'd'];
const KEYS = new Set(['match', 'type', 'rate']);
/** Longest `match` glob accepted. */
const MAX_MATCH_CHARS = 200;

/** A parsed `/api/tap` query, or why it is not one. */
export type TapQueryResult = { ok: true; filter: Required<TapFilter> } | { ok: false; message: string };

/** Checks `?match=<glob>&type=c,ms&rate=<per second>`; unknown keys, unknown types and bad numbers are errors. */
export function parseTapQuery(q: Record<string, unknown>): TapQueryResult {
  for (const k of Object.keys(q)) if (!KEYS.has(k)) return { ok: false, message: `unknown parameter ${JSON.stringify(k).slice(0, 40)}; accepted: match, type, rate` };
  const match = q.match ?? '*';
  if (typeof match !== 'string' || match.length > MAX_MATCH_CHARS) return { ok: false, message: `match must be one glob of at most ${MAX_MATCH_CHARS} characters` };
  const rawTypes = q.type ?? '';
  if (typeof rawTypes !== 'string') return { ok: false, message: 'type must be one comma-separated list, e.g. c,ms' };
  const types: MetricType[] = [];
  for (const t of rawTypes.split(',')) {
    if (t === '') continue;
    if (!(TYPES as readonly string[]).includes(t)) return { ok: false, message: `unknown type ${JSON.stringify(t).slice(0, 20)}; accepted: ${TYPES.join(', ')}` };
    types.push(t as MetricType);
  }
  const rawRate = q.rate ?? String(DEFAULT_TAP_PER_SECOND);
  if (typeof rawRate !== 'string' || !/^\d{1,9}$/.test(rawRate) || Number(rawRate) < 1) return { ok: false, message: `rate must be an integer in [1, ${MAX_TAP_PER_SECOND}]` };
  return { ok: true, filter: { match, types, maxPerSecond: Math.min(MAX_TAP_PER_SECOND, Number(rawRate)) } };
}

interface Stream {
  res: ServerResponse;
  blocked: boolean;
  /** Samples not written while blocked, reported with the next write. */
  owed: number;
  stop: () => void;
}

/** The open tap streams. */
export class TapStreams {
  private readonly streams = new Set<Stream>();

  constructor(
    /** Most streams open at once; more get 503. */
    readonly max: number,
  ) {}

  /** Streams open now. */
  get size(): number {
    return this.streams.size;
  }

  /** Whether one more stream may open. */
  canOpen(): boolean {
    return this.streams.size < this.max;
  }

  /** Takes over a hijacked response and subscribes it to `tap` until either side closes. */
  open(req: IncomingMessage, res: ServerResponse, tap: TapSource, filter: Required<TapFilter>): void {
    res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    const s: Stream = { res, blocked: false, owed: 0, stop: () => undefined };
    this.streams.add(s);
    this.write(s, `${JSON.stringify({ tap: filter })}\n`);
    s.stop = tap.subscribe(filter, (d) => {
      if (s.blocked) {
        s.owed += d.samples.length + d.skipped;
        return;
      }
      let text = '';
      for (const sample of d.samples) text += `${JSON.stringify({ sample })}\n`;
      const skipped = d.skipped + s.owed;
      s.owed = 0;
      if (skipped > 0) text += `${JSON.stringify({ skipped })}\n`;
      this.write(s, text);
    });
    const remove = (): void => {
      if (!this.streams.delete(s)) return;
      s.stop();
    };
    req.once('close', remove);
    res.once('close', remove);
    res.on('error', remove);
  }

  private write(s: Stream, text: string): void {
    if (!s.res.write(text)) {
      s.blocked = true;
      s.res.once('drain', () => {
        s.blocked = false;
      });
    }
  }

  /** Ends every stream (at shutdown). */
  closeAll(): void {
    for (const s of this.streams) {
      s.stop();
      s.res.end();
    }
    this.streams.clear();
  }
}
