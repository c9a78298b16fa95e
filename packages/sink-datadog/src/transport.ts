/**
 * The Datadog sink's HTTP side: one keep-alive undici Pool, a bounded number of requests in flight,
 * per-request and shutdown deadlines, the start-up key check, and every response classified by the
 * status table (`status-table.ts`, where a 413 is explained) into core's `SendOutcome`.
 */
import { Pool } from 'undici';
import { MdError, readBodyHead, type ComponentStats, type Logger, type SendOutcome } from '@metrics-distributor/core';
import { KIND_SPECS, type PayloadKind } from './kinds.js';
import { maskKey, type ResolvedOptions } from './options.js';
import { LOGGED_BODY_CHARS, classify, describe, type Answer } from './status-table.js';

const USER_AGENT = 'metrics-distributor-sink-datadog';

/** Outcome of the start-up key check: `unknown` when Datadog could not be asked. */
export type KeyStatus = 'valid' | 'invalid' | 'unknown';

/** The first `limit` characters of an answer's body; the rest is read unkept, so the connection can be reused. */
async function readLimited(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  // Four bytes a character at most in UTF-8, so this many bytes always hold `limit` characters.
  return (await readBodyHead(body, limit * 4)).toString('utf8').slice(0, limit);
}

/** Posts compressed bodies to the intake; at most `maxConcurrent` at once. */
export class DatadogTransport {
  /** Base URL requests go to, for logs (holds no secret). */
  readonly baseUrl: string;
  /** The API key as it may be logged. */
  readonly maskedKey: string;
  /** No request outlives this (epoch ms); set at shutdown. */
  deadlineMs = Number.POSITIVE_INFINITY;
  private readonly pool: Pool;
  private readonly pathPrefix: string;
  private active = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private readonly inflight = new Set<AbortController>();

  constructor(
    private readonly opts: ResolvedOptions,
    /** Stats of the detail components (`sink-datadog-http-2xx`, `…-http-error`). */
    private readonly statsFor: (component: string) => ComponentStats,
  ) {
    const url = opts.url;
    this.maskedKey = maskKey(opts.apiKey);
    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    this.baseUrl = `${url.origin}${this.pathPrefix}`;
    this.pool = new Pool(url.origin, {
      connections: opts.maxConcurrent,
      keepAliveTimeout: 15_000,
      keepAliveMaxTimeout: 60_000,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      connect: { timeout: opts.timeoutMs },
    });
  }

  /** POSTs one compressed body of `kind`, within a concurrency slot and the per-request (or shutdown) deadline. */
  async post(kind: PayloadKind, body: Buffer | undefined): Promise<SendOutcome> {
    const spec = KIND_SPECS[kind];
    return classify(await this.request(kind, body), { endpoint: spec.path, maskedKey: this.maskedKey });
  }

  private async request(kind: PayloadKind, body: Buffer | undefined): Promise<Answer> {
    await this.acquire();
    const ac = new AbortController();
    const budget = Math.max(0, Math.min(this.opts.timeoutMs, this.deadlineMs - Date.now()));
    const timer = setTimeout(() => ac.abort(new MdError('MD_ERR_SINK_TIMEOUT', `no response from Datadog within ${Math.round(budget)} ms`)), budget);
    this.inflight.add(ac);
    const spec = KIND_SPECS[kind];
    try {
      const headers: Record<string, string> = {
        'dd-api-key': this.opts.apiKey,
        'content-type': spec.contentType,
        'content-encoding': this.opts.compression,
        'user-agent': USER_AGENT,
      };
      // The agent-payload version whose SketchPayload layout this sink writes (what Vector sends too).
      if (kind === 'sketches') headers['dd-agent-payload'] = '4.87.0';
      const res = await this.pool.request({ path: this.pathPrefix + spec.path, method: 'POST', headers, body: body ?? null, signal: ac.signal });
      const status = res.statusCode;
      this.statsFor(`sink-datadog-http-${Math.floor(status / 100)}xx`).received++;
      if (status >= 200 && status < 300) {
        // The answer is known; a body cut short changes nothing.
        await res.body.dump().catch(() => undefined);
        return { status, headers: res.headers, body: '' };
      }
      return { status, headers: res.headers, body: await readLimited(res.body, LOGGED_BODY_CHARS).catch(() => '') };
    } catch (err) {
      this.statsFor('sink-datadog-http-error').received++;
      return { status: undefined, error: err };
    } finally {
      clearTimeout(timer);
      this.inflight.delete(ac);
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.active < this.opts.maxConcurrent) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  private release(): void {
    const next = this.slotWaiters.shift();
    // The slot passes straight to the next waiter, so `active` stays exact.
    if (next !== undefined) next();
    else this.active--;
  }

  /** `GET /api/v1/validate`: 2xx valid; 403 loud error; anything else or no answer a warning. Never rejects. */
  async validateKey(logger: Logger): Promise<KeyStatus> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new MdError('MD_ERR_SINK_TIMEOUT', `no answer within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
    this.inflight.add(ac);
    try {
      const res = await this.pool.request({
        path: `${this.pathPrefix}/api/v1/validate`,
        method: 'GET',
        headers: { 'dd-api-key': this.opts.apiKey, 'user-agent': USER_AGENT },
        signal: ac.signal,
      });
      const body = await readLimited(res.body, LOGGED_BODY_CHARS).catch(() => '');
      if (res.statusCode >= 200 && res.statusCode < 300) {
        logger.info({ key: this.maskedKey, url: this.baseUrl }, 'Datadog API key is valid.');
        return 'valid';
      }
      if (res.statusCode === 403) {
        logger.error(
          { err: new MdError('MD_ERR_SINK_AUTH', 'invalid API key'), status: 403, key: this.maskedKey, url: this.baseUrl },
          'Datadog says the API key is invalid (403 on /api/v1/validate): invalid API key. Metrics will be rejected until --datadog-api-key / DD_API_KEY is fixed; continuing.',
        );
        return 'invalid';
      }
      logger.warn({ status: res.statusCode, body, key: this.maskedKey, url: this.baseUrl }, 'Could not validate the Datadog API key; continuing.');
      return 'unknown';
    } catch (err) {
      logger.warn({ error: describe(err), url: this.baseUrl }, 'Could not reach Datadog to validate the API key; continuing.');
      return 'unknown';
    } finally {
      clearTimeout(timer);
      this.inflight.delete(ac);
    }
  }

  /** Aborts every request in flight (at the shutdown deadline); each then counts as no answer. */
  abortAll(): void {
    for (const ac of this.inflight) ac.abort(new MdError('MD_ERR_SINK_TIMEOUT', 'shutdown deadline passed'));
  }

  /** Closes every connection. */
  destroy(): Promise<void> {
    return this.pool.destroy().catch(() => undefined);
  }
}
