import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import t from 'tap';
import { isMdError } from '@metrics-distributor/core';
import { AdminServer, PROMETHEUS_CONTENT_TYPE, type StatusReport } from '../src/index.js';
import { FakeSources, basic, captureLogger, startServer } from './helpers.js';

/** A JSON body, loosely typed: tests assert on its shape. */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function json(res: Response): Promise<Json> {
  return (await res.json()) as Json;
}

t.test('GET /healthz and /readyz', async (t) => {
  const src = new FakeSources();
  const { url } = await startServer(t, src);
  const h = await fetch(`${url}/healthz`);
  t.equal(h.status, 200);
  t.match(await json(h), { status: 'ok', uptimeSeconds: Number });
  let r = await fetch(`${url}/readyz`);
  t.equal(r.status, 200);
  t.same(await json(r), { ready: true, problems: [] });
  src.ready = { ready: false, problems: ['statsd-udp not bound', 'sink datadog: queue 16/16 windows'] };
  r = await fetch(`${url}/readyz`);
  t.equal(r.status, 503);
  t.same(await json(r), { ready: false, problems: ['statsd-udp not bound', 'sink datadog: queue 16/16 windows'] });
});

t.test('/readyz turns 503 with "shutting down" once close() starts', async (t) => {
  const src = new FakeSources();
  const server = new AdminServer({ port: 0 }, src, { logger: captureLogger('warn').logger });
  await server.start();
  const closing = server.close();
  // Answered through inject: the listener is already refusing new connections.
  const r = await server.server.inject({ method: 'GET', url: '/readyz' });
  t.equal(r.statusCode, 503);
  await closing;
  t.same(server.addresses(), []);
});

t.test('GET /metrics is Prometheus text with the Vector-spec names', async (t) => {
  const src = new FakeSources();
  const udp = src.stats.component('statsd-udp');
  udp.received = 42;
  udp.drop('truncated', 3);
  src.sinkList = [{ name: 'datadog', queueDepth: 1, maxBatches: 16, retryBufferBytes: 0, retryBufferMaxBytes: 0, lastSuccessMs: undefined, lastError: undefined }];
  const { url } = await startServer(t, src);
  const res = await fetch(`${url}/metrics`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), PROMETHEUS_CONTENT_TYPE);
  const text = await res.text();
  t.match(text, 'metrics_distributor_component_received_events_total{component_id="statsd-udp"} 42\n');
  t.match(text, 'metrics_distributor_component_discarded_events_total{component_id="statsd-udp",reason="truncated"} 3\n');
  t.match(text, 'metrics_distributor_sink_queue_batches{component_id="sink-datadog"} 1\n');
  // The admin listener counts itself: this request is in the scrape.
  t.match(text, /metrics_distributor_component_received_events_total\{component_id="admin"\} [1-9]/);
  const head = await fetch(`${url}/metrics`, { method: 'HEAD' });
  t.equal(head.status, 200);
  if (existsSync('/usr/bin/promtool')) {
    const r = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    t.equal(r.status, 0, 'promtool check metrics passes on the served body');
    t.equal(`${r.stdout}${r.stderr}`.trim(), '');
  }
});

t.test('GET /api/status: one document with rates from the ring', async (t) => {
  const src = new FakeSources();
  let now = 1_700_000_000_000;
  src.startedAtMs = now - 60_000;
  src.live = 77;
  const udp = src.stats.component('statsd-udp');
  src.stats.component('aggregator').gauge('contexts', 77);
  src.sinkList = [
    { name: 'datadog', queueDepth: 4, maxBatches: 16, retryBufferBytes: 1024, retryBufferMaxBytes: 4096, lastSuccessMs: now - 120_000, lastError: { code: 'MD_ERR_SINK_EXPORT', message: 'HTTP 503', atMs: now - 1000 } },
    { name: 'console', queueDepth: 0, maxBatches: 16, retryBufferBytes: 0, retryBufferMaxBytes: 0, lastSuccessMs: now - 500, lastError: undefined },
  ];
  const server = new AdminServer({ port: 0 }, src, { logger: captureLogger('warn').logger, now: () => now });
  await server.start();
  t.teardown(() => server.close());
  for (let i = 1; i <= 3; i++) {
    udp.received += 100 * i;
    udp.bad += 1;
    now += 1000;
    server.tick();
  }
  const res = await fetch(`${server.addresses()[0]}/api/status`);
  t.equal(res.status, 200);
  const st = (await json(res)) as StatusReport;
  t.equal(st.version, '0.1.0-test');
  t.equal(st.uptimeSeconds, 63);
  t.same(st.listeners, src.listenerList);
  t.same(st.readiness, { ready: true, problems: [] });
  t.equal(st.liveContexts, 77);
  t.equal(st.spanMs, 3000);
  t.equal(st.ringPoints, 30);
  t.same(st.process, src.health);
  const c = st.components.find((x) => x.id === 'statsd-udp')!;
  t.equal(c.kind, 'frontend');
  t.equal(c.totals.received, 600);
  t.same(c.series.received, [100, 200, 300]);
  t.equal(c.rates.received, 200);
  t.equal(st.components[0]!.id, 'statsd-udp', 'front-ends first');
  t.equal(st.components.find((x) => x.id === 'aggregator')!.kind, 'internal');
  t.same(st.components.find((x) => x.id === 'aggregator')!.gauges, { contexts: 77 });
  const dd = st.sinks.find((s) => s.name === 'datadog')!;
  t.match(dd, { component: 'sink-datadog', state: 'failing', queueFill: 0.25, retryBufferFill: 0.25, lastError: { code: 'MD_ERR_SINK_EXPORT' } });
  t.match(st.sinks.find((s) => s.name === 'console'), { state: 'ok' });
});

t.test('sink states: ok, retrying, failing', async (t) => {
  const { sinkState } = await import('../src/index.js');
  const base = { name: 's', queueDepth: 0, maxBatches: 1, retryBufferBytes: 0, retryBufferMaxBytes: 0 };
  const now = 1_000_000;
  t.equal(sinkState({ ...base, lastSuccessMs: undefined, lastError: undefined }, false, now, now - 1000, 60_000), 'ok');
  t.equal(sinkState({ ...base, lastSuccessMs: now - 10, lastError: { code: 'X', message: '', atMs: now - 20 } }, false, now, 0, 60_000), 'ok', 'success after the error');
  t.equal(sinkState({ ...base, lastSuccessMs: now - 5000, lastError: { code: 'X', message: '', atMs: now - 20 } }, false, now, 0, 60_000), 'retrying');
  t.equal(sinkState({ ...base, lastSuccessMs: now - 5000, lastError: { code: 'X', message: '', atMs: now - 20 } }, true, now, 0, 60_000), 'failing', 'data lost in the ring');
  t.equal(sinkState({ ...base, lastSuccessMs: now - 61_000, lastError: { code: 'X', message: '', atMs: now - 20 } }, false, now, 0, 60_000), 'failing', 'no success for a minute');
  t.equal(sinkState({ ...base, lastSuccessMs: undefined, lastError: { code: 'X', message: '', atMs: now - 20 } }, false, now, now - 1000, 60_000), 'retrying', 'never succeeded, just started');
});

t.test('GET /api/contexts: clamps top, rejects bad parameters with JSON errors', async (t) => {
  const src = new FakeSources();
  src.report = { windowStartMs: 1, liveContexts: 5, maxContexts: 100, names: 2, entries: [{ name: 'req', contexts: 4, samples: 40, examples: [['user:1'], ['user:2']], tagKeys: [{ key: 'user', values: 4 }] }], truncated: false };
  const { url } = await startServer(t, src);
  let res = await fetch(`${url}/api/contexts?top=50&by=samples`);
  t.equal(res.status, 200);
  const body = await json(res);
  t.same(body.query, { top: 50, by: 'samples', examples: 3 });
  t.equal(body.clamped, false);
  t.same(body.report, src.report);
  res = await fetch(`${url}/api/contexts?top=1000000`);
  t.equal(res.status, 200);
  t.match(await json(res), { query: { top: 500 }, clamped: true });
  t.same(src.questions.at(-1), { top: 500, by: 'contexts', examples: 3 });
  res = await fetch(`${url}/api/contexts?by=bytes`);
  t.equal(res.status, 400);
  t.same(await json(res), { error: { code: 'MD_ERR_ADMIN_BAD_REQUEST', message: 'by must be "contexts" or "samples", got "bytes"' } });
  res = await fetch(`${url}/api/contexts?top=abc`);
  t.equal(res.status, 400);
  t.match(await json(res), { error: { code: 'MD_ERR_ADMIN_BAD_REQUEST', message: /top must be/ } });
  src.topImpl = () => new Promise(() => undefined);
  const slow = await startServer(t, src, { contextsTimeoutMs: 30 });
  res = await fetch(`${slow.url}/api/contexts`);
  t.equal(res.status, 503);
  t.equal(res.headers.get('retry-after'), '1');
  t.match(await json(res), { error: { code: 'MD_ERR_ADMIN_TIMEOUT' } });
  src.topImpl = () => {
    throw new Error('scan failed');
  };
  const { logger, lines } = captureLogger('debug');
  const failing = await startServer(t, src, {}, logger);
  res = await fetch(`${failing.url}/api/contexts`);
  t.equal(res.status, 500);
  t.match(await json(res), { error: { code: 'MD_ERR_ADMIN_SOURCE' } });
  t.equal(lines.filter((l) => l.level >= 50).length, 1, 'logged once, at error');
});

/** Reads SSE frames from /api/events until `n` status events arrived. */
function readEvents(url: string, n: number, headers: Record<string, string> = {}): Promise<{ status: number; type: string; events: StatusReport[] }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/api/events`, { headers }, (res) => {
      let buf = '';
      const events: StatusReport[] = [];
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = frame.split('\n').find((l) => l.startsWith('data: '));
          if (frame.includes('event: status') && data !== undefined) events.push(JSON.parse(data.slice(6)) as StatusReport);
          if (events.length >= n) {
            req.destroy();
            resolve({ status: res.statusCode!, type: String(res.headers['content-type']), events });
            return;
          }
        }
      });
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), events }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('GET /api/events pushes the status every tick', async (t) => {
  const src = new FakeSources();
  const udp = src.stats.component('statsd-udp');
  const { url, server } = await startServer(t, src, { sampleIntervalMs: 50 });
  const timer = setInterval(() => (udp.received += 10), 20);
  t.teardown(() => clearInterval(timer));
  const r = await readEvents(url, 3);
  t.equal(r.status, 200);
  t.equal(r.type, 'text/event-stream; charset=utf-8');
  t.equal(r.events.length, 3);
  t.ok(r.events[2]!.nowMs >= r.events[0]!.nowMs);
  t.ok(r.events[2]!.components.find((c) => c.id === 'statsd-udp')!.totals.received > 0);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal((server as unknown as { events: { size: number } }).events.size, 0, 'a closed stream is forgotten');
});

t.test('event streams are bounded and ended at close', async (t) => {
  const src = new FakeSources();
  const server = new AdminServer({ port: 0, maxEventStreams: 1, sampleIntervalMs: 50 }, src, { logger: captureLogger('warn').logger });
  await server.start();
  const url = server.addresses()[0]!;
  const open = readEvents(url, 1000);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const refused = await fetch(`${url}/api/events`);
  t.equal(refused.status, 503);
  t.match(await json(refused), { error: { code: 'MD_ERR_ADMIN_BUSY', message: /at most 1 event streams/ } });
  const head = await fetch(`${url}/api/events`, { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD answers at once, without holding a stream');
  t.equal(head.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const t0 = Date.now();
  await server.close();
  t.ok(Date.now() - t0 < 2000, 'close does not wait for the stream client');
  const r = await open;
  t.ok(r.events.length >= 1, 'the stream got events before close');
});

t.test('credentials: every route but /healthz needs them', async (t) => {
  const src = new FakeSources();
  const { url } = await startServer(t, src, { credentials: [{ user: 'ops', password: 'pw' }] });
  const h = await fetch(`${url}/healthz`);
  t.equal(h.status, 200, '/healthz is open');
  for (const path of ['/', '/readyz', '/metrics', '/api/status', '/api/contexts', '/api/events', '/nope']) {
    const res = await fetch(`${url}${path}`);
    t.equal(res.status, 401, `${path} without credentials`);
    t.match(res.headers.get('www-authenticate'), /^Basic realm=/);
    t.same(await json(res), { error: { code: 'MD_ERR_ADMIN_UNAUTHORIZED', message: 'credentials required (HTTP Basic)' } });
    const bad = await fetch(`${url}${path}`, { headers: { authorization: basic('ops', 'wrong') } });
    t.equal(bad.status, 401, `${path} with a wrong password`);
    await bad.body?.cancel();
  }
  const ok = await fetch(`${url}/api/status`, { headers: { authorization: basic('ops', 'pw') } });
  t.equal(ok.status, 200);
  const okMetrics = await fetch(`${url}/metrics`, { headers: { authorization: basic('ops', 'pw') } });
  t.match(await okMetrics.text(), /discarded_events_total\{component_id="admin",reason="unauthorized"\} 14/);
});

t.test('a non-loopback host needs credentials; options are checked', async (t) => {
  const logger = captureLogger('warn').logger;
  const src = new FakeSources();
  t.throws(() => new AdminServer({ host: '0.0.0.0' }, src, { logger }), { code: 'MD_ERR_CONFIG_INVALID', message: /refusing to listen on 0\.0\.0\.0 without credentials/ });
  t.doesNotThrow(() => new AdminServer({ host: '0.0.0.0', credentials: [{ user: 'a', password: 'b' }] }, src, { logger }));
  t.doesNotThrow(() => new AdminServer({ host: '::1' }, src, { logger }));
  for (const bad of [{ port: 70000 }, { port: -1 }, { sampleIntervalMs: 0 }, { maxRequestsPerSecond: 0 }, { ringSamples: 1 }, { contextsTimeoutMs: 1.5 }]) {
    t.throws(() => new AdminServer(bad, src, { logger }), { code: 'MD_ERR_CONFIG_INVALID' }, JSON.stringify(bad));
  }
  try {
    new AdminServer({ credentials: [{ user: '', password: 'secret-pw' }] }, src, { logger });
    t.fail('should throw');
  } catch (e) {
    t.ok(isMdError(e, 'MD_ERR_CONFIG_INVALID'));
    t.notMatch((e as Error).message, 'secret-pw', 'the credential is not echoed');
  }
});

t.test('bind failure is MD_ERR_ADMIN_BIND with the cause kept', async (t) => {
  const { url } = await startServer(t);
  const port = Number(new URL(url).port);
  const second = new AdminServer({ port }, new FakeSources(), { logger: captureLogger('warn').logger });
  const err = await second.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isMdError(err, 'MD_ERR_ADMIN_BIND'));
  t.match((err as Error).cause, { code: 'EADDRINUSE' });
  await second.close();
  await t.rejects(second.start(), { code: 'MD_ERR_ADMIN_BIND' }, 'closed servers do not restart');
});

t.test('rate limit: 429 with Retry-After beyond maxRequestsPerSecond; /healthz exempt', async (t) => {
  const { url } = await startServer(t, new FakeSources(), { maxRequestsPerSecond: 3 });
  const codes: number[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await fetch(`${url}/readyz`);
    codes.push(res.status);
    if (res.status === 429) {
      t.equal(res.headers.get('retry-after'), '1');
      t.match(await json(res), { error: { code: 'MD_ERR_ADMIN_RATE_LIMITED' } });
    } else await res.body?.cancel();
  }
  t.same(codes.slice(0, 3), [200, 200, 200]);
  t.ok(codes.slice(3).includes(429));
  t.equal((await fetch(`${url}/healthz`)).status, 200);
});

t.test('unknown routes and methods get JSON errors; nothing above debug is logged per request', async (t) => {
  const { logger, lines } = captureLogger('debug');
  const { url } = await startServer(t, new FakeSources(), {}, logger);
  const before = lines.length;
  let res = await fetch(`${url}/nope?token=secret`);
  t.equal(res.status, 404);
  const body = await json(res);
  t.equal(body.error.code, 'MD_ERR_ADMIN_NOT_FOUND');
  t.notMatch(JSON.stringify(body), 'secret', 'the URL is not echoed');
  res = await fetch(`${url}/metrics`, { method: 'POST', body: 'x' });
  t.equal(res.status, 405);
  t.equal(res.headers.get('allow'), 'GET, HEAD');
  t.match(await json(res), { error: { code: 'MD_ERR_ADMIN_BAD_REQUEST' } });
  for (const p of ['/', '/healthz', '/readyz', '/metrics', '/api/status', '/api/contexts']) await (await fetch(`${url}${p}`)).arrayBuffer();
  const mine = lines.slice(before);
  t.ok(mine.length > 0, 'requests are logged at debug');
  t.same(mine.filter((l) => l.level > 20), [], 'nothing above debug');
  t.notMatch(JSON.stringify(mine), 'secret', 'no URL with its query in the log');
});

t.test('GET / serves the page with a strict CSP and nothing external', async (t) => {
  const { url } = await startServer(t);
  const res = await fetch(`${url}/`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
  const csp = res.headers.get('content-security-policy')!;
  t.match(csp, "default-src 'none'");
  t.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
  t.match(csp, "connect-src 'self'");
  const html = await res.text();
  t.match(html, '<script>');
  t.notMatch(html, /\b(src|href)=["']?https?:/, 'no external resource');
  t.notMatch(html, /<script[^>]+src=/, 'no external script');
});

t.test('a source that throws: 500 JSON, and the tick survives', async (t) => {
  const src = new FakeSources();
  const { logger, lines } = captureLogger('debug');
  const { url, server } = await startServer(t, src, {}, logger);
  src.readiness = () => {
    throw new Error('broken source');
  };
  const res = await fetch(`${url}/api/status`);
  t.equal(res.status, 500);
  t.same(await json(res), { error: { code: 'MD_ERR_ADMIN_SOURCE', message: 'internal error' } });
  const ev = await fetch(`${url}/api/events`);
  t.equal(ev.status, 500, 'the event stream refuses before hijacking');
  await ev.body?.cancel();
  src.stats.all = () => {
    throw new Error('broken registry');
  };
  t.doesNotThrow(() => server.tick());
  t.ok(lines.some((l) => l.level === 50 && /tick failed/.test(l.msg)));
});

t.test('figures: a tick and a status document with 50 components', async (t) => {
  const src = new FakeSources();
  for (let i = 0; i < 50; i++) {
    const s = src.stats.component(`component-${i}`);
    s.received = i;
    s.drop('queue_full', i);
    s.gauge('queue_depth', i);
  }
  const server = new AdminServer({ port: 0 }, src, { logger: captureLogger('warn').logger });
  for (let i = 0; i < 31; i++) server.tick();
  const n = 300;
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) server.tick();
  const tickUs = Number(process.hrtime.bigint() - t0) / 1000 / n;
  t0 = process.hrtime.bigint();
  let size = 0;
  for (let i = 0; i < n; i++) size = JSON.stringify(server.status()).length;
  const statusUs = Number(process.hrtime.bigint() - t0) / 1000 / n;
  t.comment(`50 components: sample tick ${tickUs.toFixed(0)} µs; /api/status document ${statusUs.toFixed(0)} µs (${size} bytes)`);
  t.ok(tickUs < 5000 && statusUs < 20_000);
  await server.close();
});

t.test('an open listener answers only loopback Host names (DNS rebinding); credentials lift that', async (t) => {
  const get = (port: number, host: string, path = '/api/status'): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
  const open = await startServer(t, new FakeSources(), { allowedHosts: ['Proxy.Internal'] });
  const port = Number(new URL(open.url).port);
  t.equal(await get(port, `127.0.0.1:${port}`), 200);
  t.equal(await get(port, `localhost:${port}`), 200);
  t.equal(await get(port, `proxy.internal:${port}`), 200, 'allowedHosts, case-insensitive');
  t.equal(await get(port, 'rebind.attacker.example'), 403);
  t.equal(await get(port, 'rebind.attacker.example', '/healthz'), 200, '/healthz stays open');
  const res = await fetch(`${open.url}/metrics`);
  t.match(await res.text(), 'reason="forbidden_host"} 1');
  const authed = await startServer(t, new FakeSources(), { credentials: [{ user: 'u', password: 'p' }] });
  const port2 = Number(new URL(authed.url).port);
  t.equal(await get(port2, 'any.example'), 401, 'with credentials the Host does not matter, the credentials do');
});
