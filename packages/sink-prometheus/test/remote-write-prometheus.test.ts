/**
 * Remote write against the real thing: Prometheus 2.42 from Debian with its remote-write receiver
 * decodes what the sink sends (snappy, protobuf, headers); its query API must give the exact numbers.
 */
import t from 'tap';
import { Aggregator, silentLogger } from '@metrics-distributor/core';
import { PrometheusSink } from '../src/index.js';
import { testContext } from './helpers.js';
import { NO_PROMETHEUS, query, startPrometheus, until } from './real-prometheus.js';

t.test('a real Prometheus receives remote-written windows: counter totals, gauges, timer histograms', { skip: NO_PROMETHEUS, timeout: 60_000 }, async (t) => {
  const prom = await startPrometheus('global:\n  scrape_interval: 1m\n', ['--web.enable-remote-write-receiver']);
  const context = testContext();
  const sink = new PrometheusSink(
    { scrape: false, buckets: [0.01, 0.1, 1], remoteWrite: { url: `http://127.0.0.1:${prom.port}/api/v1/write` } },
    { context },
  );
  const aggregator = new Aggregator({ flushIntervalMs: 1000, hostname: 'testhost', selfMetrics: false, logger: silentLogger(), histogramSketches: true });
  aggregator.addSink(sink);
  t.teardown(async () => {
    await aggregator.close(Date.now() + 1000);
    await sink.shutdown(Date.now() + 1000);
    await prom.stop();
  });
  const window = async (lines: string[]) => {
    const sent = context.stats.sent;
    aggregator.ingestStatsd(Buffer.from(lines.join('\n')));
    aggregator.closeWindow();
    await until('the export', async () => (context.stats.sent > sent ? true : undefined), 5000);
    // The next window starts a second later: one sample per series per window, in time order.
    await new Promise((r) => setTimeout(r, 1100));
  };
  await window([
    ...Array.from({ length: 5 }, () => 'jobs.done:1|c|#env:prod,Zone:eu'),
    'room.temp:21.5|g|#room:a',
    // Timer in ms, exposed in seconds: 10 ms, 100 ms and 1000 ms sit exactly on the bounds.
    'lat:10|ms\nlat:10|ms\nlat:100|ms\nlat:1000|ms\nlat:5000|ms',
  ]);
  await window(['jobs.done:4|c|#env:prod,Zone:eu', 'room.temp:19|g|#room:a']);
  t.equal(context.stats.dropped(), 0, prom.log());

  const one = async (q: string) => (await query(prom.port, q)).map((r) => r.value[1]);
  const jobs = await until('the counter', async () => {
    const r = await query(prom.port, 'jobs_done_total');
    return r[0]?.value[1] === '9' ? r : undefined;
  });
  t.same(jobs[0]!.metric, { __name__: 'jobs_done_total', Zone: 'eu', env: 'prod', host: 'testhost' });
  t.same(await one('room_temp{room="a"}'), ['19']);
  t.same(await one('count_over_time(room_temp[1m])'), ['2'], 'one sample per window');
  t.same(await one('lat_bucket{le="0.01"}'), ['2']);
  t.same(await one('lat_bucket{le="0.1"}'), ['3']);
  t.same(await one('lat_bucket{le="1"}'), ['4']);
  t.same(await one('lat_bucket{le="+Inf"}'), ['5']);
  t.same(await one('lat_count'), ['5']);
  t.same(await one('lat_sum'), ['6.12']);
  // Rank 2.5 of 5 falls in (0.01, 0.1], which holds rank 3 only: 0.01 + 0.09 × 0.5/1.
  const q50 = Number((await one('histogram_quantile(0.5, lat_bucket)'))[0]);
  t.ok(Math.abs(q50 - 0.055) < 1e-12, `histogram_quantile(0.5) = ${q50}`);
  t.same(await one('lat_max'), [], 'no aggregate gauges beside the histogram');
  t.ok(context.stats.counter('remote_write_requests') >= 2);
});
