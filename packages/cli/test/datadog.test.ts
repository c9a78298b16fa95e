import t from 'tap';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import { portOf, sendUdp, startCli } from './helpers.js';

/** A 32-character key, as Datadog's are. */
const KEY = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';

interface Seen {
  method: string;
  url: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Body after Content-Encoding. */
  body: Buffer;
}

interface WireSeries {
  metric: string;
  type: number;
  interval: number;
  points: { timestamp: number; value: number }[];
  resources?: { type: string; name: string }[];
  tags: string[];
}

/** A loopback stand-in for the Datadog intake: accepts everything (202; 200 for GET), records and inflates bodies. */
async function standIn() {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const enc = req.headers['content-encoding'];
      // zlib-wrapped deflate only, as Datadog: inflateSync throws on raw deflate.
      const body = enc === 'gzip' ? gunzipSync(raw) : enc === 'deflate' ? inflateSync(raw) : raw;
      const url = req.url ?? '/';
      seen.push({ method: req.method ?? '', url, path: url.split('?')[0]!, headers: req.headers, body });
      res.writeHead(req.method === 'GET' ? 200 : 202, { 'content-type': 'application/json' });
      res.end(req.method === 'GET' ? '{"valid":true}' : '{"errors":[]}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    series: (): WireSeries[] =>
      seen.filter((r) => r.method === 'POST' && r.path === '/api/v2/series').flatMap((r) => (JSON.parse(r.body.toString('utf8')) as { series: WireSeries[] }).series),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const COMMON = ['--statsd-udp', '127.0.0.1:0', '--statsd-tcp', 'off', '--http', 'off', '--flush-interval', '1h', '--hostname', 'test-host'];

t.test('--sink datadog: SIGTERM delivers the window to /api/v2/series with the exact rate and the global tags', async (t) => {
  const dd = await standIn();
  t.teardown(() => dd.close());
  const c = startCli(['--sink', 'datadog', '--datadog-url', dd.url, '--datadog-compression', 'gzip', '--tags', 'env:prod,team:x', ...COMMON], { DD_API_KEY: KEY });
  const port = portOf(await c.listening, 'udp');
  const before = Math.floor(Date.now() / 1000);
  await sendUdp(port, ['dd.hits:1|c\ndd.hits:2|c|@0.5', 'dd.hits:3|c|#route:/a', 'dd.hits:3|c', 'dd.temp:21.5|g']);
  await new Promise((r) => setTimeout(r, 300));
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0, 'exit code 0 after SIGTERM');

  const posts = dd.seen.filter((r) => r.method === 'POST' && r.path === '/api/v2/series');
  t.ok(posts.length >= 1, 'series posted');
  for (const p of posts) {
    t.equal(p.headers['dd-api-key'], KEY, 'key in the DD-API-KEY header');
    t.equal(p.headers['content-encoding'], 'gzip');
    t.equal(p.headers['content-type'], 'application/json');
  }
  const series = dd.series();
  const hits = series.find((s) => s.metric === 'dd.hits' && !s.tags.includes('route:/a'))!;
  t.ok(hits, 'dd.hits arrived');
  // One window of 3600 s: 1 + 2/0.5 + 3 = 8 increments → 8/3600 per second, as the agent's rate.
  t.equal(hits.type, 2, 'rate');
  t.equal(hits.interval, 3600);
  t.equal(hits.points.length, 1);
  t.equal(hits.points[0]!.value, 8 / 3600);
  const ts = hits.points[0]!.timestamp;
  t.ok(ts % 3600 === 0 && ts <= before && ts > before - 3600, 'timestamp is the window start');
  t.same(hits.resources, [{ type: 'host', name: 'test-host' }]);
  t.same(hits.tags, ['env:prod', 'team:x'], 'global tags on every series');
  const routed = series.find((s) => s.metric === 'dd.hits' && s.tags.includes('route:/a'))!;
  t.equal(routed.points[0]!.value, 3 / 3600);
  t.same(routed.tags, ['env:prod', 'route:/a', 'team:x']);
  const temp = series.find((s) => s.metric === 'dd.temp')!;
  t.same({ type: temp.type, value: temp.points[0]!.value, tags: temp.tags }, { type: 3, value: 21.5, tags: ['env:prod', 'team:x'] });

  t.ok(
    dd.seen.some((r) => r.method === 'GET' && r.path === '/api/v1/validate' && r.headers['dd-api-key'] === KEY),
    'the key was validated at start-up',
  );
  t.notOk(
    dd.seen.some((r) => r.url.includes(KEY)),
    'the key is never in a URL',
  );
  t.notOk(c.stderr().includes(KEY), 'the key never appears in stderr');
  t.notOk(c.stderr().includes(KEY.slice(0, 12)), 'not even a prefix of it');
});

t.test('DD_API_KEY alone makes datadog the default sink; deflate is zlib-wrapped', async (t) => {
  const dd = await standIn();
  t.teardown(() => dd.close());
  const c = startCli(['--datadog-url', dd.url, '--datadog-compression', 'deflate', ...COMMON], { DD_API_KEY: KEY });
  const port = portOf(await c.listening, 'udp');
  await sendUdp(port, ['dd.default:5|c']);
  await new Promise((r) => setTimeout(r, 300));
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  const posts = dd.seen.filter((r) => r.method === 'POST' && r.path === '/api/v2/series');
  t.ok(posts.length >= 1);
  t.ok(posts.every((p) => p.headers['content-encoding'] === 'deflate'));
  const s = dd.series().find((x) => x.metric === 'dd.default')!;
  t.equal(s.points[0]!.value, 5 / 3600);
  t.equal(c.lines.filter((l) => l.metric === 'dd.default').length, 0, 'nothing printed: the console sink is not on');
  t.notOk(c.stderr().includes(KEY));
});

t.test('a flush interval that is not whole seconds is warned about with the datadog sink (system-test regression)', async (t) => {
  const dd = await standIn();
  t.teardown(() => dd.close());
  const c = startCli(['--sink', 'datadog', '--datadog-url', dd.url, ...COMMON, '--flush-interval', '1500ms'], { DD_API_KEY: KEY });
  await c.listening;
  c.proc.kill('SIGTERM');
  await c.exited;
  t.match(c.stderr(), /not a whole number of seconds/);
  const d = startCli(['--sink', 'datadog', '--datadog-url', dd.url, ...COMMON, '--flush-interval', '2s'], { DD_API_KEY: KEY });
  await d.listening;
  d.proc.kill('SIGTERM');
  await d.exited;
  t.notMatch(d.stderr(), /not a whole number of seconds/);
});

t.test('--sink datadog,prometheus: Datadog gets exactly what it gets alone, timer aggregates included', async (t) => {
  const lines = ['dd.lat:10|ms\ndd.lat:30|ms\ndd.lat:20|ms|#r:a', 'dd.size:3|h', 'dd.n:2|c', 'dd.d:5|d'];
  const run = async (sinks: string) => {
    const dd = await standIn();
    t.teardown(() => dd.close());
    const c = startCli(['--sink', sinks, '--datadog-url', dd.url, '--prometheus-listen', '127.0.0.1:0', '--self-metrics', 'false', ...COMMON], { DD_API_KEY: KEY });
    await sendUdp(portOf(await c.listening, 'udp'), lines);
    await new Promise((r) => setTimeout(r, 300));
    c.proc.kill('SIGTERM');
    t.equal((await c.exited).code, 0);
    return dd
      .series()
      .map((s) => JSON.stringify([s.metric, s.type, s.interval, s.tags, s.resources, s.points.map((p) => p.value)]))
      .sort();
  };
  const alone = await run('datadog');
  t.ok(alone.some((s) => s.includes('"dd.lat.95percentile"')), 'timer aggregates sent');
  t.same(await run('datadog,prometheus'), alone);
});
