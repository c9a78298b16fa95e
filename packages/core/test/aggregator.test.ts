import t, { type Test } from 'tap';
import { Aggregator } from '../src/aggregator.js';
import { normalizeTags } from '../src/tags.js';
import { alignWindow } from '../src/window-store.js';
import type { MetricBatch, Series } from '../src/model.js';
import { InMemorySink } from '../src/testing.js';
import { silentLogger } from '../src/logger.js';

const T0 = 1_700_000_000_000; // aligned to 10 s

function clock(start = T0 + 1234) {
  const c = { now: start, fn: () => c.now };
  return c;
}

function find(batch: MetricBatch, metric: string, tag?: string): Series[] {
  return batch.series.filter((s) => s.metric === metric && (tag === undefined || s.tags.includes(tag)));
}

function one(t: Test, batch: MetricBatch, metric: string, tag?: string): Series {
  const found = find(batch, metric, tag);
  t.equal(found.length, 1, `exactly one ${metric}`);
  return found[0]!;
}

function agg(opts: ConstructorParameters<typeof Aggregator>[0] = {}) {
  const c = clock();
  const a = new Aggregator({ hostname: 'h1', now: c.fn, selfMetrics: false, ...opts });
  return { a, c };
}

const feed = (a: Aggregator, text: string) => a.ingestStatsd(Buffer.from(text));

t.test('windows align to the wall clock and points carry the window start', async (t) => {
  t.equal(alignWindow(T0 + 9999, 10_000), T0);
  t.equal(alignWindow(T0 + 10_000, 10_000), T0 + 10_000);
  const { a, c } = agg();
  t.equal(a.currentWindowStart, T0);
  feed(a, 'hits:1|c');
  c.now = T0 + 10_001;
  const b = a.closeWindow();
  t.equal(b.windowStartMs, T0);
  t.equal(one(t, b, 'hits').timestamp, T0 / 1000);
  t.equal(a.currentWindowStart, T0 + 10_000);
  const { a: a2 } = agg({ flushIntervalMs: 500 });
  t.equal(a2.currentWindowStart, alignWindow(T0 + 1234, 500));
});

t.test('counter: sum of value/rate flushed as a per-second rate with interval', async (t) => {
  const { a } = agg();
  for (let i = 0; i < 30; i++) feed(a, 'page.views:1|c');
  feed(a, 'page.views:1|c|@0.5');
  const s = one(t, a.closeWindow(), 'page.views');
  t.same(s, { metric: 'page.views', type: 'rate', timestamp: T0 / 1000, value: 3.2, interval: 10, tags: [], host: 'h1' });
});

t.test('counter as count', async (t) => {
  const { a } = agg({ countersAs: 'count' });
  feed(a, 'x:2|c\nx:3|c|@0.5');
  const s = one(t, a.closeWindow(), 'x');
  t.equal(s.type, 'count');
  t.equal(s.value, 8);
});

t.test('idle counters report 0 until counterExpiryMs, then disappear', async (t) => {
  const { a, c } = agg({ counterExpiryMs: 30_000 });
  feed(a, 'c1:5|c');
  c.now += 10_000;
  t.equal(one(t, a.closeWindow(), 'c1').value, 0.5);
  for (let w = 1; w <= 2; w++) {
    c.now += 10_000;
    const s = one(t, a.closeWindow(), 'c1');
    t.equal(s.value, 0, `zero in idle window ${w}`);
  }
  c.now += 10_000;
  t.equal(find(a.closeWindow(), 'c1').length, 0, 'expired after 30 s');
  t.equal(a.contextCount, 0);
});

t.test('gauge: last value; idle gauges vanish at once', async (t) => {
  const { a, c } = agg();
  feed(a, 'g:1|g\ng:7|g\ng:3|g|@0.1');
  t.equal(one(t, a.closeWindow(), 'g').value, 3);
  c.now += 10_000;
  t.equal(find(a.closeWindow(), 'g').length, 0);
  t.equal(a.contextCount, 0);
});

t.test('gauge deltas are off by default (agent parity) and Etsy-style when enabled', async (t) => {
  const { a } = agg();
  feed(a, 'g:10|g\ng:+4|g');
  t.equal(one(t, a.closeWindow(), 'g').value, 4, 'plus sign just sets');
  const { a: b } = agg({ gaugeDeltas: true });
  feed(b, 'g:-3|g'); // no gauge yet: sets
  feed(b, 'g:10|g\ng:+4|g\ng:-2|g');
  t.equal(one(t, b.closeWindow(), 'g').value, 12);
  feed(b, 'g:+1|g'); // next window builds on the live context's last value
  t.equal(one(t, b.closeWindow(), 'g').value, 13);
});

t.test('set: distinct members as a gauge marked as a set', async (t) => {
  const { a } = agg();
  feed(a, 'users:alice|s\nusers:bob|s\nusers:alice|s\nusers:a:b|s\nlevel:3|g\nhits:1|c');
  a.set('users', 'carol');
  const batch = a.closeWindow();
  const s = one(t, batch, 'users');
  t.equal(s.type, 'gauge');
  t.equal(s.value, 4);
  t.equal(s.statsdType, 's');
  t.equal(one(t, batch, 'level').statsdType, undefined, 'a gauge is not marked');
  t.equal(one(t, batch, 'hits').statsdType, undefined, 'a counter is not marked');
});

t.test('histogram and timer: the agent worked example', async (t) => {
  const { a } = agg();
  for (let i = 1; i <= 10; i++) feed(a, `lat:${i}|ms`);
  for (let i = 1; i <= 5; i++) feed(a, `five:${i}|h`);
  const b = a.closeWindow();
  t.equal(one(t, b, 'lat.max').value, 10);
  t.equal(one(t, b, 'lat.median').value, 5);
  t.equal(one(t, b, 'lat.avg').value, 5.5);
  const count = one(t, b, 'lat.count');
  t.equal(count.type, 'rate');
  t.equal(count.value, 1);
  t.equal(one(t, b, 'lat.95percentile').value, 10);
  t.equal(one(t, b, 'five.median').value, 3);
  t.equal(one(t, b, 'five.95percentile').value, 5);
  t.equal(find(b, 'lat.min').length, 0, 'min is not a default aggregate');
});

t.test('histogram aggregates and percentiles are configurable', async (t) => {
  const { a } = agg({ histogramAggregates: ['min', 'sum', 'count'], histogramPercentiles: [0.5, 0.99], countersAs: 'count' });
  for (let i = 1; i <= 100; i++) feed(a, `h:${i}|h`);
  const b = a.closeWindow();
  t.equal(one(t, b, 'h.min').value, 1);
  t.equal(one(t, b, 'h.sum').value, 5050);
  t.equal(one(t, b, 'h.count').type, 'count');
  t.equal(one(t, b, 'h.count').value, 100);
  t.equal(one(t, b, 'h.50percentile').value, 50);
  t.equal(one(t, b, 'h.99percentile').value, 99);
  t.equal(find(b, 'h.max').length, 0);
  t.throws(() => new Aggregator({ histogramPercentiles: [1.5] }), { code: 'MD_ERR_CONFIG_INVALID' });
});

t.test('distribution: one agent sketch per context per window', async (t) => {
  const { a } = agg();
  feed(a, 'd:1:2:3|d\nd:4|d|@0.5');
  const b = a.closeWindow();
  t.equal(b.sketches.length, 1);
  const sk = b.sketches[0]!;
  t.equal(sk.metric, 'd');
  t.equal(sk.timestamp, T0 / 1000);
  t.equal(sk.sketch.count, 5);
  t.equal(sk.sketch.min, 1);
  t.equal(sk.sketch.max, 4);
  t.equal(sk.sketch.sum, 14);
  t.same(sk.sketch.keys, [1338, 1383, 1409, 1427]);
  t.same(sk.sketch.counts, [1, 1, 1, 2]);
});

t.test('contexts: name + host + de-duplicated, order-independent tags; host: tag overrides the host', async (t) => {
  const { a } = agg();
  feed(a, 'x:1|c|#b:2,a:1\nx:1|c|#a:1,b:2,a:1\nx:1|c|#a:1,b:2,host:web-2\nx:1|c');
  const b = a.closeWindow();
  const all = find(b, 'x');
  t.equal(all.length, 3);
  const ab = all.find((s) => s.host === 'h1' && s.tags.length === 2)!;
  t.same(ab.tags, ['a:1', 'b:2']);
  t.equal(ab.value, 0.2);
  const web2 = all.find((s) => s.host === 'web-2')!;
  t.same(web2.tags, ['a:1', 'b:2'], 'host: tag removed from tags');
  t.same(normalizeTags(['z', 'a', 'z', 'host:q', 'dd.internal.card:low'], ['env:prod']), { tags: ['a', 'env:prod', 'z'], host: 'q' });
});

t.test('global tags are added to every series', async (t) => {
  const { a } = agg({ globalTags: ['env:prod'] });
  feed(a, 'x:1|c|#a:1');
  t.same(one(t, a.closeWindow(), 'x').tags, ['a:1', 'env:prod']);
});

t.test('timestamped gauges and counters skip windowing; other types are dropped and counted', async (t) => {
  const { a } = agg();
  feed(a, 'tg:5|g|T1656581400\ntc:20|c|#env:dev|T1656581400\nth:1|h|T1656581400\nts:a|s|T1656581400');
  const b = a.closeWindow();
  t.same(one(t, b, 'tg'), { metric: 'tg', type: 'gauge', timestamp: 1656581400, value: 5, interval: 10, tags: [], host: 'h1' });
  t.same(one(t, b, 'tc'), { metric: 'tc', type: 'rate', timestamp: 1656581400, value: 2, interval: 10, tags: ['env:dev'], host: 'h1' });
  t.equal(find(b, 'th.max').length, 0);
  t.equal(a.stats.component('aggregator').dropped('timestamped_type'), 2);
});

t.test('NaN and Inf are dropped and counted', async (t) => {
  const { a } = agg();
  feed(a, 'x:nan|g\nx:inf|c\nx:1|h\ny:-Infinity|h');
  a.gauge('z', Number.NaN);
  const b = a.closeWindow();
  t.equal(find(b, 'x').length, 0);
  t.equal(one(t, b, 'x.max').value, 1);
  t.equal(a.stats.component('aggregator').dropped('non_finite'), 4);
});

t.test('maxContexts: new contexts beyond the limit are dropped and counted, existing ones keep flowing', async (t) => {
  const { a } = agg({ maxContexts: 3 });
  for (let i = 0; i < 10; i++) feed(a, `m${i}:1|c`);
  feed(a, 'm0:1|c');
  const b = a.closeWindow();
  t.equal(b.series.length, 3);
  t.equal(one(t, b, 'm0').value, 0.2);
  t.equal(a.stats.component('aggregator').dropped('max_contexts'), 7);
  t.equal(a.contextCount, 3);
});

t.test('bad lines are counted per front-end and good lines around them still count', async (t) => {
  const { a } = agg();
  const stats = a.stats.component('test-fe');
  const r = a.target({ stats, logger: silentLogger() });
  r.statsd(Buffer.from('ok:1|c\ngarbage\nok:1|c|@zz\nok:2|c\n\n'));
  t.equal(stats.packets, 1);
  t.equal(stats.received, 4);
  t.equal(stats.bad, 2);
  t.equal(stats.parsed, 2);
  t.equal(one(t, a.closeWindow(), 'ok').value, 0.3);
});

t.test('events and service checks pass through with host and tags resolved', async (t) => {
  const { a, c } = agg({ globalTags: ['env:prod'] });
  feed(a, '_e{5,4}:title|text|#b,a,host:evhost\n_sc|db|2|#x|m:down');
  const b = a.closeWindow();
  t.equal(b.events.length, 1);
  t.equal(b.events[0]!.host, 'evhost');
  t.same(b.events[0]!.tags, ['a', 'b', 'env:prod']);
  t.equal(b.events[0]!.timestampS, Math.floor(c.now / 1000));
  t.equal(b.serviceChecks.length, 1);
  t.equal(b.serviceChecks[0]!.host, 'h1');
  t.equal(b.serviceChecks[0]!.message, 'down');
  t.equal(b.serviceChecks[0]!.status, 2);
});

t.test('self-metrics: per-component deltas as ordinary metrics each window', async (t) => {
  const { a, c } = agg({ selfMetrics: true });
  const r = a.target({ stats: a.stats.component('statsd-udp'), logger: silentLogger() });
  r.statsd(Buffer.from('a:1|c\nbad'));
  const b = a.closeWindow();
  t.equal(one(t, b, 'metrics_distributor.packets', 'component:statsd-udp').value, 0.1);
  t.equal(one(t, b, 'metrics_distributor.bad', 'component:statsd-udp').value, 0.1);
  t.equal(one(t, b, 'metrics_distributor.received', 'component:statsd-udp').value, 0.2);
  t.equal(one(t, b, 'metrics_distributor.contexts', 'component:aggregator').type, 'gauge');
  t.equal(find(b, 'metrics_distributor.late_lines').length, 0, 'a named counter appears once used');
  a.stats.component('statsd-udp').count('late_lines', 2);
  r.statsd(Buffer.from('a:1|c\na:1|c'));
  c.now += 10_000;
  const b2 = a.closeWindow();
  t.equal(one(t, b2, 'metrics_distributor.received', 'component:statsd-udp').value, 0.2, 'a delta, not a total');
  t.equal(one(t, b2, 'metrics_distributor.bad', 'component:statsd-udp').value, 0, 'idle self counter reports 0');
  t.equal(one(t, b2, 'metrics_distributor.late_lines', 'component:statsd-udp').value, 0.2, 'named counters are emitted per component');
});

t.test('embedding API: record in-process and attach a sink', async (t) => {
  const { a } = agg();
  const sink = new InMemorySink();
  a.addSink(sink);
  a.increment('req', 1, ['route:/a']);
  a.increment('req', 2, ['route:/a']);
  a.gauge('temp', 21.5);
  a.histogram('size', 10);
  a.timing('t', 5);
  a.distribution('d', 1);
  a.set('s', 1);
  a.ingestStatsd(Buffer.from('raw:1|c'));
  const next = sink.next();
  a.closeWindow();
  await next;
  const b = sink.batches[0]!;
  t.equal(one(t, b, 'req', 'route:/a').value, 0.3);
  t.equal(one(t, b, 'temp').value, 21.5);
  t.equal(one(t, b, 'size.max').value, 10);
  t.equal(one(t, b, 't.avg').value, 5);
  t.equal(one(t, b, 's').value, 1);
  t.equal(one(t, b, 'raw').value, 0.1);
  t.equal(b.sketches.length, 1);
});

t.test('close() flushes the partial window to sinks and is idempotent', async (t) => {
  const { a } = agg();
  const sink = new InMemorySink();
  a.addSink(sink);
  feed(a, 'late:1|c');
  const batch = await a.close(Date.now() + 1000);
  t.ok(batch);
  t.equal(sink.batches.length, 1);
  t.equal(one(t, sink.batches[0]!, 'late').value, 0.1);
  t.equal(await a.close(), undefined);
});

t.test('start() flushes on the wall-clock boundary with the real clock', async (t) => {
  const a = new Aggregator({ flushIntervalMs: 200, selfMetrics: false, hostname: 'h' });
  const sink = new InMemorySink();
  a.addSink(sink);
  a.start();
  a.increment('tick');
  await sink.next();
  const b = sink.batches[0]!;
  t.equal(b.windowStartMs % 200, 0);
  t.ok(Date.now() >= b.windowStartMs + 200, 'closed only after the window ended');
  t.equal(one(t, b, 'tick').value, 5);
  await a.close();
});

t.test('maxEventsPerWindow bounds events plus service checks per window, and counts the rest', async (t) => {
  const { a } = agg({ maxEventsPerWindow: 2 });
  feed(a, '_e{1,1}:a|b\n_sc|c|0\n_e{1,1}:x|y\n_sc|d|1');
  const b = a.closeWindow();
  t.equal(b.events.length + b.serviceChecks.length, 2);
  t.equal(a.stats.component('aggregator').dropped('max_events'), 2);
  feed(a, '_e{1,1}:a|b');
  t.equal(a.closeWindow().events.length, 1, 'the bound is per window');
});

t.test('closeWindowAsync builds big windows in chunks while the next window already ingests', async (t) => {
  const { a, c } = agg({ counterExpiryMs: 60_000 });
  const sink = new InMemorySink();
  a.addSink(sink);
  // Enough for a build of several 1 ms slices even on a fast machine.
  const N = 60_000;
  const names = Array.from({ length: N }, (_, i) => `k${i}:1|c`);
  for (let i = 0; i < N; i += 100) feed(a, names.slice(i, i + 100).join('\n'));
  feed(a, 'idle.before:1|c');
  c.now += 10_000;
  a.closeWindow(); // window 1: everything, then window 2 has idle.before idle -> zero-filled below
  feed(a, 'k0:5|c');
  c.now += 10_000;
  let ticks = 0;
  let ticking = true;
  const tick = () => {
    ticks++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const pending = a.closeWindowAsync();
  // Samples arriving while the batch is built belong to the next window.
  feed(a, 'k0:7|c\nidle.before:2|c');
  const b = await pending;
  ticking = false;
  t.ok(ticks > 0, `the event loop ran while the window was built (${ticks} turns)`);
  t.equal(one(t, b, 'k0').value, 0.5, 'the closed window holds exactly its own samples');
  t.equal(find(b, 'k1')[0]?.value, 0, 'idle counters are zero-filled');
  t.equal(find(b, 'idle.before').length, 0, 'a counter busy again in the next window is not zero-filled into this one');
  t.equal(b.series.length, N, 'k0 plus N-1 zero-filled counters');
  c.now += 10_000;
  const b3 = a.closeWindow();
  t.equal(one(t, b3, 'k0').value, 0.7);
  t.equal(one(t, b3, 'idle.before').value, 0.2);
  t.same(sink.batches.map((x) => x.windowStartMs), [T0, T0 + 10_000, T0 + 20_000], 'every window reached the sink, in order');
});

t.test('maxContexts: self-metrics still get through when user metrics fill the table (system-test regression)', async (t) => {
  const { a } = agg({ maxContexts: 3, selfMetrics: true });
  for (let i = 0; i < 10; i++) feed(a, `m${i}:1|c`);
  const b = a.closeWindow();
  t.equal(b.series.filter((s) => /^m\d+$/.test(s.metric)).length, 3, 'user contexts capped');
  const d1 = one(t, b, 'metrics_distributor.dropped', 'reason:max_contexts');
  t.equal(d1.value * d1.interval, 7, 'the drop is reported in the same window');
  t.ok(find(b, 'metrics_distributor.contexts').length === 1, 'the contexts gauge is reported');
  for (let i = 10; i < 15; i++) feed(a, `m${i}:1|c`);
  const d2 = one(t, a.closeWindow(), 'metrics_distributor.dropped', 'reason:max_contexts');
  t.equal(d2.value * d2.interval, 5, 'and in the next window');
});
