/**
 * A loopback stand-in for the Datadog intake with fakeintake's contract (`datadog.md` §5): it accepts
 * any POST, records headers and body, inflates by Content-Encoding (gzip, or zlib-wrapped deflate only,
 * as Datadog), parses JSON routes, decodes sketches with protobufjs from the agent's .proto text, and
 * can be scripted per request to answer any status, delay the answer, or reset the socket.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { StatsRegistry, createRootLogger, type Logger, type MetricBatch, type Series } from '@metrics-distributor/core';
import { DatadogSink, type DatadogSinkOptions } from '../src/index.js';

/** `DataDog/agent-payload:proto/metrics/agent_payload.proto`, the sketch part, verbatim in layout. */
export const AGENT_PAYLOAD_PROTO = `
syntax = "proto3";
package datadog.agentpayload;
message CommonMetadata { string agent_version=1; string timezone=2; double current_epoch=3; string internal_ip=4; string public_ip=5; string api_key=6; }
message Origin { reserved 1,2,3; uint32 origin_product=4; uint32 origin_category=5; uint32 origin_service=6; }
message Metadata { Origin origin = 1; }
message SketchPayload {
  message Sketch {
    message Distribution { int64 ts=1; int64 cnt=2; double min=3; double max=4; double avg=5; double sum=6;
      repeated double v=7; repeated uint32 g=8; repeated uint32 delta=9; repeated double buf=10; }
    message Dogsketch { int64 ts=1; int64 cnt=2; double min=3; double max=4; double avg=5; double sum=6;
      repeated sint32 k=7; repeated uint32 n=8; }
    string metric=1; string host=2; repeated Distribution distributions=3; repeated string tags=4;
    reserved 5,6; reserved "distributionsK","distributionsC";
    repeated Dogsketch dogsketches=7; Metadata metadata=8;
  }
  repeated Sketch sketches=1; CommonMetadata metadata=2;
}
`;

const SketchPayload = protobuf.parse(AGENT_PAYLOAD_PROTO).root.lookupType('datadog.agentpayload.SketchPayload');

/** A decoded agent Dogsketch (int64s as numbers). */
export interface DecodedDogsketch {
  ts: number;
  cnt: number;
  min: number;
  max: number;
  avg: number;
  sum: number;
  k: number[];
  n: number[];
}

/** A decoded agent Sketch. */
export interface DecodedSketch {
  metric: string;
  host: string;
  tags: string[];
  distributions: unknown[];
  dogsketches: DecodedDogsketch[];
}

/** Decodes a SketchPayload body with protobufjs; throws on any malformed byte. */
export function decodeSketchPayload(body: Buffer): { sketches: DecodedSketch[]; metadata: unknown; hasMetadata: boolean } {
  const msg = SketchPayload.decode(body);
  const obj = SketchPayload.toObject(msg, { longs: Number, defaults: true, arrays: true }) as { sketches: DecodedSketch[]; metadata: unknown };
  return { ...obj, hasMetadata: Object.prototype.hasOwnProperty.call(msg, 'metadata') && (msg as unknown as { metadata: unknown }).metadata != null };
}

/** One request as the stand-in saw it. */
export interface Received {
  n: number;
  method: string;
  path: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** Body as sent (compressed). */
  raw: Buffer;
  /** Body after Content-Encoding. */
  body: Buffer;
  /** Parsed JSON for JSON routes. */
  json: unknown;
  /** Decoded sketches for /api/beta/sketches. */
  sketches: DecodedSketch[] | undefined;
  /** Decoding error, if the body could not be inflated or parsed. */
  decodeError: string | undefined;
  at: number;
  /** Status answered; undefined when the socket was reset or the answer never went out. */
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
}

/** Decides the answer to each request; `undefined` means the default (202, or 200 for GET). */
export type Script = (req: Received) => Reply | undefined;

/** The stand-in server. */
export interface FakeDatadog {
  url: string;
  port: number;
  requests: Received[];
  script: Script;
  /** TCP connections accepted so far (keep-alive reuses them). */
  connections: number;
  /** Most requests received but not yet answered at any one time. */
  maxInFlight: number;
  /** Requests to a path that were answered 2xx. */
  accepted(path: string): Received[];
  /** Every series item of accepted /api/v2/series bodies. */
  series(): Record<string, unknown>[];
  /** Every sketch of accepted /api/beta/sketches bodies. */
  sketches(): DecodedSketch[];
  waitFor(pred: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

function decode(r: Received): void {
  const enc = r.headers['content-encoding'];
  try {
    if (enc === 'gzip') r.body = gunzipSync(r.raw);
    else if (enc === 'deflate') r.body = inflateSync(r.raw); // zlib-wrapped only, as Datadog and fakeintake
    else r.body = r.raw;
    if (r.method !== 'POST') return;
    if (r.path === '/api/beta/sketches') r.sketches = decodeSketchPayload(r.body).sketches;
    else if (r.body.length > 0) r.json = JSON.parse(r.body.toString('utf8'));
  } catch (err) {
    r.decodeError = String(err);
  }
}

/** Starts the stand-in on 127.0.0.1, port 0. */
export async function startFakeDatadog(script?: Script): Promise<FakeDatadog> {
  const requests: Received[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let waiters: (() => void)[] = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const fake: FakeDatadog = {
    url: '',
    port: 0,
    requests,
    script: script ?? (() => undefined),
    connections: 0,
    maxInFlight: 0,
    accepted: (path) => requests.filter((r) => r.path === path && r.status !== undefined && r.status >= 200 && r.status < 300),
    series: () => fake.accepted('/api/v2/series').flatMap((r) => (r.json as { series: Record<string, unknown>[] }).series),
    sketches: () => fake.accepted('/api/beta/sketches').flatMap((r) => r.sketches ?? []),
    waitFor: (pred, timeoutMs = 10_000, what = 'condition') =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fake datadog: timed out waiting for ${what}; ${requests.length} requests`)), timeoutMs);
        const check = () => {
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
  const answer = (r: Received, res: ServerResponse, reply: Reply | undefined) => {
    inFlight++;
    fake.maxInFlight = Math.max(fake.maxInFlight, inFlight);
    if (reply?.reset === true) {
      inFlight--;
      res.socket?.destroy();
      wake();
      return;
    }
    const status = reply?.status ?? (r.method === 'GET' ? 200 : 202);
    const body = reply?.body ?? (r.method === 'GET' ? '{"valid":true}' : '{"errors":[]}');
    const send = () => {
      inFlight--;
      if (res.destroyed || res.socket === null || res.socket.destroyed) {
        wake();
        return;
      }
      r.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...reply?.headers });
      res.end(body);
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
      const r: Received = {
        n: requests.length,
        method: req.method ?? '',
        path: url.split('?')[0]!,
        url,
        headers: req.headers,
        raw: Buffer.concat(chunks),
        body: Buffer.alloc(0),
        json: undefined,
        sketches: undefined,
        decodeError: undefined,
        at: Date.now(),
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
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `http://127.0.0.1:${fake.port}`;
  return fake;
}

/** A pino logger writing JSON lines into memory, so tests can read what was logged. */
export function captureLogger(): { logger: Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const raw: string[] = [];
  const logger = createRootLogger({ level: 'debug', destination: { write: (s: string) => void raw.push(s) } });
  return {
    logger,
    lines: () => raw.join('').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>),
    text: () => raw.join(''),
  };
}

/** A 32-character key, as Datadog's are; its last 4 characters are `9f3e`. */
export const API_KEY = 'a1b2c3d4e5f60718293a4b5c6d7e9f3e';

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A sink pointed at `fake` with short retry timings, its stats registry and captured logs. */
export function makeSink(fake: { url: string }, opts: Partial<DatadogSinkOptions> = {}) {
  const registry = new StatsRegistry();
  const log = captureLogger();
  const sink = new DatadogSink(
    { apiKey: API_KEY, url: fake.url, retryBaseMs: 20, retryMaxMs: 100, ...opts },
    { logger: log.logger, stats: registry.component('sink-datadog'), extraStats: (c) => registry.component(c) },
  );
  return { sink, registry, stats: registry.component('sink-datadog'), log };
}

/** Unix seconds used by hand-built batches. */
export const TS = 1_700_000_000;

/** A gauge series named `metric`. */
export const gauge = (metric: string, tags: string[] = ['env:prod']): Series => ({ metric, type: 'gauge', timestamp: TS, value: 1, interval: 10, tags, host: 'web-1' });

/** A batch with only what is given; its window starts now, so retries are not refused for the data's age. */
export const batch = (b: Partial<MetricBatch>): MetricBatch => ({ windowStartMs: Date.now(), intervalMs: 10_000, series: [], sketches: [], events: [], serviceChecks: [], ...b });

/** Polls `pred` every 5 ms until it holds; for state the sink updates after the stand-in has answered. */
export async function eventually(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
