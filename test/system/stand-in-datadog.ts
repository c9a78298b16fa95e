/**
 * A stand-in Datadog intake for the system tests: node:http on 127.0.0.1:0. It records every request,
 * inflates gzip and zlib deflate, parses JSON bodies (series v2, check_run, events), and answers as a
 * per-request script says: any status, a delay, a hang (never answer), or a connection reset.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';

/** A series v2 item as the sink sends it. */
export interface V2Series {
  metric: string;
  /** 1 count, 2 rate, 3 gauge. */
  type: number;
  interval?: number;
  points: { timestamp: number; value: number }[];
  resources?: { type: string; name: string }[];
  tags?: string[];
}

/** One request as the stand-in saw it. */
export interface Received {
  n: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  json: unknown;
  decodeError: string | undefined;
  at: number;
  /** What happened: a status was answered, the socket was reset, or the answer never came. */
  outcome: 'answered' | 'reset' | 'hung' | 'pending';
  status: number | undefined;
}

/** How to answer one request. */
export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
  /** Destroy the socket instead of answering. */
  reset?: boolean;
  /** Never answer (until the client gives up or the stand-in closes). */
  hang?: boolean;
}

export type Script = (req: Received) => Reply | undefined;

export interface StandIn {
  url: string;
  port: number;
  requests: Received[];
  script: Script;
  /** Series of requests answered 2xx. */
  series(): V2Series[];
  /** Series of answered-2xx requests, each with the time its request arrived. */
  seriesWithTime(): { s: V2Series; at: number }[];
  close(): Promise<void>;
}

function decode(r: Received): void {
  const enc = r.headers['content-encoding'];
  try {
    const body = enc === 'gzip' ? gunzipSync(r.raw) : enc === 'deflate' ? inflateSync(r.raw) : r.raw;
    if (r.method === 'POST' && r.path !== '/api/beta/sketches' && body.length > 0) r.json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    r.decodeError = String(err);
  }
}

/** Starts the stand-in; the default answer is 202 (200 for GET). */
export async function startStandIn(script?: Script): Promise<StandIn> {
  const requests: Received[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const ok = (r: Received) => r.outcome === 'answered' && r.status !== undefined && r.status >= 200 && r.status < 300;
  const standIn: StandIn = {
    url: '',
    port: 0,
    requests,
    script: script ?? (() => undefined),
    series: () => standIn.seriesWithTime().map((x) => x.s),
    seriesWithTime: () =>
      requests
        .filter((r) => ok(r) && r.path === '/api/v2/series')
        .flatMap((r) => (r.json as { series: V2Series[] }).series.map((s) => ({ s, at: r.at }))),
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const answer = (r: Received, res: ServerResponse, reply: Reply | undefined) => {
    if (reply?.hang === true) {
      r.outcome = 'hung';
      return;
    }
    if (reply?.reset === true) {
      r.outcome = 'reset';
      res.socket?.resetAndDestroy();
      return;
    }
    const status = reply?.status ?? (r.method === 'GET' ? 200 : 202);
    const send = () => {
      if (res.destroyed || res.socket === null || res.socket.destroyed) {
        r.outcome = 'hung';
        return;
      }
      r.status = status;
      r.outcome = 'answered';
      res.writeHead(status, { 'content-type': 'application/json', ...reply?.headers });
      res.end(reply?.body ?? (r.method === 'GET' ? '{"valid":true}' : '{"errors":[]}'));
    };
    if (reply?.delayMs !== undefined && reply.delayMs > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        send();
      }, reply.delayMs);
      timers.add(t);
    } else send();
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const r: Received = {
        n: requests.length,
        method: req.method ?? '',
        path: url.split('?')[0]!,
        headers: req.headers,
        raw: Buffer.concat(chunks),
        json: undefined,
        decodeError: undefined,
        at: Date.now(),
        outcome: 'pending',
        status: undefined,
      };
      decode(r);
      requests.push(r);
      answer(r, res, standIn.script(r));
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  standIn.port = (server.address() as AddressInfo).port;
  standIn.url = `http://127.0.0.1:${standIn.port}`;
  return standIn;
}

/** Arguments pointing the CLI's Datadog sink at the stand-in. */
export const datadogArgs = (s: { url: string }): string[] => ['--sink', 'datadog', '--datadog-api-key', 'k', '--datadog-url', s.url];

const tagsOf = (s: V2Series) => [...(s.tags ?? [])].sort();
const hostOf = (s: V2Series) => s.resources?.find((r) => r.type === 'host')?.name ?? '';

/** Identity of one point: metric, timestamp, host and tags. */
export const pointKey = (s: V2Series): string => `${s.metric}|${s.points[0]?.timestamp}|${hostOf(s)}|${tagsOf(s).join(',')}`;

/** The count a rate or count point stands for (rate × interval). */
export function countOf(s: V2Series): number {
  const p = s.points[0];
  if (p === undefined) return 0;
  if (s.type === 2) return p.value * (s.interval ?? 0);
  if (s.type === 1) return p.value;
  throw new Error(`${s.metric} is a gauge, not a count`);
}

/** Σ rate × interval (or count) over every point of `metric` whose tags include all of `tags`. */
export function total(series: readonly V2Series[], metric: string, tags: readonly string[] = []): number {
  let sum = 0;
  for (const s of series) {
    if (s.metric !== metric) continue;
    const own = s.tags ?? [];
    if (tags.every((t) => own.includes(t))) sum += countOf(s);
  }
  // rate × interval may carry binary rounding: the totals the tests compare are integers.
  return Math.round(sum * 1e6) / 1e6;
}

/** Self-metric total: `metrics_distributor.<field>` for a component (and a drop reason). */
export function selfTotal(series: readonly V2Series[], field: string, component: string, reason?: string): number {
  return total(series, `metrics_distributor.${field}`, [`component:${component}`, ...(reason !== undefined ? [`reason:${reason}`] : [])]);
}

/** Keys seen more than once (a point delivered twice). */
export function duplicates(series: readonly V2Series[]): string[] {
  const seen = new Map<string, number>();
  for (const s of series) seen.set(pointKey(s), (seen.get(pointKey(s)) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k} ×${n}`);
}
