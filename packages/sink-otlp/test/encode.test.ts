/**
 * A window much larger than one slice and one request, through the sink to the stand-in collector:
 * every point decoded (official protos, or JSON.parse) and compared, value by value, with what the
 * mapping rules say it must be, computed here from the batch on its own.
 */
import t, { type Test } from 'tap';
import { OtlpSink, type OtlpSinkOptions } from '../src/index.js';
import { startCollector, testContext, type Received } from './collector.js';
import { attrs, metricsOf, type DataPoint } from './decode.js';
import { END_NS, START_NS, countTurns, expectedIndex, series, sketch, windowOf } from './helpers.js';
import type { MetricBatch, Series, SketchSeries } from '@metrics-distributor/core';

const SERIES = 6000;
const SKETCHES = 400;

/** A window of sums, gauges and distributions over 3 hosts, some with a service, names shared by several items. */
function bigWindow(): MetricBatch {
  const items: Series[] = [];
  for (let i = 0; i < SERIES; i++) {
    const host = ['web-1', 'web-2', ''][i % 3]!;
    const tags = [`i:${i}`, 'env:prod', ...(i % 5 === 0 ? ['service:shop'] : []), ...(i % 7 === 0 ? ['canary', 'env:staging'] : [])];
    const name = `m.${i % 50}`;
    if (i % 4 === 0) items.push(series(name, 'rate', (i % 13) / 10, tags, host));
    else if (i % 4 === 1) items.push(series(`${name}.count`, 'count', i % 997, tags, host));
    else if (i % 4 === 2) items.push(series(name, 'gauge', i % 2 === 0 ? -i / 8 : i * 1.5, tags, host));
    // A decrement: alone under its name, so its Sum's monotonicity is its own.
    else items.push(series(`neg.${i}`, 'count', -(i % 9) - 1, tags, host));
  }
  const sketches: SketchSeries[] = [];
  for (let i = 0; i < SKETCHES; i++) sketches.push(sketch(`d.${i % 20}`, [i, i + 0.5, 2 * i, 0, -(i % 3)], [`i:${i}`], ['web-1', 'web-2'][i % 2]));
  return windowOf(items, sketches);
}

/** What one point must decode to. */
interface Expected {
  value?: number;
  monotonic?: boolean;
  sketch?: SketchSeries;
}

/** The decoded point's identity: resource, metric name and type, attributes. */
const keyOf = (resource: Record<string, string | undefined>, name: string, kind: string, a: Record<string, string | undefined>) => JSON.stringify([resource, name, kind, a]);

/** The mapping rules, from the README, applied to each item on its own. */
function expected(batch: MetricBatch): Map<string, Expected> {
  const out = new Map<string, Expected>();
  const split = (tags: readonly string[], host: string) => {
    const resource: Record<string, string> = {};
    if (host !== '') resource['host.name'] = host;
    const a: Record<string, string> = {};
    for (const tag of tags) {
      const [k, ...rest] = tag.split(':');
      const v = rest.join(':');
      if (k === 'service' && resource['service.name'] === undefined && v !== '') resource['service.name'] = v;
      else if (a[k!] === undefined) a[k!] = v;
    }
    return { resource, a };
  };
  for (const s of batch.series) {
    const { resource, a } = split(s.tags, s.host);
    const value = s.type === 'rate' ? Math.round(s.value * s.interval) : s.value;
    const kind = s.type === 'gauge' ? 'gauge' : 'sum';
    out.set(keyOf(resource, s.metric, kind, a), { value, ...(kind === 'sum' ? { monotonic: value >= 0 } : {}) });
  }
  for (const s of batch.sketches) {
    const { resource, a } = split(s.tags, s.host);
    out.set(keyOf(resource, s.metric, 'exponentialHistogram', a), { sketch: s });
  }
  return out;
}

function checkSketch(t: Test, p: DataPoint, s: SketchSeries): void {
  const d = s.sketch;
  t.equal(p.count, String(d.count));
  t.equal(p.sum, d.sum);
  t.equal(p.min, d.min);
  t.equal(p.max, d.max);
  const want = { pos: new Map<number, number>(), neg: new Map<number, number>(), zero: 0 };
  d.keys.forEach((k, i) => {
    if (k === 0) want.zero += d.counts[i]!;
    else {
      const side = k > 0 ? want.pos : want.neg;
      const idx = expectedIndex(Math.abs(k));
      side.set(idx, (side.get(idx) ?? 0) + d.counts[i]!);
    }
  });
  const read = (b: DataPoint['positive']) => {
    const m = new Map<number, number>();
    (b?.bucketCounts ?? []).forEach((c, i) => Number(c) !== 0 && m.set((b?.offset ?? 0) + i, Number(c)));
    return m;
  };
  t.same([...read(p.positive)], [...want.pos], 'positive buckets');
  t.same([...read(p.negative)], [...want.neg], 'negative buckets');
  t.equal(Number(p.zeroCount ?? 0), want.zero, 'zero count');
}

/** Exports the big window with `opts`, counting the event loop's turns meanwhile; checks every point. */
async function exportAndCheck(t: Test, opts: Partial<OtlpSinkOptions>): Promise<Received[]> {
  const col = await startCollector();
  t.teardown(col.close);
  const context = testContext();
  const sink = new OtlpSink({ endpoint: col.endpoint, sliceMs: 0, ...opts }, context);
  t.teardown(() => sink.shutdown(Date.now() + 1000));
  const batch = bigWindow();
  const turns = countTurns();
  t.same(await sink.export(batch), { code: 'success' });
  const n = turns.stop();
  const total = SERIES + SKETCHES;
  t.equal(col.received.length, Math.ceil(total / 2000), 'requests of at most maxPointsPerRequest (2000) points');
  // With sliceMs 0 the sink yields every 32 points while planning and again while encoding.
  t.ok(n >= total / 32, `the event loop turned ${n} times during the export: requests are cut into slices`);
  t.equal(context.stats.sent, total);
  t.equal(context.stats.received, total);

  const want = expected(batch);
  const seen = new Set<string>();
  let shared = 0;
  for (const r of col.received) {
    const metricsPerRequest = new Set<string>();
    for (const { resource, metric } of metricsOf(r.request)) {
      const kind = Object.keys(metric).find((k) => k !== 'name')!;
      const group = JSON.stringify([resource, metric.name, kind]);
      t.notOk(metricsPerRequest.has(group), `one Metric per resource, name and type in a request (${group})`);
      metricsPerRequest.add(group);
      const data = metric.gauge ?? metric.sum ?? metric.exponentialHistogram!;
      if (data.dataPoints.length > 1) shared++;
      for (const p of data.dataPoints) {
        const key = keyOf(resource, metric.name, kind, attrs(p.attributes));
        const w = want.get(key);
        if (w === undefined || seen.has(key)) {
          t.fail(`unexpected or repeated point ${key}`);
          continue;
        }
        seen.add(key);
        if (p.startTimeUnixNano !== START_NS || p.timeUnixNano !== END_NS) t.fail(`times of ${key}`);
        if (w.sketch !== undefined) checkSketch(t, p, w.sketch);
        else if (p.asDouble !== w.value) t.fail(`value of ${key}: ${p.asDouble} ≠ ${w.value}`);
        if (w.monotonic !== undefined && (metric.sum!.isMonotonic ?? false) !== w.monotonic) t.fail(`monotonicity of ${key}`);
        if (metric.sum !== undefined && metric.sum.aggregationTemporality !== 1) t.fail(`temporality of ${key}`);
      }
    }
  }
  t.equal(seen.size, want.size, 'every item of the window arrived exactly once, as the mapping says');
  t.ok(shared > 0, 'metrics shared by several items are grouped');
  return col.received;
}

t.test('protobuf: a window of many slices and requests, every point exact', async (t) => {
  const received = await exportAndCheck(t, {});
  t.equal(received[0]!.headers['content-type'], 'application/x-protobuf');
});

t.test('JSON: the same window, every point exact', async (t) => {
  const received = await exportAndCheck(t, { protocol: 'http/json', compression: 'none' });
  t.equal(received[0]!.headers['content-type'], 'application/json');
  t.equal(received[0]!.headers['content-encoding'], undefined);
});

t.test('points that cannot be sent are dropped as invalid_value, the rest of their request is sent', async (t) => {
  const col = await startCollector();
  t.teardown(col.close);
  const context = testContext();
  const sink = new OtlpSink({ endpoint: col.endpoint, sliceMs: 0 }, context);
  t.teardown(() => sink.shutdown(Date.now() + 1000));
  const broken = sketch('d.broken', [1, 2]);
  const batch = windowOf(
    [series('ok', 'gauge', 1), series('nan', 'gauge', NaN), series('inf', 'rate', Infinity)],
    [sketch('d.ok', [3]), { ...broken, sketch: { ...broken.sketch, counts: [] } }],
  );
  t.equal((await sink.export(batch)).code, 'failure', 'the window lost points');
  t.equal(context.stats.dropped('invalid_value'), 3);
  t.equal(context.stats.received, 5);
  t.same(
    col.received.flatMap((r) => metricsOf(r.request).map((m) => m.metric.name)).sort(),
    ['d.ok', 'ok'],
    'the valid points arrive',
  );
});
