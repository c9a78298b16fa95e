import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { portOf, startCli, type OutLine } from './helpers.js';

/** The drain fixtures kept with the HTTP front-end's tests. */
const FIXTURES = fileURLToPath(new URL('../../frontend-http/test/fixtures/logdrains/', import.meta.url));

/** Every listener on an ephemeral port, a one-hour window (only SIGTERM flushes), no self-metrics. */
const ARGS = ['--statsd-udp', '127.0.0.1:0', '--statsd-tcp', 'off', '--http', '127.0.0.1:0', '--flush-interval', '1h', '--self-metrics', 'false', '--http-auth', 'user:pass', '--hostname', 'test-host'];

const series = (lines: OutLine[], metric: string) => lines.filter((l) => l.metric === metric && l.kind === undefined);

t.test('end to end over HTTP: a logplex body becomes exact metrics; SIGTERM flushes them', async (t) => {
  const c = startCli(ARGS);
  const listeners = await c.listening;
  t.ok(
    listeners.some((l) => /^http:\/\/127\.0\.0\.1:\d+$/.test(l)),
    'the start-up line lists http://host:port',
  );
  const base = `http://127.0.0.1:${portOf(listeners, 'http')}`;
  const body = readFileSync(`${FIXTURES}mixed_batch_7msg_correct_counts.logplex`);
  const headers = {
    'content-type': 'application/logplex-1',
    'logplex-msg-count': '7',
    'logplex-frame-id': '3F2A9C7B1E5D4A60B8C7D6E5F4A3B2C1',
    'logplex-drain-token': 'd.fc6b856b-3332-4546-93de-7d0ee272c3bd',
  };
  const auth = `Basic ${Buffer.from('user:pass').toString('base64')}`;

  t.equal((await fetch(`${base}/logs?app=shop`, { method: 'POST', headers, body })).status, 401, 'no credentials');
  t.equal((await fetch(`${base}/logs?app=shop`, { method: 'POST', headers: { ...headers, authorization: auth }, body })).status, 200);
  t.equal((await fetch(`${base}/logs?app=shop`, { method: 'POST', headers: { ...headers, authorization: auth }, body })).status, 200, 'a logplex retry is acknowledged');
  t.equal((await fetch(`${base}/healthz`)).status, 200);

  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0, 'exit code 0 after SIGTERM');
  const lines = c.lines;
  const one = (metric: string) => {
    const found = series(lines, metric);
    t.equal(found.length, 1, `one ${metric} series`);
    return found[0]!;
  };

  // Counted once although the body came twice (same drain token and frame id).
  const req = one('heroku.router.request');
  t.same(
    { type: req.type, value: req.value, interval: req.interval, host: req.host, tags: req.tags },
    { type: 'rate', value: 1 / 3600, interval: 3600, host: 'test-host', tags: ['app:shop', 'dyno:web.1', 'dyno_type:web', 'method:GET', 'status:304', 'status_class:3xx'] },
  );
  const routerTags = ['app:shop', 'dyno:web.1', 'dyno_type:web', 'method:GET', 'status_class:3xx'];
  t.same([one('heroku.router.service.max').value, one('heroku.router.service.max').tags], [2, routerTags]);
  t.equal(one('heroku.router.connect.max').value, 0);
  t.equal(one('heroku.router.bytes.max').value, 112);
  t.same([one('heroku.dyno.memory_total').type, one('heroku.dyno.memory_total').value, one('heroku.dyno.memory_total').tags], ['gauge', 180.43, ['app:shop', 'dyno:web.1', 'dyno_type:web']]);
  t.equal(one('heroku.dyno.load_avg_15m').value, 0.01);
  t.same([one('heroku.postgres.db_size').value, one('heroku.postgres.db_size').tags], [4347350804, ['app:shop', 'source:DATABASE']]);
  t.equal(one('heroku.postgres.active_connections').value, 6);
  t.same([one('heroku.redis.memory_redis').value, one('heroku.redis.memory_redis').tags], [1908016, ['addon:redis-cubed-98704', 'app:shop', 'source:REDIS']]);
  t.same([one('signups').type, one('signups').value, one('signups').tags], ['rate', 1 / 3600, ['app:shop']]);
  t.same([one('signup-controller.max').value, one('signup-controller.max').tags], [50, ['app:shop', 'unit:ms']]);
  t.equal(one('queue.length').value, 99);
  t.equal(one('heroku.logplex.dropped').value, 5 / 3600);

  // 16 router + 10 dyno + 16 postgres + 12 redis + 1 + 5 + 1 app + 1 L10 series, nothing else.
  t.equal(lines.filter((l) => l.metric !== undefined).length, 62, 'exactly the expected series');
  t.notOk(lines.some((l) => l.metric?.startsWith('metrics_distributor.')), 'self-metrics are off');
  t.notOk(c.stderr().includes('user:pass') || c.stderr().includes(auth.slice(6)), 'credentials never reach the logs');
});

t.test('a non-loopback --http without credentials exits 2 unless --http-allow-unauthenticated', async (t) => {
  const c = startCli(['--statsd-udp', '127.0.0.1:0', '--http', '0.0.0.0:0']);
  t.equal((await c.exited).code, 2);
  t.match(c.stderr(), /--http-auth|allow-unauthenticated/);
  const ok = startCli(['--statsd-udp', '127.0.0.1:0', '--http', '0.0.0.0:0', '--http-allow-unauthenticated', '--flush-interval', '1h']);
  const port = portOf(await ok.listening, 'http');
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  ok.proc.kill('SIGTERM');
  t.equal((await ok.exited).code, 0);
});

t.test('--http-max-body-bytes: a larger body gets 413', async (t) => {
  const c = startCli([...ARGS, '--http-max-body-bytes', '100']);
  const port = portOf(await c.listening, 'http');
  const res = await fetch(`http://127.0.0.1:${port}/logs`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', authorization: `Basic ${Buffer.from('user:pass').toString('base64')}` },
    body: 'count#x=1\n'.repeat(20),
  });
  t.equal(res.status, 413);
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
});
