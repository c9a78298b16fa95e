import t, { type Test } from 'tap';
import { OtlpSink } from '../src/index.js';
import { startCollector, testContext } from './collector.js';
import { attrs, metricsOf, type DataPoint, type Metric } from './decode.js';
import { END_NS, START_NS, expectedIndex, series, sketch, windowOf } from './helpers.js';

function only<T>(t: Test, list: T[], what: string): T {
  t.equal(list.length, 1, `one ${what}`);
  return list[0]!;
}

async function exportOnce(t: Test, opts: Partial<ConstructorParameters<typeof OtlpSink>[0]>, batch: ReturnType<typeof windowOf>) {
  const col = await startCollector();
  t.teardown(col.close);
  const context = testContext();
  const sink = new OtlpSink({ endpoint: col.endpoint, headers: { 'X-Api-Key': 'secret-1' }, ...opts }, context);
  t.teardown(() => sink.shutdown(Date.now() + 1000));
  const res = await sink.export(batch);
  t.same(res, { code: 'success' }, 'export succeeded');
  const req = only(t, col.received, 'request');
  const byName = new Map<string, { resource: Record<string, string | undefined>; scope: string | undefined; metric: Metric }>();
  for (const m of metricsOf(req.request)) byName.set(`${m.metric.name}/${Object.keys(m.metric).find((k) => k !== 'name')}`, m);
  return { req, byName, context };
}

t.test('protobuf: sums, gauges, resources and attributes, decoded independently', async (t) => {
  const batch = windowOf([
    series('hits', 'rate', 0.3, ['env:prod', 'service:shop', 'route:/a']),
    series('jobs', 'count', 7, ['env:prod']),
    series('queue.delta', 'count', -4, [], 'web-2'),
    series('temp', 'gauge', 21.5, ['canary', 'env:prod', 'env:staging']),
    series('zero', 'gauge', 0, []),
  ]);
  const { req, byName } = await exportOnce(t, {}, batch);
  t.equal(req.path, '/v1/metrics');
  t.equal(req.headers['content-type'], 'application/x-protobuf');
  t.equal(req.headers['content-encoding'], 'gzip');
  t.equal(req.headers['x-api-key'], 'secret-1', 'user header sent');
  t.equal(req.points, 5);

  const hits = byName.get('hits/sum')!;
  t.same(hits.resource, { 'host.name': 'web-1', 'service.name': 'shop' }, 'host.name and service.name on the resource');
  t.equal(hits.scope, 'metrics-distributor');
  t.equal(hits.metric.sum!.aggregationTemporality, 1, 'delta');
  t.equal(hits.metric.sum!.isMonotonic, true, 'monotonic');
  const hp = only(t, hits.metric.sum!.dataPoints, 'hits point');
  t.equal(hp.asDouble, 3, 'rate 0.3/s × 10 s = exactly 3 (snapped)');
  t.equal(hp.startTimeUnixNano, START_NS, 'start = window start');
  t.equal(hp.timeUnixNano, END_NS, 'time = window end');
  t.same(attrs(hp.attributes), { env: 'prod', route: '/a' }, 'service tag moved to the resource, the rest are attributes');

  const jobs = byName.get('jobs/sum')!;
  t.same(jobs.resource, { 'host.name': 'web-1' });
  t.equal(only(t, jobs.metric.sum!.dataPoints, 'jobs point').asDouble, 7, 'count series as is');

  const neg = byName.get('queue.delta/sum')!;
  t.same(neg.resource, { 'host.name': 'web-2' });
  t.equal(neg.metric.sum!.isMonotonic, undefined, 'negative window total: not monotonic (false is the proto3 default, absent)');
  t.equal(neg.metric.sum!.dataPoints[0]!.asDouble, -4);

  const temp = byName.get('temp/gauge')!;
  const tp = only(t, temp.metric.gauge!.dataPoints, 'temp point');
  t.equal(tp.asDouble, 21.5);
  t.same(attrs(tp.attributes), { canary: '', env: 'prod' }, 'bare tag → empty value; the first of a repeated key wins');
  t.equal(tp.startTimeUnixNano, START_NS);
  t.equal(tp.timeUnixNano, END_NS);
  t.equal(byName.get('zero/gauge')!.metric.gauge!.dataPoints[0]!.asDouble, 0, 'a 0 gauge still carries its value');
  t.equal(req.request.resourceMetrics!.length, 3, 'one ResourceMetrics per host and service');
});

t.test('protobuf: a distribution as an exponential histogram, bucket by bucket', async (t) => {
  const values = [1, 1, 2, 3.5, 10, 10, 10, 250, 1000, 0, -5];
  const s = sketch('latency', values, ['env:prod']);
  const { byName } = await exportOnce(t, {}, windowOf([], [s]));
  const m = byName.get('latency/exponentialHistogram')!;
  t.equal(m.metric.exponentialHistogram!.aggregationTemporality, 1, 'delta');
  const p: DataPoint = only(t, m.metric.exponentialHistogram!.dataPoints, 'point');
  t.equal(p.count, String(values.length), 'count exact');
  t.equal(p.sum, values.reduce((a, b) => a + b, 0), 'sum exact');
  t.equal(p.min, -5);
  t.equal(p.max, 1000);
  t.equal(p.scale, 6);
  t.equal(p.zeroCount, '1', 'the 0 in the zero bucket');
  t.ok(p.zeroThreshold! > 0 && p.zeroThreshold! < 1.1e-9, 'zero threshold: the sketch’s smallest magnitude');
  t.equal(p.startTimeUnixNano, START_NS);
  t.equal(p.timeUnixNano, END_NS);
  t.same(attrs(p.attributes), { env: 'prod' });

  const expected = new Map<number, number>();
  const expectedNeg = new Map<number, number>();
  for (let i = 0; i < s.sketch.keys.length; i++) {
    const k = s.sketch.keys[i]!;
    if (k === 0) continue;
    const side = k > 0 ? expected : expectedNeg;
    const idx = expectedIndex(Math.abs(k));
    side.set(idx, (side.get(idx) ?? 0) + s.sketch.counts[i]!);
  }
  const read = (b: DataPoint['positive']) => {
    const out = new Map<number, number>();
    (b?.bucketCounts ?? []).forEach((c, i) => {
      if (Number(c) !== 0) out.set((b?.offset ?? 0) + i, Number(c));
    });
    return out;
  };
  t.same([...read(p.positive)], [...expected], 'positive buckets');
  t.same([...read(p.negative)], [...expectedNeg], 'negative buckets');
  // The README's bound: a value read back from its bucket is within 1.9 % of what was sent.
  const base = 2 ** (1 / 64);
  for (const v of values.filter((x) => x > 0)) {
    const bucket = [...read(p.positive).keys()].find((i) => v >= base ** i / 1.0079 && v <= base ** (i + 1) * 1.0079);
    t.not(bucket, undefined, `${v} is within the documented error of a filled bucket`);
  }
});

t.test('explicit buckets on request: le semantics on the bounds, overflow bucket', async (t) => {
  const values = [1, 5, 5, 7, 100, 20_000];
  const { byName } = await exportOnce(t, { histogram: 'explicit' }, windowOf([], [sketch('rt', values)]));
  const m = byName.get('rt/histogram')!;
  t.equal(m.metric.histogram!.aggregationTemporality, 1);
  const p = only(t, m.metric.histogram!.dataPoints, 'point');
  t.same(p.explicitBounds, [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]);
  t.same(p.bucketCounts, ['0', '3', '1', '0', '0', '0', '1', '0', '0', '0', '0', '0', '0', '0', '0', '1'], '(0,5]: 1,5,5; (5,10]: 7; (75,100]: 100; > 10000: 20000');
  t.equal(p.count, '6');
  t.equal(p.sum, 20_118);
  t.equal(p.min, 1);
  t.equal(p.max, 20_000);
});

t.test('JSON: the same request as protobuf, with the spec’s field names', async (t) => {
  const batch = windowOf([series('hits', 'rate', 1.5, ['env:prod', 'service:shop']), series('temp', 'gauge', -2.25, ['canary'])], [sketch('latency', [1, 2, 3, 0])]);
  const proto = await exportOnce(t, { compression: 'none' }, batch);
  const json = await exportOnce(t, { protocol: 'http/json' }, batch);
  t.equal(json.req.headers['content-type'], 'application/json');
  t.equal(proto.req.headers['content-encoding'], undefined, 'compression none');
  const text = json.req.body.toString('utf8');
  for (const name of ['resourceMetrics', 'scopeMetrics', 'dataPoints', 'startTimeUnixNano', 'timeUnixNano', 'aggregationTemporality', 'isMonotonic', 'asDouble', 'exponentialHistogram', 'zeroCount', 'bucketCounts', 'stringValue']) {
    t.ok(text.includes(`"${name}"`), `camelCase ${name}`);
  }
  t.match(text, /"startTimeUnixNano":"\d+"/, 'fixed64 as a string');
  t.match(text, /"count":"4"/, 'histogram count as a string');
  t.match(text, /"aggregationTemporality":1/, 'enum as a number');
  t.notOk(/_[a-z]/.test(text.replace(/"(?:key|stringValue)":"[^"]*"/g, '').replace(/"name":"[^"]*"/g, '')), 'no snake_case field names');
  // The protobuf decoder leaves proto3 defaults out; JSON spells them. Compare with defaults dropped.
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        const keepZero = ['asDouble', 'stringValue', 'sum', 'min', 'max'].includes(k);
        if (Array.isArray(x) && x.length === 0) continue;
        if (!keepZero && (x === 0 || x === false || x === '0' || x === '' || x === undefined)) continue;
        out[k] = strip(x);
      }
      return out;
    }
    return v;
  };
  t.same(strip(JSON.parse(text)), strip(proto.req.request), 'JSON and protobuf say the same');
});
