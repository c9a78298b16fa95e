import t from 'tap';
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { PrometheusSink } from '../src/index.js';
import { batch, dist, point, testContext } from './helpers.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function started(t: { teardown: (fn: () => Promise<void>) => void }) {
  const sink = new PrometheusSink({ listenHost: '127.0.0.1', listenPort: 0, buckets: [1, 10] }, { context: testContext() });
  await sink.start();
  t.teardown(() => sink.shutdown(Date.now() + 1000));
  await sink.export(batch([point('req.count', 'count', 3, { host: 'web-1' })], [dist('lat', [0.5, 5, 50])]));
  return { sink, port: sink.boundPort! };
}

t.test('text 0.0.4 by default, OpenMetrics when asked', async (t) => {
  const { sink, port } = await started(t);
  t.match(sink.address(), /^127\.0\.0\.1:\d+$/);
  const text = await get(port, '/metrics');
  t.equal(text.status, 200);
  t.equal(text.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  t.match(text.body.toString(), /^# HELP req_count_total .*\n# TYPE req_count_total counter\nreq_count_total\{host="web-1"\} 3\n/);
  t.notMatch(text.body.toString(), /# EOF/);

  const om = await get(port, '/metrics', { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' });
  t.equal(om.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  const body = om.body.toString();
  t.match(body, /# TYPE req_count counter\nreq_count_total\{host="web-1"\} 3\n/);
  t.match(body, /lat_bucket\{le="\+Inf"\} 3\nlat_count 3\nlat_sum 55.5\n# EOF\n$/);
  t.equal(om.headers.vary, 'Accept, Accept-Encoding');
});

t.test('gzip when accepted; query strings ignored; HEAD', async (t) => {
  const { port } = await started(t);
  const plain = await get(port, '/metrics?x=1');
  const gz = await get(port, '/metrics', { 'accept-encoding': 'gzip' });
  t.equal(gz.headers['content-encoding'], 'gzip');
  t.equal(gunzipSync(gz.body).toString(), plain.body.toString());
  const head = await get(port, '/metrics', {}, 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.body.length, 0);
});

t.test('other paths 404, other methods 405', async (t) => {
  const { port } = await started(t);
  t.equal((await get(port, '/')).status, 404);
  t.equal((await get(port, '/metrics/x')).status, 404);
  const post = await get(port, '/metrics', {}, 'POST');
  t.equal(post.status, 405);
  t.equal(post.headers.allow, 'GET, HEAD');
});

t.test('a busy port is an MdError from start, and shutdown is idempotent', async (t) => {
  const { port } = await started(t);
  const other = new PrometheusSink({ listenPort: port }, { context: testContext() });
  await t.rejects(other.start(), { code: 'MD_ERR_SINK_LISTEN' });
  await other.shutdown(Date.now());
  await other.shutdown(Date.now());
});

t.test('shutdown closes the listener, keep-alive sockets included, by the deadline', async (t) => {
  const sink = new PrometheusSink({ listenPort: 0 }, { context: testContext() });
  await sink.start();
  const port = sink.boundPort!;
  t.equal((await get(port, '/metrics')).status, 200);
  const t0 = Date.now();
  await sink.shutdown(Date.now() + 500);
  t.ok(Date.now() - t0 < 1000);
  await t.rejects(get(port, '/metrics'), { code: 'ECONNREFUSED' });
  t.equal(sink.address(), undefined);
});

t.test('a large state renders in slices, and a scrape during an export sees each series once', async (t) => {
  const sink = new PrometheusSink({ listenPort: 0, renderYieldEvery: 1000, sliceCheckEvery: 64 }, { context: testContext() });
  await sink.start();
  t.teardown(() => sink.shutdown(Date.now() + 1000));
  const port = sink.boundPort!;
  const mk = (v: number) => batch(Array.from({ length: 20_000 }, (_, i) => point('m', 'count', v, { tags: [`i:${i}`] })));
  await sink.export(mk(1));
  const exporting = sink.export(mk(2));
  const scrape = await get(port, '/metrics');
  await exporting;
  const lines = scrape.body.toString().split('\n').filter((l) => l.startsWith('m_total'));
  t.equal(lines.length, 20_000);
  t.equal(new Set(lines.map((l) => l.split(' ')[0])).size, 20_000, 'no series twice');
  t.ok(lines.every((l) => l.endsWith(' 1') || l.endsWith(' 3')));
});

t.test('a scraper that goes away mid-body does not hurt the sink; gzip streams large bodies', async (t) => {
  const sink = new PrometheusSink({ listenPort: 0, renderYieldEvery: 500 }, { context: testContext() });
  await sink.start();
  t.teardown(() => sink.shutdown(Date.now() + 1000));
  const port = sink.boundPort!;
  await sink.export(batch(Array.from({ length: 30_000 }, (_, i) => point('big.gauge', 'gauge', i, { tags: [`i:${i}`] }))));
  await new Promise<void>((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => undefined);
    req.end();
  });
  const gz = await get(port, '/metrics', { 'accept-encoding': 'gzip' });
  const text = gunzipSync(gz.body).toString();
  t.equal(text.split('\n').filter((l) => l.startsWith('big_gauge{')).length, 30_000);
  t.ok(gz.body.length < text.length / 4, `gzip ${gz.body.length} of ${text.length} bytes`);
});
