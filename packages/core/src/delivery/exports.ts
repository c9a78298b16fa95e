/**
 * What every sink that splits a window into payloads shares around the policy: the window's result
 * from its losses, the exports still running (shutdown waits for them), and the HTTP answer helpers.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { SUCCESS, type ExportResult } from '../contracts.js';
import { MdError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { LossTally } from './policy.js';

/** `success` when the window lost nothing, else `failure` naming how many `unit` were lost and why. */
export function windowResult(tally: LossTally, destination: string, unit = 'item(s)'): ExportResult {
  if (tally.lost === 0) return SUCCESS;
  return {
    code: 'failure',
    error: new MdError('MD_ERR_SINK_EXPORT', `${destination} sink: ${tally.lost} ${unit} of the window dropped (${[...tally.reasons].join(', ')})`),
  };
}

/** The result of an export that threw: only a bug gets there, so it is logged as one and the window fails. */
export function unexpectedExportError(logger: Logger, destination: string, err: unknown): ExportResult {
  logger.error({ err }, `${destination} sink: unexpected error while exporting a window.`);
  return { code: 'failure', error: new MdError('MD_ERR_SINK_EXPORT', `${destination} sink: unexpected error`, { cause: err }) };
}

/** Exports in progress, so a sink's shutdown can let them finish before the policy's last retries. */
export class InFlightExports {
  private readonly jobs = new Set<Promise<ExportResult>>();

  /** Runs `job` while it counts as in flight. */
  async track(job: Promise<ExportResult>): Promise<ExportResult> {
    this.jobs.add(job);
    try {
      return await job;
    } finally {
      this.jobs.delete(job);
    }
  }

  /** Settles once every export now in flight has. */
  settled(): Promise<unknown> {
    return Promise.allSettled([...this.jobs]);
  }
}

/** Response headers as node:http (`undici.request`) or fetch (`Headers`) give them. */
export type HeaderSource = IncomingHttpHeaders | { get(name: string): string | null };

function header(h: HeaderSource, name: string): string | undefined {
  if (typeof h.get === 'function') return (h as { get(name: string): string | null }).get(name) ?? undefined;
  const v = (h as IncomingHttpHeaders)[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The wait an answer asks for, in ms: `Retry-After` (seconds or an HTTP date), else any of `alsoSeconds`
 * (e.g. Datadog's `X-RateLimit-Reset`), capped at `maxMs` so a misbehaving proxy cannot park data for
 * hours; undefined when absent or unreadable.
 */
export function retryAfterMs(h: HeaderSource, maxMs: number, nowMs = Date.now(), alsoSeconds: readonly string[] = []): number | undefined {
  const clamp = (ms: number) => Math.min(maxMs, Math.max(0, ms));
  const ra = header(h, 'retry-after')?.trim();
  if (ra !== undefined && ra !== '') {
    const s = Number(ra);
    if (Number.isFinite(s)) return clamp(s * 1000);
    const at = Date.parse(ra);
    if (!Number.isNaN(at)) return clamp(at - nowMs);
  }
  for (const name of alsoSeconds) {
    const v = header(h, name)?.trim();
    if (v === undefined || v === '') continue;
    const s = Number(v);
    if (Number.isFinite(s)) return clamp(s * 1000);
  }
  return undefined;
}

/** Reads an answer's body to its end, so the connection can be reused, keeping only its first `limit` bytes. */
export async function readBodyHead(body: AsyncIterable<Buffer>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    if (n < limit) {
      chunks.push(chunk);
      n += chunk.length;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit);
}
