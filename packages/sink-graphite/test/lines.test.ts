import t from 'tap';
import { AgentSketch, Aggregator, silentLogger, type MetricBatch, type SinkDropReason } from '@metrics-distributor/core';
import { LineEncoder } from '../src/lines.js';
import { sanitizeName } from '../src/names.js';
import { resolveOptions, type GraphiteSinkOptions } from '../src/options.js';
import { batch, point, sketch } from './helpers.js';

const W = 1_700_000_000_000;
const TS = W / 1000;

function encode(b: MetricBatch, opts: GraphiteSinkOptions = {}): { lines: string[]; losses: [SinkDropReason, number, string][]; payloads: number } {
  const enc = new LineEncoder(resolveOptions(opts));
  const losses: [SinkDropReason, number, string][] = [];
  const lines: string[] = [];
  let payloads = 0;
  for (const p of enc.payloads(b, { lose: (r, n, s) => losses.push([r, n, s]) })) {
    if (p === null) continue;
    payloads++;
    const text = p.body.toString('utf8');
    t.ok(text.endsWith('\n'), 'a payload holds whole lines');
    const ls = text.slice(0, -1).split('\n');
    t.equal(ls.length, p.lines, 'the payload counts its lines');
    lines.push(...ls);
  }
  return { lines, losses, payloads };
}

t.test('etsy legacy names by default: stats.<name> rate, stats_counts.<name> count, stats.gauges', async (t) => {
  const { lines } = encode(
    batch(W, [point(W, 'req', 'rate', 0.3), point(W, 'done', 'count', 7), point(W, 'temp', 'gauge', -1.5)]),
  );
  t.same(lines, [`stats.req 0.3 ${TS}`, `stats_counts.req 3 ${TS}`, `stats.done 0.7 ${TS}`, `stats_counts.done 7 ${TS}`, `stats.gauges.temp -1.5 ${TS}`]);
});

t.test('legacy namespace off: etsy modern names with prefixes and the global suffix', async (t) => {
  const b = batch(W, [point(W, 'req', 'rate', 2), point(W, 'temp', 'gauge', 1)]);
  t.same(encode(b, { legacyNamespace: false }).lines, [`stats.counters.req.rate 2 ${TS}`, `stats.counters.req.count 20 ${TS}`, `stats.gauges.temp 1 ${TS}`]);
  t.same(encode(b, { legacyNamespace: false, globalPrefix: 'app', prefixCounter: 'c', prefixGauge: '', globalSuffix: 'web1', flushCounts: false }).lines, [
    `app.c.req.rate.web1 2 ${TS}`,
    `app.temp.web1 1 ${TS}`,
  ]);
  // As in etsy, legacy names keep the global prefix (not for counts) and the suffix, and ignore the per-type prefixes.
  t.same(encode(b, { globalPrefix: 'app', prefixGauge: 'g', globalSuffix: 'web1' }).lines, [`app.req.web1 2 ${TS}`, `stats_counts.req.web1 20 ${TS}`, `app.gauges.temp.web1 1 ${TS}`]);
});

t.test('sets from the real aggregator become etsy sets (stats.sets.<name>.count), gauges stay gauges', async (t) => {
  const agg = new Aggregator({ flushIntervalMs: 10_000, hostname: 'h1', selfMetrics: false, logger: silentLogger() });
  agg.ingestStatsd(Buffer.from(['users:a|s', 'users:b|s', 'users:a|s', 'seen.max:x|s', 'q:3|g', 'ips:1.2.3.4|s|#env:prod'].join('\n')));
  const b = agg.closeWindow();
  const ts = Math.floor(b.windowStartMs / 1000);
  t.same(encode(b).lines.sort(), [`stats.gauges.q 3 ${ts}`, `stats.sets.ips.count;env=prod 1 ${ts}`, `stats.sets.seen.max.count 1 ${ts}`, `stats.sets.users.count 2 ${ts}`]);
  t.same(encode(b, { legacyNamespace: false, globalPrefix: 'app', prefixSet: 'uniq', prefixGauge: 'g', tagMode: 'drop' }).lines.sort(), [
    `app.g.q 3 ${ts}`,
    `app.uniq.ips.count 1 ${ts}`,
    `app.uniq.seen.max.count 1 ${ts}`,
    `app.uniq.users.count 2 ${ts}`,
  ]);
});

t.test('histograms from the real aggregator become etsy timers; a lone counter named x.count stays a counter', async (t) => {
  const agg = new Aggregator({ flushIntervalMs: 10_000, hostname: 'h1', selfMetrics: false, logger: silentLogger() });
  agg.ingestStatsd(Buffer.from(['rt:10|ms', 'rt:20|ms', 'rt:30|ms', 'rt:40|ms', 'jobs.count:5|c', 'q:3|g'].join('\n')));
  const b = agg.closeWindow();
  const ts = Math.floor(b.windowStartMs / 1000);
  const { lines } = encode(b);
  t.same(lines.sort(), [
    `stats.gauges.q 3 ${ts}`,
    `stats.jobs.count 0.5 ${ts}`,
    `stats.timers.rt.count 4 ${ts}`,
    `stats.timers.rt.count_ps 0.4 ${ts}`,
    `stats.timers.rt.mean 25 ${ts}`,
    `stats.timers.rt.median 20 ${ts}`,
    `stats.timers.rt.upper 40 ${ts}`,
    `stats.timers.rt.upper_95 40 ${ts}`,
    `stats_counts.jobs.count 5 ${ts}`,
  ]);
  await agg.close();
});

t.test('tags: Graphite 1.1 tags by default, folded into the name, or dropped; host only on request', async (t) => {
  const s = point(W, 'req', 'gauge', 1, { tags: ['env:prod', 'az:b c', 'canary', 'name:x', 'v:~1;2'], host: 'web-1' });
  t.same(encode(batch(W, [s])).lines, [`stats.gauges.req;_name=x;az=b_c;canary=true;env=prod;v=_1_2 1 ${TS}`]);
  t.same(encode(batch(W, [s]), { hostTag: true, tagMode: 'graphite' }).lines, [`stats.gauges.req;_name=x;az=b_c;canary=true;env=prod;host=web-1;v=_1_2 1 ${TS}`]);
  t.same(encode(batch(W, [s]), { tagMode: 'name' }).lines, [`stats.gauges.req.az_b_c.canary_true.env_prod.name_x.v_12 1 ${TS}`]);
  t.same(encode(batch(W, [s]), { tagMode: 'drop' }).lines, [`stats.gauges.req 1 ${TS}`]);
  // Two values of one tag name stay apart from either alone.
  t.same(encode(batch(W, [point(W, 'a', 'gauge', 1, { tags: ['env:a', 'env:b'] })])).lines, [`stats.gauges.a;env=a,b 1 ${TS}`]);
});

t.test('names are sanitised as etsy does; empty names, clashes, events and checks are counted', async (t) => {
  t.equal(sanitizeName('a b/c:d..e.'), 'a_b-cd.e');
  t.equal(sanitizeName('ok.name-1_x'), 'ok.name-1_x');
  const { lines, losses } = encode(
    batch(W, [point(W, 'a b', 'gauge', 1), point(W, 'a_b', 'gauge', 2), point(W, '::', 'gauge', 3), point(W, 'n', 'gauge', Number.NaN)], {
      events: [{ title: 'deploy', text: '', timestampS: TS, priority: 'normal', alertType: 'info', tags: [] }],
      serviceChecks: [{ name: 'db', status: 0, timestampS: TS, tags: [] }],
    }),
  );
  t.same(lines, [`stats.gauges.a_b 1 ${TS}`]);
  t.same(losses, [
    ['name_clash', 1, 'stats.gauges.a_b'],
    ['bad_name', 1, '::'],
    ['invalid_value', 1, 'n'],
    ['unsupported', 2, 'event: deploy'],
  ]);
});

t.test('distributions become timers with exact count, sum, bounds and sketch percentiles', async (t) => {
  const sk = new AgentSketch();
  for (let v = 1; v <= 100; v++) sk.insert(v);
  const { lines } = encode(batch(W, [], { sketches: [sketch(W, 'lat', sk.toData())] }));
  const byName = new Map(lines.map((l) => [l.split(' ')[0]!, Number(l.split(' ')[1])]));
  t.equal(byName.get('stats.timers.lat.count'), 100);
  t.equal(byName.get('stats.timers.lat.count_ps'), 10);
  t.equal(byName.get('stats.timers.lat.lower'), 1);
  t.equal(byName.get('stats.timers.lat.upper'), 100);
  t.equal(byName.get('stats.timers.lat.sum'), 5050);
  t.equal(byName.get('stats.timers.lat.mean'), 50.5);
  t.ok(Math.abs(byName.get('stats.timers.lat.median')! - 50) / 50 < 0.03, 'median within the sketch accuracy');
  t.ok(Math.abs(byName.get('stats.timers.lat.upper_95')! - 95) / 95 < 0.03, 'p95 within the sketch accuracy');
});

t.test('payloads are cut at whole lines near maxPayloadBytes', async (t) => {
  const series = Array.from({ length: 1000 }, (_, i) => point(W, `m${i}`, 'gauge', i));
  const { lines, payloads } = encode(batch(W, series), { maxPayloadBytes: 1024 });
  t.equal(lines.length, 1000);
  t.ok(payloads > 20, `${payloads} payloads`);
  t.equal(new Set(lines).size, 1000);
});

t.test('options are checked', async (t) => {
  t.throws(() => resolveOptions({ port: 70000 }), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => resolveOptions({ globalPrefix: 'a b' }), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => resolveOptions({ tagMode: 'x' as never }), { code: 'MD_ERR_CONFIG_INVALID' });
  t.equal(resolveOptions({}).port, 2003);
});
