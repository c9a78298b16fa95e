import t, { type Test } from 'tap';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { isMdError } from '@metrics-distributor/core';
import { HttpFrontend, type HttpFrontendOptions } from '../src/index.js';
import { basic, c, captureLogger, flat, httpDeps, newAggregator } from './helpers.js';

const LINE = '<190>1 2013-07-22T00:06:26+00:00 host app web.1 - count#hits=1';
const BODY = `${LINE.length + 1} ${LINE}\n`;

/** A listening front-end on 127.0.0.1:<ephemeral>, closed at teardown. */
async function listening(t: Test, opts: HttpFrontendOptions = {}) {
  const agg = newAggregator();
  const log = captureLogger('info');
  const fe = new HttpFrontend({ host: '127.0.0.1', port: 0, ...opts }, httpDeps(agg, log.logger));
  await fe.start();
  t.teardown(() => fe.close());
  const url = fe.addresses()[0]!;
  return { agg, fe, log, url, port: Number(url.slice(url.lastIndexOf(':') + 1)) };
}

/** Starts a request whose body the test writes itself; resolves the response when it comes. */
function open(port: number, path: string, headers: Record<string, string>, method = 'POST'): { req: ClientRequest; response: Promise<IncomingMessage & { text: string }> } {
  const req = httpRequest({ host: '127.0.0.1', port, path, method, headers });
  const response = new Promise<IncomingMessage & { text: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(Object.assign(res, { text })));
    });
    req.on('error', reject);
  });
  return { req, response };
}

function invalid(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isMdError(err, 'MD_ERR_CONFIG_INVALID') ? err.message : `other: ${String(err)}`;
  }
}

t.test('refuses a non-loopback listener without credentials unless allowed', async (t) => {
  const deps = httpDeps(newAggregator(), captureLogger().logger);
  t.match(invalid(() => new HttpFrontend({ host: '0.0.0.0' }, deps)), /refusing to listen on 0\.0\.0\.0 without credentials/);
  t.match(invalid(() => new HttpFrontend({ host: '::' }, deps)), /refusing/);
  t.match(invalid(() => new HttpFrontend({ host: '10.1.2.3', credentials: [] }, deps)), /refusing/);
  t.equal(invalid(() => new HttpFrontend({ host: '0.0.0.0', allowUnauthenticated: true }, deps)), 'no error');
  t.equal(invalid(() => new HttpFrontend({ host: '0.0.0.0', credentials: [{ user: 'u', password: 'p' }] }, deps)), 'no error');
  for (const host of ['127.0.0.1', 'localhost', '::1']) t.equal(invalid(() => new HttpFrontend({ host }, deps)), 'no error', host);
});

t.test('invalid options throw MD_ERR_CONFIG_INVALID, never echoing a credential', async (t) => {
  const deps = httpDeps(newAggregator(), captureLogger().logger);
  t.match(invalid(() => new HttpFrontend({ port: 70000 }, deps)), /port/);
  t.match(invalid(() => new HttpFrontend({ maxBodyBytes: 0 }, deps)), /maxBodyBytes/);
  t.match(invalid(() => new HttpFrontend({ maxFrameBytes: 1.5 }, deps)), /maxFrameBytes/);
  t.match(invalid(() => new HttpFrontend({ maxInflightRequests: -1 }, deps)), /maxInflightRequests/);
  t.match(invalid(() => new HttpFrontend({ credentials: [{ user: 'a', password: 'b' }, {}] }, deps)), /credential #2 needs a user or a password/);
  const msg = invalid(() => new HttpFrontend({ credentials: [{ user: 'sekrit-user', password: 'sekrit-pass', app: 'bad app' }] }, deps));
  t.match(msg, /credential #1: app must match/);
  t.notMatch(msg, /sekrit/);
  t.match(invalid(() => new HttpFrontend({ vercelSecret: '' }, deps)), /vercelSecret/);
});

t.test('start, addresses, a real POST, close: the fastify logger is the shared pino logger', async (t) => {
  const { agg, fe, log, url } = await listening(t, { credentials: [{ user: 'user', password: 'pass' }] });
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.not(url, 'http://127.0.0.1:0', 'the real port, not 0');
  t.ok(log.lines.some((l) => l.msg === `HTTP log drains listening at ${url}.`), 'fastify logged through our logger');
  const res = await fetch(`${url}/logs?app=shop`, { method: 'POST', headers: { 'content-type': 'application/logplex-1', authorization: basic('user:pass') }, body: BODY });
  t.equal(res.status, 200);
  t.equal((await fetch(`${url}/healthz`)).status, 200);
  t.same(flat(agg.closeWindow()), [c('hits', 1, ['app:shop'])]);
  await fe.close();
  t.same(fe.addresses(), []);
  await t.rejects(fetch(`${url}/healthz`), 'the port is closed');
  await fe.close();
  await t.rejects(fe.start(), { code: 'MD_ERR_FRONTEND_BIND' });
});

t.test('a busy port rejects with MD_ERR_FRONTEND_BIND, cause kept', async (t) => {
  const { port } = await listening(t);
  const other = new HttpFrontend({ port }, httpDeps(newAggregator(), captureLogger().logger));
  const err = await other.start().catch((e: unknown) => e);
  t.ok(isMdError(err, 'MD_ERR_FRONTEND_BIND'));
  t.match((err as Error & { cause: { code: string } }).cause, { code: 'EADDRINUSE' });
  await other.close();
});

t.test('close before start is fine, and an IPv6 listener is written with brackets', async (t) => {
  const fe = new HttpFrontend({ port: 0 }, httpDeps(newAggregator(), captureLogger().logger));
  await fe.close();
  t.same(fe.addresses(), []);
  const v6 = new HttpFrontend({ host: '::1', port: 0 }, httpDeps(newAggregator(), captureLogger().logger));
  const ok = await v6.start().then(
    () => true,
    () => false,
  );
  if (ok) t.match(v6.addresses()[0], /^http:\/\/\[::1\]:\d+$/);
  else t.pass('no IPv6 loopback here');
  await v6.close();
});

t.test('over a real socket, a 401 comes back while the client has sent only the headers', async (t) => {
  const { port, agg } = await listening(t, { credentials: [{ user: 'user', password: 'pass' }] });
  const { req, response } = open(port, '/logs', { 'content-type': 'application/logplex-1', 'content-length': '100000' });
  req.flushHeaders();
  const res = await response;
  t.equal(res.statusCode, 401);
  req.destroy();
  t.equal(agg.stats.component('http').bytes, 0);
});

t.test('shutdown: healthz and new POSTs get 503 at once, the in-flight request finishes, then the port closes', async (t) => {
  const { agg, fe, port, url } = await listening(t);
  const inflight = open(port, '/logs', { 'content-type': 'application/logplex-1', 'content-length': String(BODY.length) });
  inflight.req.write(BODY.slice(0, 10));
  while (fe.inflight === 0) await new Promise((r) => setTimeout(r, 5));

  let closed = false;
  const closing = fe.close().then(() => (closed = true));
  const health = await fetch(`${url}/healthz`);
  t.equal(health.status, 503);
  t.same(await health.json(), { status: 'shutting down' });
  const post = await fetch(`${url}/logs`, { method: 'POST', headers: { 'content-type': 'application/logplex-1' }, body: BODY });
  t.equal(post.status, 503, 'logplex will retry elsewhere or later');
  t.equal(post.headers.get('retry-after'), '5');
  t.equal(closed, false, 'close waits for the in-flight request');

  inflight.req.end(BODY.slice(10));
  t.equal((await inflight.response).statusCode, 200);
  await closing;
  t.same(flat(agg.closeWindow()), [c('hits', 1, [])], 'the in-flight body was counted');
  t.equal(agg.stats.component('http').dropped('shutting_down'), 1);
  await t.rejects(fetch(`${url}/healthz`), 'then the server is closed');
});

t.test('shutdown with only idle keep-alive connections closes promptly', async (t) => {
  const { fe, port } = await listening(t);
  const sock = connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((r) => sock.once('data', r));
  const started = Date.now();
  await fe.close();
  t.ok(Date.now() - started < 2000, 'an idle keep-alive connection does not hold the shutdown');
  sock.destroy();
});

t.test('a client that goes away mid-body is counted as client_aborted, frees its slot, logs no error', async (t) => {
  const { agg, fe, log, port } = await listening(t);
  const partial = open(port, '/logs', { 'content-type': 'application/logplex-1', 'content-length': '1000' });
  partial.response.catch(() => undefined);
  partial.req.write(BODY);
  while (fe.inflight === 0) await new Promise((r) => setTimeout(r, 5));
  partial.req.destroy();
  const stats = agg.stats.component('http');
  for (let i = 0; i < 400 && (stats.dropped('client_aborted') === 0 || fe.inflight > 0); i++) await new Promise((r) => setTimeout(r, 5));
  t.equal(stats.dropped('client_aborted'), 1);
  t.equal(fe.inflight, 0);
  t.equal(stats.received, 0, 'half a body is not parsed');
  t.notOk(log.lines.some((l) => l.level >= 50), 'no error logged');
});
