// Against a REAL carbon-cache (Debian graphite-carbon), read back from its whisper files with
// whisper-fetch: windows from the real aggregator, plain and tagged names, and a carbon restart.
import t, { type Test } from 'tap';
import { Aggregator, silentLogger } from '@metrics-distributor/core';
import { GraphiteSink } from '../src/index.js';
import { Carbon, testContext, until } from './helpers.js';

/** A fresh carbon-cache, a sink pointed at it and an aggregator, all torn down with the test. */
async function setup(t: Test) {
  const carbon = await new Carbon().start();
  t.teardown(async () => {
    await carbon.stop();
    carbon.cleanup();
  });
  const ctx = testContext();
  const sink = new GraphiteSink({ port: carbon.port, retryBaseMs: 100, retryMaxMs: 500 }, ctx);
  const agg = new Aggregator({ flushIntervalMs: 10_000, hostname: 'h1', selfMetrics: false, logger: silentLogger() });
  t.teardown(() => agg.close());
  return { carbon, ctx, sink, agg };
}

if (!Carbon.available()) {
  t.fail('carbon-cache and whisper-fetch are needed (apt-get install graphite-carbon python3-whisper; .ci/run does it)');
} else {
  t.test('windows sent over UDP-style StatsD lines land in whisper with the sums, under etsy names', async (t) => {
    const { carbon, ctx, sink, agg } = await setup(t);

    agg.ingestStatsd(Buffer.from(['hits:3|c', 'hits:4|c', 'rt:10|ms', 'rt:30|ms', 'temp:21.5|g', 'req:2|c|#env:prod,az:b'].join('\n')));
    const w1 = agg.closeWindow();
    const ts1 = Math.floor(w1.windowStartMs / 1000);
    t.same(await sink.export(w1), { code: 'success' });

    await carbon.waitFor('stats_counts.hits', ts1, 7);
    await carbon.waitFor('stats.hits', ts1, 0.7);
    await carbon.waitFor('stats.gauges.temp', ts1, 21.5);
    await carbon.waitFor('stats.timers.rt.count', ts1, 2);
    await carbon.waitFor('stats.timers.rt.upper', ts1, 30);
    await carbon.waitFor('stats.timers.rt.mean', ts1, 20);
    await carbon.waitFor('stats_counts.req;az=b;env=prod', ts1, 2);

    // A second window a few seconds later (1 s retention: its own point).
    agg.ingestStatsd(Buffer.from('hits:5|c\ntemp:19|g'));
    const w2 = agg.closeWindow();
    const b2 = { ...w2, windowStartMs: w1.windowStartMs + 3000, series: w2.series.map((s) => ({ ...s, timestamp: ts1 + 3 })) };
    t.same(await sink.export(b2), { code: 'success' });
    const hits = await carbon.waitFor('stats_counts.hits', ts1 + 3, 5);
    t.equal(hits.get(ts1), 7, 'the first window kept its own point');
    t.equal(hits.size, 2, 'one point per window, nothing else');
    await carbon.waitFor('stats.gauges.temp', ts1 + 3, 19);
    t.equal(ctx.stats.sent, ctx.stats.received);
    await sink.shutdown(Date.now() + 2000);
  });

  t.test('sets land as stats.sets.<name>.count, legacy and modern, with the distinct count', async (t) => {
    const { carbon, ctx, sink, agg } = await setup(t);
    const modern = new GraphiteSink({ port: carbon.port, legacyNamespace: false, prefixSet: 'uniq' }, testContext());

    agg.ingestStatsd(Buffer.from(['users:alice|s', 'users:bob|s', 'users:alice|s', 'users:carol|s', 'level:4|g'].join('\n')));
    const w1 = agg.closeWindow();
    const ts1 = Math.floor(w1.windowStartMs / 1000);
    t.same(await sink.export(w1), { code: 'success' });
    t.same(await modern.export(w1), { code: 'success' });

    await carbon.waitFor('stats.sets.users.count', ts1, 3);
    await carbon.waitFor('stats.uniq.users.count', ts1, 3);
    await carbon.waitFor('stats.gauges.level', ts1, 4);
    t.equal(ctx.stats.sent, 2);
    await sink.shutdown(Date.now() + 2000);
    await modern.shutdown(Date.now() + 2000);
  });

  t.test('carbon restarts: the window sent while it was down arrives after it is back', async (t) => {
    const { carbon, ctx, sink, agg } = await setup(t);

    agg.ingestStatsd(Buffer.from('up:1|c'));
    const w1 = agg.closeWindow();
    const ts1 = Math.floor(w1.windowStartMs / 1000);
    await sink.export(w1);
    await carbon.waitFor('stats_counts.up', ts1, 1);

    await carbon.stop();
    await until(() => (ctx.stats.counter('disconnects') >= 1 ? true : undefined), 10_000, 'the client to see carbon go');
    agg.ingestStatsd(Buffer.from('down:4|c'));
    const w2 = agg.closeWindow();
    const b2 = { ...w2, series: w2.series.map((s) => ({ ...s, timestamp: ts1 + 2 })) };
    t.same(await sink.export(b2), { code: 'success' }, 'parked, not lost');
    t.ok(sink.retryBufferBytes > 0);

    await carbon.start();
    await carbon.waitFor('stats_counts.down', ts1 + 2, 4, 30_000);
    await until(() => (sink.retryBufferBytes === 0 ? true : undefined), 5000, 'the retry buffer to empty');
    let drops = 0;
    for (const v of ctx.stats.dropReasons().values()) drops += v;
    t.equal(drops, 0, 'nothing dropped');
    await sink.shutdown(Date.now() + 2000);
  });
}
