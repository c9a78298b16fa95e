/**
 * A stand-in for an OpenTelemetry Collector's OTLP/HTTP receiver (no Collector is packaged by Debian):
 * real HTTP on port 0, `POST /v1/metrics` only, bodies gunzipped and decoded with the official protos' generated
 * decoder (protobuf) or JSON.parse (JSON), answers scripted per request.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { ComponentContext, ComponentStats, silentLogger } from '@metrics-distributor/core';
import { decodeRequest, metricsOf, type OtlpRequest } from './decode.js';

/** One request as received. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  /** Body after Content-Encoding. */
  body: Buffer;
  /** The request, decoded by content type. */
  request: OtlpRequest;
  /** Data points in it. */
  points: number;
  /** When it arrived (epoch ms). */
  atMs: number;
}

/** What the collector answers to one request. */
export interface Reply {
  /** 0: never answer (the request times out on the sink's side). */
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

/** Data points of a request. */
export function pointCount(req: OtlpRequest): number {
  let n = 0;
  for (const { metric } of metricsOf(req)) {
    const data = metric.gauge ?? metric.sum ?? metric.histogram ?? metric.exponentialHistogram;
    n += data?.dataPoints.length ?? 0;
  }
  return n;
}

/** Starts a stand-in collector; `reply` decides each answer (default 200 with an empty protobuf response). */
export async function startCollector(reply: (r: Received, index: number) => Reply = () => ({ status: 200 }), port = 0) {
  const received: Received[] = [];
  /** Requests that got a 2xx: what a real collector would have kept. */
  const accepted: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      const json = String(req.headers['content-type']).startsWith('application/json');
      const request = json ? (JSON.parse(body.toString('utf8')) as OtlpRequest) : decodeRequest(body);
      const r: Received = { path: req.url ?? '', headers: req.headers, body, request, points: pointCount(request), atMs: Date.now() };
      const index = received.push(r) - 1;
      const out = req.url === '/v1/metrics' && req.method === 'POST' ? reply(r, index) : { status: 404 };
      if (out.status === 0) return;
      if (out.status >= 200 && out.status < 300) accepted.push(r);
      res.writeHead(out.status, { 'content-type': json ? 'application/json' : 'application/x-protobuf', ...out.headers });
      res.end(out.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  const bound = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${bound}`,
    port: bound,
    received,
    accepted,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A `sink-otlp` context with its own stats, logging nowhere. */
export function testContext(): ComponentContext<'sink'> {
  return new ComponentContext('sink', 'sink-otlp', silentLogger(), new ComponentStats('sink-otlp'));
}

/** Resolves once `pred` holds, polling; rejects after `timeoutMs`. */
export async function until(pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
