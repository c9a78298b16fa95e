/** Shared fixtures: a real Aggregator behind a real TcpFrontend on loopback, and small socket utilities. */
import type { Test } from 'tap';
import { connect, type Socket } from 'node:net';
import { Aggregator, StatsRegistry, componentContext, createRootLogger, type ComponentContext, type IngestTarget, type Logger, type MetricBatch } from '@metrics-distributor/core';
import { TcpFrontend, type TcpFrontendOptions } from '../src/index.js';

/** One captured pino JSON line. */
export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A real pino logger whose JSON lines are captured, so tests can assert what was logged. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createRootLogger({ level, destination: { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) } });
  return { logger, lines };
}

/** A `statsd-tcp` context on `stats` (a fresh registry by default), logging to `logger`. */
export function tcpContext(logger: Logger, stats = new StatsRegistry()): ComponentContext<'statsd-tcp'> {
  return componentContext({ logger, stats }, 'statsd-tcp');
}

/** A target that takes every line and does nothing with it. */
export const nullTarget: IngestTarget = { statsd: () => undefined, statsdLine: () => undefined, addSample: () => 'accepted', windowStartMs: 0 };

/** Polls `cond` every few ms; rejects after `timeoutMs` so lost data fails the test instead of hanging it. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The port of the `tcp://` address of a started front-end. */
export function tcpPort(fe: TcpFrontend): number {
  const addr = fe.addresses().find((a) => a.startsWith('tcp://'));
  if (addr === undefined) throw new Error('no TCP listener');
  return Number(addr.slice(addr.lastIndexOf(':') + 1));
}

/** Opens a client connection (TCP port or Unix path) and resolves once connected; errors are recorded, never thrown. */
export function dial(target: number | string): Promise<Socket & { errors: Error[] }> {
  return new Promise((resolve, reject) => {
    const sock = (typeof target === 'number' ? connect({ host: '127.0.0.1', port: target, noDelay: true }) : connect({ path: target })) as Socket & { errors: Error[] };
    sock.errors = [];
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.off('error', reject);
      sock.on('error', (e) => sock.errors.push(e));
      resolve(sock);
    });
  });
}

/** Rejects if `p` has not settled within `ms`, so a missing event fails fast instead of hitting tap's timeout. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves when the socket is fully closed. */
export function closed(sock: Socket): Promise<void> {
  return sock.closed ? Promise.resolve() : new Promise((resolve) => sock.once('close', () => resolve()));
}

/** Writes and resolves once the bytes are handed to the kernel. */
export function write(sock: Socket, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => sock.write(data, (err) => (err ? reject(err) : resolve())));
}

/** A batch as sorted, timestamp-free tuples, so two windows can be compared exactly. */
export function digest(batch: MetricBatch): unknown[] {
  const series = batch.series.map((s) => ['series', s.metric, s.type, s.value, s.host, [...s.tags].join(',')] as const);
  const sketches = batch.sketches.map((s) => ['sketch', s.metric, s.sketch.count, s.sketch.sum, s.sketch.min, s.sketch.max, [...s.tags].join(',')] as const);
  const checks = batch.serviceChecks.map((c) => ['check', c.name, c.status, c.message ?? '', [...c.tags].join(',')] as const);
  return [...series, ...sketches, ...checks].map((x) => JSON.stringify(x)).sort();
}

/** The value of the series `metric` (with exactly `tags`) in a batch, or undefined. */
export function valueOf(batch: MetricBatch, metric: string, tags: string[] = []): number | undefined {
  return batch.series.find((s) => s.metric === metric && s.tags.join(',') === tags.join(','))?.value;
}

/** Aggregator + started front-end on loopback (port 0 unless told otherwise), torn down with the test. */
export async function setup(t: Test, opts: TcpFrontendOptions = {}, level = 'debug') {
  const agg = new Aggregator({ hostname: 'h', selfMetrics: false, countersAs: 'count', flushIntervalMs: 10_000 });
  const { logger, lines } = captureLogger(level);
  const context = tcpContext(logger, agg.stats);
  const target = agg.target(context);
  const fe = new TcpFrontend({ port: opts.unixPath === undefined ? 0 : undefined, ...opts }, { target, context });
  await fe.start();
  const clients: Socket[] = [];
  t.teardown(async () => {
    for (const c of clients) c.destroy();
    await fe.close();
    await agg.close();
  });
  const port = opts.port === null || (opts.unixPath !== undefined && opts.port === undefined) ? -1 : tcpPort(fe);
  return {
    agg,
    target,
    context,
    stats: context.stats,
    fe,
    lines,
    port,
    /** Connects to the TCP listener (or `target`); the socket is destroyed at teardown. */
    async dial(target: number | string = port) {
      const c = await dial(target);
      clients.push(c);
      return c;
    },
  };
}
