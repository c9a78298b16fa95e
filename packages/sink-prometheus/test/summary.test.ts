/**
 * Summaries (`observerType: 'summary'`): per-window quantiles from the sketch, cumulative `_sum` and
 * `_count`, in both formats, linted by promtool, scraped and queried by a real Prometheus.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import type { HistogramSketchSeries, MetricBatch } from '@metrics-distributor/core';
import { PrometheusSink, validateQuantiles } from '../src/index.js';
import { batch, dist, makeSink, samples, sketchOf, testContext } from './helpers.js';
import { NO_PROMETHEUS, NO_PROMTOOL, query, startPrometheus, until } from './real-prometheus.js';

/** A window with one `ms` timer context, as core's aggregator hands it over with `histogramSketches`. */
function timerWindow(values: readonly number[], windowNo = 0, metric = 'req.time'): MetricBatch {
  const b = batch([], []);
  const hs: HistogramSketchSeries = { metric, timestamp: 1_700_000_000 + windowNo * 10, interval: 10, tags: ['env:prod'], host: 'web-1', sketch: sketchOf(values), sourceType: 'ms' };
  return { ...b, windowStartMs: b.windowStartMs + windowNo * 10_000, histogramSketches: [hs] };
}

t.test('a timer as a summary: this window\'s quantiles, cumulative sum and count, ms in seconds', async (t) => {
  const { sink } = makeSink({ observerType: 'summary' });
  // 10 samples of 100 ms and one of 500: the median and p90 land in the 100 ms bin (clamped to the
  // exact minimum), p99 at rank roundHalfEven(9.9) = 10, the exact maximum.
  await sink.export(timerWindow([...Array.from({ length: 10 }, () => 100), 500]));
  t.equal(
    await sink.renderText('text'),
    [
      '# HELP req_time StatsD distribution (quantiles of the last window with samples; cumulative sum and count) req.time, via metrics-distributor.',
      '# TYPE req_time summary',
      'req_time{host="web-1",env="prod",quantile="0.5"} 0.1',
      'req_time{host="web-1",env="prod",quantile="0.9"} 0.1',
      'req_time{host="web-1",env="prod",quantile="0.99"} 0.5',
      'req_time_sum{host="web-1",env="prod"} 1.5',
      'req_time_count{host="web-1",env="prod"} 11',
      '',
    ].join('\n'),
  );
  // The next window replaces the quantiles and adds to sum and count.
  await sink.export(timerWindow([2000, 2000], 1));
  t.same(samples(await sink.renderText('openmetrics')), [
    'req_time{host="web-1",env="prod",quantile="0.5"} 2',
    'req_time{host="web-1",env="prod",quantile="0.9"} 2',
    'req_time{host="web-1",env="prod",quantile="0.99"} 2',
    'req_time_count{host="web-1",env="prod"} 13',
    'req_time_sum{host="web-1",env="prod"} 5.5',
  ]);
  t.match(await sink.renderText('openmetrics'), /# TYPE req_time summary\n/);
});

t.test('distributions become summaries too, with chosen quantiles; the default stays histograms', async (t) => {
  const { sink } = makeSink({ observerType: 'summary', quantiles: [0.25, 0.75] });
  await sink.export(batch([], [dist('payload', [4, 4, 4, 4])]));
  t.same(samples(await sink.renderText('text')), ['payload{quantile="0.25"} 4', 'payload{quantile="0.75"} 4', 'payload_sum 16', 'payload_count 4']);
  const h = makeSink();
  await h.sink.export(batch([], [dist('payload', [4])]));
  t.match(await h.sink.renderText('text'), /# TYPE payload histogram/);
});

t.test('a summary holds its _sum and _count names; quantiles and observer type are validated', async (t) => {
  const { sink, context } = makeSink({ observerType: 'summary' });
  await sink.export(batch([{ metric: 'lat.count', type: 'gauge', value: 1, timestamp: 1_700_000_000, interval: 10, tags: [], host: '' }], [dist('lat', [1])]));
  t.equal(context.stats.dropped('name_clash'), 1, 'the gauge lat_count is refused beside the summary lat');
  t.throws(() => validateQuantiles([]), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => validateQuantiles([0.5, 1]), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => validateQuantiles([0.9, 0.5]), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => makeSink({ observerType: 'gauge' as never }), { code: 'MD_ERR_CONFIG_INVALID' });
});

t.test('promtool check metrics passes on summaries', { skip: NO_PROMTOOL }, async (t) => {
  const { sink } = makeSink({ observerType: 'summary' });
  await sink.export(timerWindow([1, 5, 50, 500]));
  await sink.export(batch([], [dist('payload.size', [1, 2, 3], { tags: ['quantile:x'] })]));
  const r = spawnSync('promtool', ['check', 'metrics'], { input: await sink.renderText('text'), encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 0, r.stdout + r.stderr);
  t.equal((r.stdout + r.stderr).trim(), '', 'no lint problem');
});

t.test('a real Prometheus scrapes a summary and answers for its quantile', { skip: NO_PROMETHEUS, timeout: 45_000 }, async (t) => {
  const context = testContext();
  const sink = new PrometheusSink({ listenHost: '127.0.0.1', listenPort: 0, observerType: 'summary' }, { context });
  await sink.start();
  const prom = await startPrometheus(
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: md\n    static_configs:\n      - targets: ['127.0.0.1:${sink.boundPort}']\n`,
  );
  t.teardown(async () => {
    await sink.shutdown(Date.now() + 1000);
    await prom.stop();
  });
  await sink.export(timerWindow([...Array.from({ length: 10 }, () => 100), 500]));
  const q99 = await until('the p99', async () => (await query(prom.port, 'req_time{quantile="0.99"}'))[0]);
  t.equal(q99.value[1], '0.5');
  t.same(q99.metric, { __name__: 'req_time', quantile: '0.99', env: 'prod', host: 'web-1', instance: `127.0.0.1:${sink.boundPort}`, job: 'md' });
  t.same((await query(prom.port, 'req_time_count')).map((r) => r.value[1]), ['11']);
  t.same((await query(prom.port, 'req_time_sum')).map((r) => r.value[1]), ['1.5']);
});
