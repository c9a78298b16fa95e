/**
 * A local stand-in for the Datadog intake, for tests of this sink and of anything that sends through
 * it: node:http on 127.0.0.1:0 that records every request, undoes gzip and zlib deflate, parses JSON
 * bodies, and answers as a per-request script says (any status, a delay, a hang or a connection reset).
 * Exported as `@metrics-distributor/sink-datadog/testing`; not used by the sink itself.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';

/** A series item of a `/api/v2/series` body, as the sink sends it. */
export interface FakeSeries {
  metric: string;
  /** 1 count, 2 rate, 3 gauge. */
  type: number;
  interval?: number;
  points: { timestamp: number; value: number }[];
  resources?: { type: string; name: string }[];
  tags?: string[];
  [field: string]: unknown;
}

/** One request as the stand-in saw it. */
export interface FakeRequest {
  /** Arrival order, from 0. */
  n: number;
  method: string;
  /** The URL without its query string. */
  path: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** Body as sent (compressed). */
  raw: Buffer;
  /** Body after `Content-Encoding`. */
  body: Buffer;
  /** The parsed body of a JSON route (every POST route but `/api/beta/sketches`, which is protobuf). */
  json: unknown;
  /** Why the body could not be inflated or parsed, if it could not. */
  decodeError: string | undefined;
  /** Arrival time (epoch ms). */
  at: number;
  /** What happened to the request: answered, its connection reset, never answered, or not yet. */
  outcome: 'answered' | 'reset' | 'hung' | 'pending';
  /** Status answered; undefined unless `outcome` is `answered`. */
  status: number | undefined;
}

/** How to answer one request; every field is optional. */
export interface FakeReply {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
  /** Reset the connection (TCP RST) instead of answering. */
  reset?: boolean;
  /** Never answer, until the client gives up or the stand-in closes. */
  hang?: boolean;
}

/** Decides the answer to each request; `undefined` means the default (202, or 200 for GET). */
export type FakeScript = (req: FakeRequest) => FakeReply | undefined;

/** The running stand-in. */
export interface FakeIntake {
  /** Base URL, for the sink's `url` option. */
  url: string;
  port: number;
  requests: FakeRequest[];
  /** The current script; may be replaced while running. */
  script: FakeScript;
  /** TCP connections accepted so far (keep-alive reuses them). */
  connections: number;
  /**
   * TCP connections open now. Once a killed client's connections are closed, every request it sent has
   * been read and answered by the script of that moment, so a test can change the script without the
   * dead client's last request being judged by the new one.
   */
  readonly openConnections: number;
  /** Most requests received but not yet answered at any one time. */
  maxInFlight: number;
  /** Requests to `path` answered 2xx. */
  accepted(path: string): FakeRequest[];
  /** Every series item of `/api/v2/series` bodies answered 2xx, in arrival order. */
  series(): FakeSeries[];
  /** The same, each with the arrival time of its request. */
  seriesWithTime(): { s: FakeSeries; at: number }[];
  /** Resolves once `pred` holds (checked after each request, answer and closed connection); rejects after `timeoutMs`. */
  waitFor(pred: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Closes every connection and the server. */
  close(): Promise<void>;
}

function decode(r: FakeRequest): void {
  const enc = r.headers['content-encoding'];
  try {
    // `deflate` is zlib-wrapped, as Datadog and the agent's fakeintake read it.
    r.body = enc === 'gzip' ? gunzipSync(r.raw) : enc === 'deflate' ? inflateSync(r.raw) : r.raw;
    if (r.method === 'POST' && r.path !== '/api/beta/sketches' && r.body.length > 0) r.json = JSON.parse(r.body.toString('utf8'));
  } catch (err) {
    r.decodeError = String(err);
  }
}

/** Starts the stand-in on 127.0.0.1 with an ephemeral port. */
export async function startFakeIntake(script?: FakeScript): Promise<FakeIntake> {
  const requests: FakeRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let waiters: (() => void)[] = [];
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const ok = (r: FakeRequest): boolean => r.outcome === 'answered' && r.status !== undefined && r.status >= 200 && r.status < 300;
  const fake: FakeIntake = {
    url: '',
    port: 0,
    requests,
    script: script ?? (() => undefined),
    connections: 0,
    get openConnections() {
      return sockets.size;
    },
    maxInFlight: 0,
    accepted: (path) => requests.filter((r) => r.path === path && ok(r)),
    series: () => fake.seriesWithTime().map((x) => x.s),
    seriesWithTime: () => fake.accepted('/api/v2/series').flatMap((r) => (r.json as { series: FakeSeries[] }).series.map((s) => ({ s, at: r.at }))),
    waitFor: (pred, timeoutMs = 10_000, what = 'condition') =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fake Datadog intake: timed out waiting for ${what}; ${requests.length} requests`)), timeoutMs);
        const check = (): void => {
          if (pred()) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      }),
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  let inFlight = 0;
  const answer = (r: FakeRequest, res: ServerResponse, reply: FakeReply | undefined): void => {
    if (reply?.hang === true) {
      r.outcome = 'hung';
      return;
    }
    if (reply?.reset === true) {
      r.outcome = 'reset';
      res.socket?.resetAndDestroy();
      wake();
      return;
    }
    inFlight++;
    fake.maxInFlight = Math.max(fake.maxInFlight, inFlight);
    const status = reply?.status ?? (r.method === 'GET' ? 200 : 202);
    const send = (): void => {
      inFlight--;
      if (res.destroyed || res.socket === null || res.socket.destroyed) {
        // The client gave up first (its timeout): the answer never reached it.
        r.outcome = 'hung';
        wake();
        return;
      }
      r.status = status;
      r.outcome = 'answered';
      res.writeHead(status, { 'content-type': 'application/json', ...reply?.headers });
      res.end(reply?.body ?? (r.method === 'GET' ? '{"valid":true}' : '{"errors":[]}'));
      wake();
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
      const r: FakeRequest = {
        n: requests.length,
        method: req.method ?? '',
        path: url.split('?')[0]!,
        url,
        headers: req.headers,
        raw: Buffer.concat(chunks),
        body: Buffer.alloc(0),
        json: undefined,
        decodeError: undefined,
        at: Date.now(),
        outcome: 'pending',
        status: undefined,
      };
      decode(r);
      requests.push(r);
      wake();
      answer(r, res, fake.script(r));
    });
  });
  server.on('connection', (s: Socket) => {
    fake.connections++;
    sockets.add(s);
    s.on('close', () => {
      sockets.delete(s);
      wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `http://127.0.0.1:${fake.port}`;
  return fake;
}
