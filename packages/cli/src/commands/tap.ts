/**
 * `metrics-distributor tap`: prints the samples a running server parses, one line each as they
 * arrive, read from its admin listener's `/api/tap` (sampled and rate-limited there), and a
 * `skipped N` line once a second when samples were not shown.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { TapSample } from '@metrics-distributor/core';
import { adminRequestHeaders, adminUrl, type AdminClientOptions } from './client.js';

/** Options of `tap`. */
export interface TapCommandOptions extends AdminClientOptions {
  /** Glob over metric names. */
  match?: string;
  /** Comma list of wire types, e.g. `c,ms`. */
  type?: string;
  /** Samples per second at most (the server caps it). */
  rate?: string;
}

/** One sample as a StatsD-like line: `statsd-udp  api.hits:3|c|@0.5|#env:prod`. */
export function formatTapSample(s: TapSample): string {
  const value = s.type === 's' ? (s.setMember ?? '') : s.values.join(':');
  const rate = s.sampleRate !== 1 ? `|@${s.sampleRate}` : '';
  const tags = s.tags.length > 0 ? `|#${s.tags.join(',')}` : '';
  return `${s.component.padEnd(12)} ${s.name}:${value}|${s.type}${rate}${tags}`;
}

/** How often the `skipped N` line is printed at most, in ms. */
const SKIPPED_EVERY_MS = 1000;

/** Streams until the server ends the stream or the process is signalled; resolves with an exit code. */
export function runTap(opts: TapCommandOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const url = adminUrl(opts.admin, '/api/tap');
  if (opts.match !== undefined) url.searchParams.set('match', opts.match);
  if (opts.type !== undefined) url.searchParams.set('type', opts.type);
  if (opts.rate !== undefined) url.searchParams.set('rate', opts.rate);
  return new Promise((resolve) => {
    let skipped = 0;
    const timer = setInterval(() => {
      if (skipped === 0) return;
      out.write(`skipped ${skipped}\n`);
      skipped = 0;
    }, SKIPPED_EVERY_MS);
    const finish = (code: number): void => {
      clearInterval(timer);
      if (skipped > 0) out.write(`skipped ${skipped}\n`);
      resolve(code);
    };
    const req = httpRequest(url, { headers: adminRequestHeaders(opts) }, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d.slice(0, 2000)));
        res.on('end', () => {
          err.write(`metrics-distributor tap: ${url.origin} answered ${res.statusCode}: ${body.trim()}\n`);
          finish(1);
        });
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const msg = JSON.parse(line) as { tap?: unknown; sample?: TapSample; skipped?: number };
          if (msg.sample !== undefined) out.write(`${formatTapSample(msg.sample)}\n`);
          else if (msg.skipped !== undefined) skipped += msg.skipped;
          else if (msg.tap !== undefined) err.write(`metrics-distributor tap: connected to ${url.origin} ${JSON.stringify(msg.tap)}\n`);
        }
      });
      res.on('end', () => finish(0));
      res.on('error', () => finish(1));
    });
    req.on('error', (e) => {
      err.write(`metrics-distributor tap: cannot reach ${url.origin}: ${e.message}\n`);
      finish(1);
    });
    req.end();
    const stop = (): void => {
      req.destroy();
      finish(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
