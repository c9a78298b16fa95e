/**
 * Slow and idle clients are cut off by `headersTimeoutMs`, `requestTimeoutMs` and `keepAliveTimeoutMs`,
 * within about a second of the limit (Node checks every second, not its default 30 s), their POST slots
 * are released, and a normal drain is served meanwhile. Real sockets on 127.0.0.1, short limits.
 */
import t, { type Test } from 'tap';
import { connect, type Socket } from 'node:net';
import { MdError } from '@metrics-distributor/core';
import { HttpFrontend } from '../src/index.js';
import { basic, captureLogger, httpDeps, newAggregator } from './helpers.js';

const AUTH = basic('user:pass');
const LINE = '<190>1 - host app web.1 - count#hits=1';
const BODY = `${LINE.length + 1} ${LINE}\n`;

async function listen(t: Test, opts: ConstructorParameters<typeof HttpFrontend>[0]) {
  const agg = newAggregator();
  const fe = new HttpFrontend({ port: 0, credentials: [{ user: 'user', password: 'pass' }], ...opts }, httpDeps(agg, captureLogger('warn').logger));
  await fe.start();
  t.teardown(() => fe.close());
  const port = Number(fe.addresses()[0]!.split(':').pop());
  return { agg, fe, port };
}

/** A raw client: what it received, and when (ms after connecting) the server closed it. */
function client(port: number): Promise<{ sock: Socket; received: () => string; closedAfter: Promise<number> }> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let data = '';
    const started = performance.now();
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (data += d));
    sock.on('error', () => undefined);
    const closedAfter = new Promise<number>((r) => sock.on('close', () => r(performance.now() - started)));
    sock.on('connect', () => resolve({ sock, received: () => data, closedAfter }));
  });
}

/** Writes `text` one byte every `everyMs` until the socket closes. */
function trickle(sock: Socket, text: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (sock.destroyed || i >= text.length) return clearInterval(timer);
    sock.write(text[i++]!);
  }, everyMs);
  sock.on('close', () => clearInterval(timer));
}

async function post(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/logs`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/logplex-1' }, body: BODY });
  return res.status;
}

t.test('defaults: 60 s per request, 10 s for headers, 72 s keep-alive; invalid values are config errors', async (t) => {
  const { fe } = await listen(t, {});
  t.equal(fe.server.server.requestTimeout, 60_000);
  t.equal(fe.server.server.headersTimeout, 10_000);
  t.equal(fe.server.server.keepAliveTimeout, 72_000);
  const agg = newAggregator();
  const logger = captureLogger('warn').logger;
  for (const bad of [{ requestTimeoutMs: 0 }, { headersTimeoutMs: 1.5 }, { keepAliveTimeoutMs: -1 }, { requestTimeoutMs: 5000, headersTimeoutMs: 6000 }]) {
    t.throws(() => new HttpFrontend({ port: 0, ...bad }, httpDeps(agg, logger)), MdError, JSON.stringify(bad));
  }
  const short = new HttpFrontend({ port: 0, requestTimeoutMs: 5000 }, httpDeps(agg, logger));
  t.equal(short.server.server.headersTimeout, 5000, 'the headers default never exceeds the request timeout');
});

t.test('a connection that sends nothing, and one trickling its headers, get 408 and are closed after headersTimeoutMs', async (t) => {
  const { port } = await listen(t, { headersTimeoutMs: 500, requestTimeoutMs: 5000 });
  const idle = await client(port);
  const slow = await client(port);
  trickle(slow.sock, `POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nX-Pad: ${'a'.repeat(200)}\r\n\r\n`, 50);
  // Legitimate requests are served while both are held.
  t.equal(await post(port), 200);
  const [idleMs, slowMs] = await Promise.all([idle.closedAfter, slow.closedAfter]);
  t.ok(idleMs >= 400 && idleMs < 3000, `idle connection closed after ${idleMs.toFixed(0)} ms`);
  t.ok(slowMs >= 400 && slowMs < 3000, `slow-header connection closed after ${slowMs.toFixed(0)} ms`);
  t.match(slow.received(), /^HTTP\/1\.1 408 /);
});

t.test('a body trickled past requestTimeoutMs is cut off; its slot and the count of the loss are released', async (t) => {
  const { agg, fe, port } = await listen(t, { headersTimeoutMs: 500, requestTimeoutMs: 1500, maxInflightRequests: 2 });
  const slow = await Promise.all([client(port), client(port)]);
  for (const c of slow) {
    c.sock.write(`POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n`);
    trickle(c.sock, 'count#slow=1\n'.repeat(1000), 50);
  }
  await new Promise((r) => setTimeout(r, 300));
  t.equal(fe.inflight, 2, 'both slow bodies hold a slot');
  t.equal(await post(port), 503, 'all slots taken: 503 (logplex retries)');
  const closed = await Promise.all(slow.map((c) => c.closedAfter));
  for (const ms of closed) t.ok(ms >= 1400 && ms < 4000, `slow body cut after ${ms.toFixed(0)} ms`);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(fe.inflight, 0, 'slots released');
  t.equal(await post(port), 200, 'served again');
  t.equal(agg.stats.component('http').dropped('client_aborted'), 2, 'each cut body is counted');
  t.notOk(agg.closeWindow().series.some((s) => s.metric === 'slow'), 'nothing of a cut body is counted');
});

t.test('an idle kept-alive connection is closed after keepAliveTimeoutMs', async (t) => {
  const { port } = await listen(t, { keepAliveTimeoutMs: 500 });
  const c = await client(port);
  c.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  const ms = await c.closedAfter;
  t.match(c.received(), /^HTTP\/1\.1 200 /);
  t.ok(ms >= 400 && ms < 3000, `closed after ${ms.toFixed(0)} ms`);
});
