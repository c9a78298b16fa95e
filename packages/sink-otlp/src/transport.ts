/**
 * The OTLP sink's HTTP side: one keep-alive undici Pool to the receiver, per-request and shutdown
 * deadlines, and the head of every answer's body (a partial success or an error status to log).
 */
import { Pool } from 'undici';
import { MdError, readBodyHead } from '@metrics-distributor/core';
import type { ResolvedOptions } from './options.js';
import type { Answer } from './response.js';

const USER_AGENT = 'metrics-distributor-sink-otlp/0.1.0';
/** Bytes of an answer's body read; the rest is drained unread so the connection can be reused. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** Posts encoded bodies to `<endpoint>/v1/metrics`. */
export class OtlpTransport {
  /** Where requests go, for logs (headers, which may hold secrets, are never logged). */
  readonly url: string;
  private readonly pool: Pool;
  private readonly path: string;
  private readonly headers: Record<string, string>;
  /** Aborted at the shutdown deadline: every request listens to it besides its own timeout. */
  private readonly stop = new AbortController();

  constructor(private readonly opts: ResolvedOptions) {
    const base = opts.url.pathname.replace(/\/+$/, '');
    this.path = `${base}/v1/metrics`;
    this.url = `${opts.url.origin}${this.path}`;
    this.headers = {
      ...opts.headers,
      'content-type': opts.protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
      'user-agent': opts.headers['user-agent'] ?? USER_AGENT,
      ...(opts.compression === 'gzip' ? { 'content-encoding': 'gzip' } : {}),
    };
    this.pool = new Pool(opts.url.origin, {
      connections: opts.maxConcurrent,
      keepAliveTimeout: 15_000,
      keepAliveMaxTimeout: 60_000,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      connect: { timeout: opts.timeoutMs },
    });
  }

  /** One POST within the per-request timeout and the shutdown deadline. Never rejects: no answer is an `Answer` too. */
  async post(body: Buffer): Promise<Answer> {
    try {
      const signal = AbortSignal.any([AbortSignal.timeout(this.opts.timeoutMs), this.stop.signal]);
      const res = await this.pool.request({ path: this.path, method: 'POST', headers: this.headers, body, signal });
      const head = await readBodyHead(res.body, MAX_ANSWER_BYTES).catch(() => Buffer.alloc(0));
      return { status: res.statusCode, headers: res.headers, body: head };
    } catch (err) {
      // AbortSignal.timeout's reason is a DOMException; say what it means.
      if (err instanceof Error && err.name === 'TimeoutError') return { status: undefined, error: new MdError('MD_ERR_SINK_TIMEOUT', `no answer from the OTLP receiver within ${this.opts.timeoutMs} ms`, { cause: err }) };
      return { status: undefined, error: err };
    }
  }

  /**
   * Lets `work` (the last retries) run until `deadlineMs`, then aborts what is still in flight and
   * closes every connection.
   */
  async closeAfter(deadlineMs: number, work: Promise<unknown>): Promise<void> {
    const timer = setTimeout(() => this.stop.abort(new MdError('MD_ERR_SINK_TIMEOUT', 'shutdown deadline passed')), Math.max(0, deadlineMs - Date.now()));
    try {
      await work;
    } finally {
      clearTimeout(timer);
      if (!this.stop.signal.aborted) this.stop.abort(new MdError('MD_ERR_SINK_TIMEOUT', 'sink closed'));
      await this.pool.destroy().catch(() => undefined);
    }
  }
}
