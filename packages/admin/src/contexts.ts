/**
 * `/api/contexts`: the query string checked and clamped, and the call to the source bounded in time,
 * one at a time, with identical questions within a tick answered from the last answer. The scan of
 * the aggregator's state therefore runs at most once per tick however many pages are open.
 */
import { MAX_EXAMPLES, MAX_TOP, type AdminSources, type TopContextsQuery, type TopContextsReport } from './sources.js';

/** `top` when the query has none. */
export const DEFAULT_TOP = 50;
/** `examples` when the query has none. */
export const DEFAULT_EXAMPLES = 3;

/** A parsed query, or why it is not one; `clamped` says a number was brought into range. */
export type ContextsQueryResult = { ok: true; query: TopContextsQuery; clamped: boolean } | { ok: false; message: string };

const KEYS = new Set(['top', 'by', 'examples']);

function intParam(name: string, raw: unknown, dflt: number, min: number, max: number): { value: number; clamped: boolean } | string {
  if (raw === undefined) return { value: dflt, clamped: false };
  if (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw)) return `${name} must be a non-negative integer, got ${JSON.stringify(raw).slice(0, 40)}`;
  const n = Number(raw);
  const value = Math.min(max, Math.max(min, n));
  return { value, clamped: value !== n };
}

/** Checks `?top=&by=&examples=`: unknown keys and non-numbers are errors, out-of-range numbers are clamped. */
export function parseContextsQuery(q: Record<string, unknown>): ContextsQueryResult {
  for (const k of Object.keys(q)) if (!KEYS.has(k)) return { ok: false, message: `unknown parameter ${JSON.stringify(k).slice(0, 40)}; accepted: top, by, examples` };
  const top = intParam('top', q.top, DEFAULT_TOP, 1, MAX_TOP);
  if (typeof top === 'string') return { ok: false, message: top };
  const examples = intParam('examples', q.examples, DEFAULT_EXAMPLES, 0, MAX_EXAMPLES);
  if (typeof examples === 'string') return { ok: false, message: examples };
  const by = q.by ?? 'contexts';
  if (by !== 'contexts' && by !== 'samples') return { ok: false, message: `by must be "contexts" or "samples", got ${JSON.stringify(by).slice(0, 40)}` };
  return { ok: true, query: { top: top.value, by, examples: examples.value }, clamped: top.clamped || examples.clamped };
}

/** What one call produced: a report, or a typed reason it could not. */
export type ContextsOutcome =
  | { ok: true; report: TopContextsReport; elapsedMs: number; cached: boolean }
  | { ok: false; code: 'MD_ERR_ADMIN_BUSY' | 'MD_ERR_ADMIN_TIMEOUT' | 'MD_ERR_ADMIN_SOURCE'; message: string; cause?: unknown };

function keyOf(q: TopContextsQuery): string {
  return `${q.by}/${q.top}/${q.examples}`;
}

/** Serialises, times out and caches calls to {@link AdminSources.topContexts}. */
export class ContextsExplorer {
  private inflight: { key: string; promise: Promise<ContextsOutcome> } | undefined;
  private last: { key: string; atMs: number; report: TopContextsReport; elapsedMs: number } | undefined;
  /** A call that timed out but has not settled: no new scan starts beside it. */
  private lingering: Promise<unknown> | undefined;

  constructor(
    private readonly sources: AdminSources,
    /** Longest wait for the source, in ms. */
    private readonly timeoutMs: number,
    /** How long an answer is reused for the same question, in ms. */
    private readonly cacheMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Answers `q`: from the cache, by joining the identical call in flight, or by a new call; `busy` when another question is being answered. */
  query(q: TopContextsQuery): Promise<ContextsOutcome> {
    const key = keyOf(q);
    const last = this.last;
    if (last !== undefined && last.key === key && this.now() - last.atMs < this.cacheMs) {
      return Promise.resolve({ ok: true, report: last.report, elapsedMs: last.elapsedMs, cached: true });
    }
    if (this.lingering !== undefined) return Promise.resolve({ ok: false, code: 'MD_ERR_ADMIN_BUSY', message: 'the last contexts query timed out and is still running; retry later' });
    if (this.inflight !== undefined) {
      if (this.inflight.key === key) return this.inflight.promise;
      return Promise.resolve({ ok: false, code: 'MD_ERR_ADMIN_BUSY', message: 'another contexts query is running; retry in a second' });
    }
    const promise = this.run(q, key).finally(() => {
      this.inflight = undefined;
    });
    this.inflight = { key, promise };
    return promise;
  }

  private async run(q: TopContextsQuery, key: string): Promise<ContextsOutcome> {
    const started = this.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const call = Promise.resolve().then(() => this.sources.topContexts(q));
      const report = await Promise.race([
        call,
        new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
        }),
      ]);
      if (report === 'timeout') {
        const settled: Promise<void> = call
          .then(
            () => undefined,
            () => undefined,
          )
          .finally(() => {
            if (this.lingering === settled) this.lingering = undefined;
          });
        this.lingering = settled;
        return { ok: false, code: 'MD_ERR_ADMIN_TIMEOUT', message: `contexts query took longer than ${this.timeoutMs} ms` };
      }
      const elapsedMs = this.now() - started;
      this.last = { key, atMs: this.now(), report, elapsedMs };
      return { ok: true, report, elapsedMs, cached: false };
    } catch (err) {
      return { ok: false, code: 'MD_ERR_ADMIN_SOURCE', message: 'the contexts query failed', cause: err };
    } finally {
      clearTimeout(timer);
    }
  }
}
