import t from 'tap';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { portOf, sendUdp, startCli } from './helpers.js';

interface KV {
  key: string;
  value: { stringValue?: string };
}
interface Point {
  attributes?: KV[];
  startTimeUnixNano: string;
  timeUnixNano: string;
  asDouble?: number;
  count?: string;
  sum?: number;
  min?: number;
  max?: number;
  scale?: number;
}
interface Metric {
  name: string;
  gauge?: { dataPoints: Point[] };
  sum?: { dataPoints: Point[]; aggregationTemporality: number; isMonotonic: boolean };
  exponentialHistogram?: { dataPoints: Point[]; aggregationTemporality: number };
}
interface Request {
  resourceMetrics: { resource: { attributes: KV[] }; scopeMetrics: { metrics: Metric[] }[] }[];
}

/** A stand-in OTLP/HTTP receiver: records each POST /v1/metrics, gunzipped and JSON-parsed, and answers 200. */
async function collector() {
  const seen: { headers: IncomingHttpHeaders; body: Request }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
      if (req.method === 'POST' && req.url === '/v1/metrics') seen.push({ headers: req.headers, body: JSON.parse(text) as Request });
      res.writeHead(req.url === '/v1/metrics' ? 200 : 404, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const attrs = (kvs: KV[] | undefined) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, kv.value.stringValue]));

t.test('--sink otlp: UDP traffic arrives at the receiver as OTLP metrics with exact values', async (t) => {
  const col = await collector();
  t.teardown(col.close);
  const c = startCli([
    '--sink', 'otlp', '--otlp-endpoint', col.endpoint, '--otlp-protocol', 'http/json', '--otlp-header', 'api-key=s3cret', '--otlp-header', 'x-tenant=a=b',
    '--statsd-udp', '127.0.0.1:0', '--flush-interval', '1h', '--hostname', 'test-host', '--self-metrics', 'false',
  ]);
  const port = portOf(await c.listening, 'udp');
  await sendUdp(port, ['hits:1|c|#service:shop,env:prod\nhits:2|c|@0.5|#service:shop,env:prod', 'temp:21.5|g', 'users:a|s\nusers:b|s\nusers:a|s', 'lat:10|d\nlat:20|d|#canary', 'lat:30|d', 'rt:100|ms']);
  await new Promise((r) => setTimeout(r, 300));
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0, 'exit 0 after SIGTERM');
  t.notMatch(c.stderr(), /s3cret/, 'header values never logged');

  t.ok(col.seen.length >= 1, 'metrics posted');
  for (const s of col.seen) {
    t.equal(s.headers['api-key'], 's3cret', '--otlp-header sent');
    t.equal(s.headers['x-tenant'], 'a=b', 'split at the first =');
    t.equal(s.headers['content-type'], 'application/json');
    t.equal(s.headers['content-encoding'], 'gzip');
  }
  const metrics: { resource: Record<string, string | undefined>; m: Metric }[] = [];
  for (const s of col.seen) for (const rm of s.body.resourceMetrics) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) metrics.push({ resource: attrs(rm.resource.attributes), m });
  const find = (name: string) => {
    const hits = metrics.filter((x) => x.m.name === name);
    t.equal(hits.length, 1, `one metric ${name}`);
    return hits[0]!;
  };

  const hits = find('hits');
  t.same(hits.resource, { 'host.name': 'test-host', 'service.name': 'shop' });
  t.equal(hits.m.sum?.aggregationTemporality, 1, 'delta');
  t.equal(hits.m.sum?.isMonotonic, true);
  const hp = hits.m.sum!.dataPoints[0]!;
  t.equal(hp.asDouble, 5, '1 + 2/0.5: the window count');
  t.same(attrs(hp.attributes), { env: 'prod' });
  const start = BigInt(hp.startTimeUnixNano);
  const end = BigInt(hp.timeUnixNano);
  t.equal(end - start, 3_600_000_000_000n, 'end = start + the 1 h window');
  t.ok(start <= BigInt(Date.now()) * 1_000_000n, 'start is the window start');

  t.equal(find('temp').m.gauge?.dataPoints[0]?.asDouble, 21.5, 'gauge');
  t.equal(find('users').m.gauge?.dataPoints[0]?.asDouble, 2, 'set: distinct count as a gauge');
  t.equal(find('rt.count').m.sum?.dataPoints[0]?.asDouble, 1, 'timer count as a Sum');
  t.equal(find('rt.max').m.gauge?.dataPoints[0]?.asDouble, 100, 'timer aggregates as Gauges');
  const lat = find('lat').m.exponentialHistogram!;
  t.equal(lat.aggregationTemporality, 1);
  const byCanary = new Map(lat.dataPoints.map((p) => [attrs(p.attributes)['canary'] !== undefined, p]));
  t.equal(byCanary.get(false)?.count, '2', 'lat without tags: 10 and 30');
  t.equal(byCanary.get(false)?.sum, 40);
  t.equal(byCanary.get(false)?.min, 10);
  t.equal(byCanary.get(false)?.max, 30);
  t.equal(byCanary.get(true)?.count, '1', 'lat #canary: 20');
  t.equal(byCanary.get(false)?.scale, 6);
});

t.test('--otlp-header without = is a config error naming no value', async (t) => {
  const c = startCli(['--sink', 'otlp', '--otlp-header', 'novalue', '--statsd-udp', '127.0.0.1:0']);
  const { code } = await c.exited;
  t.not(code, 0);
  t.match(c.stderr(), /MD_ERR_CONFIG_INVALID|--otlp-header/);
});

t.test('otlp options: headers from flags or a file object, defaults, validation', async (t) => {
  const { buildConfig } = await import('../src/config.js');
  const c = buildConfig({}, { otlpHeaders: ['api-key=k1', 'x-a = b '] }, 'test', {});
  t.same(c.otlpHeaders, { 'api-key': 'k1', 'x-a': 'b' });
  t.equal(c.otlpEndpoint, 'http://127.0.0.1:4318');
  t.equal(c.otlpProtocol, 'http/protobuf');
  t.equal(c.otlpExponentialScale, 6);
  t.equal(c.otlpBuckets, undefined, 'the sink’s default bounds');
  const f = buildConfig({ otlpHeaders: { authorization: 'Bearer x' }, otlpEndpoint: 'https://otlp.example.com/', otlpBuckets: '1,10,100' }, {}, 'test', {});
  t.same(f.otlpHeaders, { authorization: 'Bearer x' });
  t.equal(f.otlpEndpoint, 'https://otlp.example.com', 'trailing slash dropped');
  t.same(f.otlpBuckets, [1, 10, 100]);
  t.throws(() => buildConfig({}, { otlpProtocol: 'grpc' }, 'test', {}), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => buildConfig({}, { otlpExponentialScale: '9' }, 'test', {}), { code: 'MD_ERR_CONFIG_INVALID' });
  let message = '';
  try {
    buildConfig({}, { otlpHeaders: ['=s3cret'] }, 'test', {});
  } catch (err) {
    message = (err as Error).message;
  }
  t.match(message, /--otlp-header/);
  t.notMatch(message, /s3cret/, 'the value is not echoed');
});
