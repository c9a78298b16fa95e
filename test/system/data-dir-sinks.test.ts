/**
 * `--data-dir` with the OTLP and Graphite sinks: the disk buffer works for every sink through core's
 * sink contract. The destination is down (OTLP answers 503; nothing listens on carbon's port) while
 * 10 windows close; the server is SIGKILLed with their points in the sink's memory retry buffer and on
 * disk, then started again with the destination up: every window arrives exactly once, with its own
 * timestamp. (Datadog's cases, and kills during writes, are in `data-dir.test.ts`.)
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { killOnTeardown, sendWindows, sleep, startCli, type Child } from './helpers.js';

const INTERVAL_MS = 200;
t.jobs = 2;
const BASE = ['--flush-interval', `${INTERVAL_MS}ms`, '--self-metrics', 'false', '--counter-expiry', '0ms'];

async function start(t: Test, args: string[]): Promise<Child> {
  const cli = startCli([...BASE, ...args]);
  killOnTeardown(t, cli);
  await cli.listening;
  return cli;
}

async function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A point as a receiver stored it: metric name, its count, its time (epoch ms). */
interface Point {
  name: string;
  value: number;
  atMs: number;
}

/** An OTLP/HTTP JSON receiver: 503 while `up` is false; records the points of the requests it accepts. */
async function otlpReceiver(): Promise<{ url: string; points: Point[]; requests: () => number; up: boolean; open: () => number; close: () => Promise<void> }> {
  const points: Point[] = [];
  let requests = 0;
  const sockets = new Set<Socket>();
  const r = {
    url: '',
    points,
    requests: () => requests,
    up: false,
    open: () => sockets.size,
    close: (): Promise<void> =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server: HttpServer = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      if (!r.up) {
        res.writeHead(503).end();
        return;
      }
      type Dp = { timeUnixNano: string; asDouble?: number; asInt?: string };
      type Metric = { name: string; sum?: { dataPoints: Dp[] }; gauge?: { dataPoints: Dp[] } };
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceMetrics: { scopeMetrics: { metrics: Metric[] }[] }[] };
      for (const rm of body.resourceMetrics)
        for (const sm of rm.scopeMetrics)
          for (const m of sm.metrics)
            for (const dp of (m.sum ?? m.gauge)?.dataPoints ?? [])
              points.push({ name: m.name, value: dp.asDouble ?? Number(dp.asInt), atMs: Number(BigInt(dp.timeUnixNano) / 1_000_000n) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  r.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return r;
}

/** A carbon stand-in on a fixed port, listening only between `listen()` and `close()`; records lines. */
function carbonReceiver(port: number): { points: Point[]; listen: () => Promise<void>; close: () => Promise<void> } {
  const points: Point[] = [];
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  return {
    points,
    listen: () =>
      new Promise<void>((resolve, reject) => {
        server = createServer((s) => {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          let rest = '';
          s.setEncoding('utf8');
          s.on('data', (chunk: string) => {
            const parts = (rest + chunk).split('\n');
            rest = parts.pop()!;
            for (const line of parts) {
              const [path = '', value = '', ts = ''] = line.split(' ');
              points.push({ name: path, value: Number(value), atMs: Number(ts) * 1000 });
            }
          });
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      const srv = server;
      server = undefined;
      if (srv !== undefined) await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Checks each sent window arrived once, with its count (3) and the time of its own window. */
function checkOnce(t: Test, sent: { name: string; at: number }[], points: Point[], nameOf: (p: Point) => string | undefined, timeSlackMs: number): void {
  for (const w of sent) {
    const mine = points.filter((p) => nameOf(p) === w.name);
    t.equal(mine.length, 1, `${w.name}: one point (${JSON.stringify(mine)})`);
    t.equal(mine[0]?.value, 3, `${w.name}: its count`);
    const at = mine[0]?.atMs ?? 0;
    t.ok(at <= w.at + INTERVAL_MS + timeSlackMs && at > w.at - 1000 - INTERVAL_MS, `${w.name}: the time of its window (${at} for a send at ${w.at})`);
  }
}

t.test('OTLP: receiver down, 10 windows, SIGKILL, restart with it up: each window once, with its own time', async (t) => {
  const rx = await otlpReceiver();
  t.teardown(rx.close);
  const dir = await mkdtemp(join(tmpdir(), 'md-otlp-dir-'));
  const args = ['--sink', 'otlp', '--otlp-endpoint', rx.url, '--otlp-protocol', 'http/json', '--otlp-compression', 'none', '--otlp-retry-base', '100ms', '--otlp-retry-max', '400ms', '--data-dir', dir];
  const first = await start(t, args);
  const sent = await sendWindows(first.ports.udp, INTERVAL_MS, 'ot.w', 10);
  await sleep(INTERVAL_MS + 300);
  t.ok(rx.requests() > 0, 'the sink tried');
  first.proc.kill('SIGKILL');
  await first.exited;
  // A request the dead server sent may still be unread here: judge it as down first.
  await until(() => rx.open() === 0, 10_000, "the killed server's connections to close");
  rx.up = true;
  const second = await start(t, args);
  await until(() => sent.every((w) => rx.points.some((p) => p.name === w.name)), 15_000, 'every window');
  await sleep(500);
  // OTLP stamps a delta point with its window's end.
  checkOnce(t, sent, rx.points, (p) => p.name, 0);
  await second.stop();
});

t.test('Graphite: carbon away, 10 windows, SIGKILL, restart with carbon back: each window once, with its own time', async (t) => {
  const port = await freePort();
  const carbon = carbonReceiver(port);
  t.teardown(carbon.close);
  const dir = await mkdtemp(join(tmpdir(), 'md-graphite-dir-'));
  const args = ['--sink', 'graphite', '--graphite-address', `127.0.0.1:${port}`, '--graphite-retry-base', '100ms', '--graphite-retry-max', '400ms', '--data-dir', dir];
  const first = await start(t, args);
  const sent = await sendWindows(first.ports.udp, INTERVAL_MS, 'gr.w', 10);
  await sleep(INTERVAL_MS + 300);
  first.proc.kill('SIGKILL');
  await first.exited;
  await carbon.listen();
  const second = await start(t, args);
  // etsy's legacy names: the count of a counter is stats_counts.<name> (then ;tags).
  const nameOf = (p: Point): string | undefined => (p.name.startsWith('stats_counts.') ? p.name.slice('stats_counts.'.length).split(';')[0] : undefined);
  await until(() => sent.every((w) => carbon.points.some((p) => nameOf(p) === w.name)), 15_000, 'every window');
  await sleep(500);
  // Graphite stamps a window with its start, in seconds.
  checkOnce(t, sent, carbon.points, nameOf, 0);
  await second.stop();
});
