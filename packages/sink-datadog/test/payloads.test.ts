import t from 'tap';
import { v2 } from '@datadog/datadog-api-client';
import { Aggregator, StatsRegistry, sinkContext } from '@metrics-distributor/core';
import { DatadogSink } from '../src/index.js';
import { API_KEY, captureLogger, makeSink, startFakeDatadog } from './fake-datadog.js';

const WINDOW_MS = Date.UTC(2024, 0, 2, 3, 4, 10);
const TS = WINDOW_MS / 1000;

/** One 10 s window through a real core Aggregator, every StatsD type in it. */
function windowBatch() {
  const agg = new Aggregator({ flushIntervalMs: 10_000, hostname: 'web-1', selfMetrics: false, globalTags: ['team:x'], now: () => WINDOW_MS + 4_000 });
  for (let i = 0; i < 30; i++) agg.ingestStatsd(Buffer.from('page.views:1|c|#env:prod'));
  agg.ingestStatsd(Buffer.from(Array.from({ length: 10 }, (_, i) => `lat:${i + 1}|ms`).join('\n')));
  agg.ingestStatsd(Buffer.from('temp:20|g\ntemp:21.5|g|#host:db-1'));
  agg.ingestStatsd(Buffer.from('users:alice|s\nusers:bob|s\nusers:alice|s'));
  agg.ingestStatsd(Buffer.from('dist:1|d\ndist:2|d\ndist:10|d|@0.5'));
  agg.ingestStatsd(Buffer.from('_e{6,8}:Deploy|v1.2\\nok|t:success|#svc:api'));
  agg.ingestStatsd(Buffer.from('_sc|db.up|2|m:down'));
  return agg.closeWindow();
}

const host = (name: string) => [{ type: 'host', name }];

t.test('every StatsD type arrives exactly as the agent sends it', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const { sink, registry, log } = makeSink(fake); // default compression: gzip
  const batch = windowBatch();
  t.same(await sink.export(batch), { code: 'success' });

  const seriesReqs = fake.accepted('/api/v2/series');
  t.equal(seriesReqs.length, 1, 'one series payload');
  const req = seriesReqs[0]!;
  t.equal(req.headers['dd-api-key'], API_KEY, 'key in the DD-API-KEY header');
  t.equal(req.url, '/api/v2/series', 'no key (or anything) in the query string');
  t.equal(req.headers['content-type'], 'application/json');
  t.equal(req.headers['content-encoding'], 'gzip');
  t.same([...req.raw.subarray(0, 2)], [0x1f, 0x8b], 'really gzip');
  t.equal(req.decodeError, undefined);

  // Keyed by metric and host: the two `temp` gauges differ only by host.
  const byName = Object.fromEntries(fake.series().map((s) => [`${String(s['metric'])}${(s['resources'] as { name: string }[])[0]!.name === 'web-1' ? '' : '@db-1'}`, s]));
  t.same(byName['page.views'], { metric: 'page.views', type: 2, interval: 10, points: [{ timestamp: TS, value: 3 }], resources: host('web-1'), tags: ['env:prod', 'team:x'] }, 'a counter sent 30 times in 10 s is rate 3.0 with interval 10');
  t.same(byName['temp'], { metric: 'temp', type: 3, interval: 10, points: [{ timestamp: TS, value: 20 }], resources: host('web-1'), tags: ['team:x'] });
  t.same(byName['temp@db-1'], { metric: 'temp', type: 3, interval: 10, points: [{ timestamp: TS, value: 21.5 }], resources: host('db-1'), tags: ['team:x'] }, 'host: tag becomes the host resource');
  t.same(byName['users'], { metric: 'users', type: 3, interval: 10, points: [{ timestamp: TS, value: 2 }], resources: host('web-1'), tags: ['team:x'] }, 'a set is a gauge of distinct members');
  const h = (suffix: string, type: number, value: number) => ({ metric: `lat.${suffix}`, type, interval: 10, points: [{ timestamp: TS, value }], resources: host('web-1'), tags: ['team:x'] });
  t.same(byName['lat.max'], h('max', 3, 10));
  t.same(byName['lat.median'], h('median', 3, 5));
  t.same(byName['lat.avg'], h('avg', 3, 5.5));
  t.same(byName['lat.count'], h('count', 2, 1), 'histogram .count is a rate');
  t.same(byName['lat.95percentile'], h('95percentile', 3, 10));
  t.equal(fake.series().length, 9, 'nothing else: 1 counter, 2 gauges, 1 set, 5 histogram series');
  t.notOk(JSON.stringify(v2.ObjectSerializer.deserialize(req.json, 'MetricPayload')).includes('_unparsed'), 'api-client shape check');

  const sk = fake.accepted('/api/beta/sketches');
  t.equal(sk.length, 1);
  t.equal(sk[0]!.headers['content-type'], 'application/x-protobuf');
  const sketch = fake.sketches()[0]!;
  t.equal(sketch.metric, 'dist');
  t.equal(sketch.host, 'web-1');
  t.same(sketch.tags, ['team:x']);
  t.same(sketch.dogsketches, [{ ts: TS, cnt: 4, min: 1, max: 10, avg: 23 / 4, sum: 23, k: [1338, 1383, 1487], n: [1, 1, 2] }], '@0.5 weighs 2, agent keys');

  const ev = fake.accepted('/api/v1/events');
  t.equal(ev.length, 1);
  t.same(ev[0]!.json, { title: 'Deploy', text: 'v1.2\nok', date_happened: TS + 4, priority: 'normal', host: 'web-1', tags: ['svc:api', 'team:x'], alert_type: 'success' });
  const checks = fake.accepted('/api/v1/check_run');
  t.equal(checks.length, 1);
  t.same(checks[0]!.json, [{ check: 'db.up', host_name: 'web-1', timestamp: TS + 4, status: 2, message: 'down', tags: ['team:x'] }]);

  // Self-metrics: every item counted once as sent, payloads and bytes too.
  t.equal(registry.component('sink-datadog-series').received, 9);
  t.equal(registry.component('sink-datadog-series').sent, 9);
  t.equal(registry.component('sink-datadog-sketches').sent, 1);
  t.equal(registry.component('sink-datadog-events').sent, 1);
  t.equal(registry.component('sink-datadog-checks').sent, 1);
  t.equal(registry.component('sink-datadog').packets, 4);
  t.equal(registry.component('sink-datadog').bytes, fake.requests.reduce((n, r) => n + r.raw.length, 0));
  t.equal(registry.component('sink-datadog-http-2xx').received, 4);
  t.equal(registry.component('sink-datadog').dropped(), 0);
  t.notOk(log.text().includes(API_KEY), 'key never logged');
  await sink.shutdown(Date.now() + 1000);
});

t.test('deflate is zlib-wrapped, as Datadog expects', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const { sink } = makeSink(fake, { compression: 'deflate' });
  t.same(await sink.export(windowBatch()), { code: 'success' });
  t.equal(fake.requests.length, 4);
  for (const r of fake.requests) {
    t.equal(r.headers['content-encoding'], 'deflate', r.path);
    t.equal(r.raw[0], 0x78, 'zlib header');
    t.equal(r.decodeError, undefined, 'inflates with zlib.inflate (not raw deflate)');
  }
  await sink.shutdown(Date.now() + 1000);
});

t.test('the site builds https://api.<site>; a url keeps its path as a prefix', async (t) => {
  const reg = new StatsRegistry();
  const deps = sinkContext({ logger: captureLogger().logger, stats: reg }, 'datadog');
  const eu = new DatadogSink({ apiKey: API_KEY, site: 'datadoghq.eu' }, deps);
  t.equal(eu.baseUrl, 'https://api.datadoghq.eu');
  t.equal(new DatadogSink({ apiKey: API_KEY }, deps).baseUrl, 'https://api.datadoghq.com');
  await eu.shutdown(Date.now());

  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const sink = new DatadogSink({ apiKey: API_KEY, url: `${fake.url}/proxy/dd/` }, deps);
  await sink.export({ windowStartMs: WINDOW_MS, intervalMs: 10_000, series: [{ metric: 'm', type: 'gauge', timestamp: TS, value: 1, interval: 10, tags: [], host: 'h' }], sketches: [], events: [], serviceChecks: [] });
  t.equal(fake.requests[0]!.path, '/proxy/dd/api/v2/series');
  await sink.shutdown(Date.now() + 1000);

  t.throws(() => new DatadogSink({ apiKey: '' }, deps), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => new DatadogSink({ apiKey: 'bad key\n' }, deps), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => new DatadogSink({ apiKey: API_KEY, url: 'ftp://x' }, deps), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => new DatadogSink({ apiKey: API_KEY, site: 'https://datadoghq.eu' }, deps), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => new DatadogSink({ apiKey: API_KEY, compression: 'zstd' as 'gzip' }, deps), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => new DatadogSink({ apiKey: API_KEY, timeoutMs: 0 }, deps), { code: 'MD_ERR_CONFIG_INVALID' });
});

t.test('export never throws: a non-finite value is dropped and counted, the rest delivered', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const { sink, registry } = makeSink(fake);
  const s = (metric: string, value: number) => ({ metric, type: 'gauge' as const, timestamp: TS, value, interval: 10, tags: [], host: 'h' });
  const res = await sink.export({ windowStartMs: WINDOW_MS, intervalMs: 10_000, series: [s('ok', 1), s('nan', Number.NaN)], sketches: [], events: [], serviceChecks: [] });
  t.equal(res.code, 'failure');
  t.match(res.code === 'failure' ? res.error.message : '', /1 item\(s\) .*invalid_value/);
  t.same(fake.series().map((x) => x['metric']), ['ok']);
  t.equal(registry.component('sink-datadog').dropped('invalid_value'), 1);
  t.equal(registry.component('sink-datadog-series').failed, 1);
  await sink.shutdown(Date.now() + 1000);
});

t.test('requests share keep-alive connections and never exceed maxConcurrentRequests', async (t) => {
  const fake = await startFakeDatadog(() => ({ delayMs: 50 }));
  t.teardown(() => fake.close());
  const { sink } = makeSink(fake, { maxConcurrentRequests: 2 });
  const events = Array.from({ length: 8 }, (_, i) => ({ title: `e${i}`, text: 'x', timestampS: TS, host: 'h', priority: 'normal' as const, alertType: 'info' as const, tags: [] }));
  t.same(await sink.export({ windowStartMs: WINDOW_MS, intervalMs: 10_000, series: [], sketches: [], events, serviceChecks: [] }), { code: 'success' });
  t.same(await sink.export({ windowStartMs: WINDOW_MS, intervalMs: 10_000, series: [], sketches: [], events, serviceChecks: [] }), { code: 'success' });
  t.equal(fake.accepted('/api/v1/events').length, 16);
  t.equal(fake.maxInFlight, 2, 'two at a time');
  t.ok(fake.connections <= 2, `${fake.connections} connections for 16 requests`);
  await sink.shutdown(Date.now() + 1000);
});
