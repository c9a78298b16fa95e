import t from 'tap';
import { randomBytes } from 'node:crypto';
import { AgentSketch, type SketchSeries } from '@metrics-distributor/core';
import { DEFAULT_LIMITS } from '../src/index.js';
import { TS, batch, gauge, makeSink, startFakeDatadog, type FakeDatadog } from './fake-datadog.js';

const names = (fake: FakeDatadog) => fake.series().map((s) => s['metric']);
const seriesReqs = (fake: FakeDatadog) => fake.accepted('/api/v2/series');

t.test('series: at most maxItems points per payload', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const { sink } = makeSink(fake, { limits: { series: { maxItems: 100 } } });
  const series = Array.from({ length: 250 }, (_, i) => gauge(`m.${i}`));
  t.same(await sink.export(batch({ series })), { code: 'success' });
  // Payloads go out concurrently, so their order is not fixed.
  t.same(seriesReqs(fake).map((r) => (r.json as { series: unknown[] }).series.length).sort((a, b) => b - a), [100, 100, 50]);
  t.same(names(fake).sort(), series.map((s) => s.metric).sort(), 'every series once');
  await sink.shutdown(Date.now() + 1000);
});

t.test('series: uncompressed bodies stay under the limit', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const { sink } = makeSink(fake, { limits: { series: { maxUncompressedBytes: 5000 } } });
  const series = Array.from({ length: 200 }, (_, i) => gauge(`metric.number.${i}`, [`k:${'v'.repeat(i % 50)}`]));
  t.same(await sink.export(batch({ series })), { code: 'success' });
  const reqs = seriesReqs(fake);
  t.ok(reqs.length >= 5, `split into ${reqs.length} payloads`);
  for (const r of reqs) t.ok(r.body.length <= 5000, `decoded body ${r.body.length} ≤ 5000`);
  t.same(names(fake).sort(), series.map((s) => s.metric).sort());
  await sink.shutdown(Date.now() + 1000);
});

t.test('series: a compressed body over the limit is re-split until every body fits', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  // Random tags barely compress, so the first size estimate (ratio 0.25) is wrong and bodies must be re-split.
  const { sink } = makeSink(fake, { limits: { series: { maxCompressedBytes: 1500 } } });
  const series = Array.from({ length: 120 }, (_, i) => gauge(`r.${i}`, [`rnd:${randomBytes(60).toString('base64')}`]));
  t.same(await sink.export(batch({ series })), { code: 'success' });
  const reqs = seriesReqs(fake);
  for (const r of reqs) t.ok(r.raw.length <= 1500, `compressed body ${r.raw.length} ≤ 1500`);
  // Without the re-split the first bodies (sized for a 0.25 ratio) would compress to well over 1,500 B.
  t.ok(reqs.every((r) => (r.json as { series: unknown[] }).series.length >= 2), 'bodies hold several items, not one each');
  t.same(names(fake).sort(), series.map((s) => s.metric).sort(), 'every series delivered exactly once');
  await sink.shutdown(Date.now() + 1000);
});

t.test('a single item too large for an empty payload is dropped, counted and logged; the rest goes', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const { sink, registry, log } = makeSink(fake, { limits: { series: { maxUncompressedBytes: 5000, maxCompressedBytes: 1000 } } });
  const tooBigRaw = gauge('too.big.raw', [`t:${'x'.repeat(6000)}`]);
  // Under the uncompressed limit but incompressible beyond the compressed one.
  const tooBigCompressed = gauge('too.big.compressed', [`t:${randomBytes(2000).toString('base64')}`]);
  const res = await sink.export(batch({ series: [gauge('a'), tooBigRaw, gauge('b'), tooBigCompressed, gauge('c')] }));
  t.equal(res.code, 'failure', 'the window lost items, so the export says so');
  t.same(names(fake).sort(), ['a', 'b', 'c']);
  t.equal(registry.component('sink-datadog').dropped('payload_too_large'), 2);
  t.equal(registry.component('sink-datadog-series').failed, 2);
  const lines = log.lines().filter((l) => String(l['msg']).includes('too large'));
  t.equal(lines.length, 1, 'one log line (rate-limited), the second one suppressed');
  t.equal(lines[0]!['item'], 'too.big.raw', 'the log names the metric');
  await sink.shutdown(Date.now() + 1000);
});

function bigSketch(metric: string, seed: number): SketchSeries {
  const s = new AgentSketch();
  // Values spread over many decades give hundreds of distinct bins.
  for (let i = 0; i < 600; i++) s.insert(Math.exp(((i * 7919 + seed) % 600) / 20) / 1000);
  return { metric, timestamp: TS, interval: 10, tags: ['env:prod'], host: 'web-1', sketch: s.toData() };
}

t.test('sketches: payloads split under the limits and every sketch arrives once', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const { sink } = makeSink(fake, { limits: { sketches: { maxUncompressedBytes: 20_000, maxCompressedBytes: 12_000 } } });
  const sketches = Array.from({ length: 40 }, (_, i) => bigSketch(`d.${i}`, i));
  t.ok(sketches[0]!.sketch.keys.length > 300, 'sketches have many bins');
  t.same(await sink.export(batch({ sketches })), { code: 'success' });
  const reqs = fake.accepted('/api/beta/sketches');
  t.ok(reqs.length >= 3, `${reqs.length} payloads`);
  for (const r of reqs) {
    t.ok(r.body.length <= 20_000 && r.raw.length <= 12_000, `${r.body.length} raw / ${r.raw.length} compressed`);
    t.equal(r.decodeError, undefined);
  }
  const got = fake.sketches();
  t.same(got.map((s) => s.metric).sort(), sketches.map((s) => s.metric).sort());
  const d7 = got.find((s) => s.metric === 'd.7')!.dogsketches[0]!;
  t.same(d7.k, sketches[7]!.sketch.keys);
  t.same(d7.n, sketches[7]!.sketch.counts);
  await sink.shutdown(Date.now() + 1000);
});

t.test('events go one per request; service checks split as JSON arrays', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const { sink } = makeSink(fake, { limits: { checks: { maxUncompressedBytes: 400 } } });
  const events = Array.from({ length: 3 }, (_, i) => ({ title: `e${i}`, text: 'x', timestampS: TS, host: 'h', priority: 'normal' as const, alertType: 'info' as const, tags: [] }));
  const serviceChecks = Array.from({ length: 10 }, (_, i) => ({ name: `check.${i}`, status: 0 as const, timestampS: TS, host: 'h', tags: ['a:b'] }));
  t.same(await sink.export(batch({ events, serviceChecks })), { code: 'success' });
  const ev = fake.accepted('/api/v1/events');
  t.same(ev.map((r) => (r.json as { title: string }).title).sort(), ['e0', 'e1', 'e2']);
  const checks = fake.accepted('/api/v1/check_run');
  t.ok(checks.length >= 3, `${checks.length} check payloads`);
  for (const r of checks) t.ok(r.body.length <= 400 && Array.isArray(r.json));
  t.same(checks.flatMap((r) => (r.json as { check: string }[]).map((c) => c.check)).sort(), serviceChecks.map((c) => c.name).sort());
  await sink.shutdown(Date.now() + 1000);
});

t.test('real limits: 25,000 series go in payloads of ≤ 10,000 points, ≤ 512,000 B compressed, ≤ 5,242,880 B raw', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const { sink } = makeSink(fake);
  const series = Array.from({ length: 25_000 }, (_, i) => gauge(`app.requests.${i % 500}`, [`shard:${i}`, 'env:prod', 'service:checkout']));
  t.same(await sink.export(batch({ series })), { code: 'success' });
  const reqs = seriesReqs(fake);
  t.ok(reqs.length >= 3, `${reqs.length} payloads`);
  for (const r of reqs) {
    const n = (r.json as { series: unknown[] }).series.length;
    t.ok(n <= DEFAULT_LIMITS.series.maxItems && r.raw.length <= 512_000 && r.body.length <= 5_242_880, `${n} series, ${r.raw.length} B compressed, ${r.body.length} B raw`);
  }
  t.equal(fake.series().length, 25_000);
  await sink.shutdown(Date.now() + 1000);
});
