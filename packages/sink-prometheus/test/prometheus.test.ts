/**
 * Against the real thing: promtool lints the exposition, and a real Prometheus server scrapes the sink
 * fed by core's aggregator over UDP, then its HTTP API must give the exact numbers that were sent.
 * Skipped only when the Debian `prometheus` package (which ships promtool) is not installed.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Aggregator, silentLogger } from '@metrics-distributor/core';
import { PrometheusSink } from '../src/index.js';
import { batch, dist, makeSink, point, testContext } from './helpers.js';
import { NO_PROMETHEUS, NO_PROMTOOL, query, startPrometheus, until } from './real-prometheus.js';


function promtool(text: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

t.test('promtool check metrics passes on the text exposition', { skip: NO_PROMTOOL }, async (t) => {
  const { sink } = makeSink({ buckets: [0.01, 0.1, 1] });
  await sink.export(
    batch(
      [
        point('api.requests', 'rate', 1.5, { host: 'web-1', tags: ['env:prod', 'path:/a"b\\c', 'bare'] }),
        point('api.requests', 'rate', 0.5, { host: 'web-2', tags: ['env:prod'] }),
        point('queue.depth', 'gauge', 17, { tags: ['queue.name:jobs', 'le:3'] }),
        point('req.time.max', 'gauge', 250, { host: 'web-1' }),
        point('req.time.95percentile', 'gauge', 240, { host: 'web-1' }),
        point('req.time.count', 'rate', 0.4, { host: 'web-1' }),
        point('9.weird-name:x', 'count', 2),
      ],
      [dist('payload.size', [0.005, 0.05, 0.5, 5], { host: 'web-1', tags: ['svc:api'] })],
    ),
  );
  const text = await sink.renderText('text');
  const r = promtool(text);
  t.equal(r.status, 0, r.out);
  t.equal(r.out.trim(), '', 'no lint problem');
  // The check is meaningful: promtool does reject a family written twice.
  const twice = '# HELP x_total h\n# TYPE x_total counter\nx_total 1\n# HELP x_total h\n# TYPE x_total counter\nx_total 2\n';
  t.not(promtool(twice).status, 0);
});

t.test('a real Prometheus scrapes the sink and finds the numbers sent over UDP', { skip: NO_PROMETHEUS, timeout: 45_000 }, async (t) => {
  // The sink, fed by core's aggregator (windows closed by hand), fed by StatsD datagrams over UDP.
  const context = testContext();
  const sink = new PrometheusSink({ listenHost: '127.0.0.1', listenPort: 0 }, { context });
  await sink.start();
  const aggregator = new Aggregator({ flushIntervalMs: 1000, hostname: 'testhost', selfMetrics: false, logger: silentLogger() });
  aggregator.addSink(sink);
  const udp = createSocket('udp4');
  udp.on('message', (msg) => aggregator.ingestStatsd(msg));
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const client = createSocket('udp4');
  const send = (lines: string[]) => new Promise<void>((resolve, reject) => client.send(lines.join('\n'), udp.address().port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));

  const prom = await startPrometheus(
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: md\n    static_configs:\n      - targets: ['127.0.0.1:${sink.boundPort}']\n`,
  );
  const promPort = prom.port;
  t.teardown(async () => {
    client.close();
    udp.close();
    await aggregator.close(Date.now() + 1000);
    await sink.shutdown(Date.now() + 1000);
    await prom.stop();
  });

  let datagrams = 0;
  const closeWindow = async (lines: string[]) => {
    const sent = context.stats.sent;
    await send(lines);
    datagrams++;
    // Datagrams to 127.0.0.1 arrive within a loop turn or two; wait until the aggregator has this one.
    await until('the datagram', async () => (aggregator.stats.component('embedded').packets >= datagrams ? true : undefined), 5000);
    aggregator.closeWindow();
    await until('the export', async () => (context.stats.sent > sent ? true : undefined), 5000);
  };
  // Window 1: counter 5×1 + 2 at rate 0.5 (= 4), a gauge, a set of 2, 100 distribution values, a timer.
  await closeWindow(
    [
      ...Array.from({ length: 5 }, () => 'page.views:1|c|#env:prod'),
      'page.views:2|c|@0.5|#env:prod',
      'room.temp:21.5|g|#room:a',
      'users.unique:alice|s',
      'users.unique:bob|s',
      'rt:0.003|d|@0.1', // weight 10
      ...Array.from({ length: 20 }, () => 'rt:0.02|d'),
      ...Array.from({ length: 7 }, () => 'rt:0.2|d|@0.1'), // 70
      'req.time:100|ms',
      'req.time:300|ms',
    ],
  );
  const first = await until('the first scrape', async () => {
    const r = await query(promPort, 'page_views_total');
    return r.length === 1 ? r[0] : undefined;
  });
  t.equal(first.value[1], '9');
  t.same(first.metric, { __name__: 'page_views_total', env: 'prod', host: 'testhost', instance: `127.0.0.1:${sink.boundPort}`, job: 'md' });

  // Window 2: three more page views; the counter goes up to 12, never reset.
  await closeWindow(['page.views:3|c|#env:prod']);
  await until('the counter to reach 12', async () => ((await query(promPort, 'page_views_total'))[0]?.value[1] === '12' ? true : undefined));
  t.same((await query(promPort, 'resets(page_views_total[1m])')).map((r) => r.value[1]), ['0']);

  const one = async (q: string) => (await query(promPort, q)).map((r) => r.value[1]);
  t.same(await one('room_temp{room="a",host="testhost"}'), ['21.5']);
  t.same(await one('users_unique'), ['2']);
  t.same(await one('rt_bucket{le="0.005"}'), ['10']);
  t.same(await one('rt_bucket{le="0.025"}'), ['30']);
  t.same(await one('rt_bucket{le="0.1"}'), ['30']);
  t.same(await one('rt_bucket{le="0.25"}'), ['100']);
  t.same(await one('rt_bucket{le="+Inf"}'), ['100']);
  t.same(await one('rt_count'), ['100']);
  t.ok(Math.abs(Number((await one('rt_sum'))[0]) - (0.003 * 10 + 0.02 * 20 + 0.2 * 70)) < 1e-9);
  // Rank 50 of 100 falls in (0.1, 0.25], which holds ranks 31..100: 0.1 + 0.15 × 20/70.
  const q50 = Number((await one('histogram_quantile(0.5, rt_bucket)'))[0]);
  t.ok(Math.abs(q50 - (0.1 + (0.15 * 20) / 70)) < 1e-9, `histogram_quantile(0.5) = ${q50}`);
  // Timer aggregates as gauges (suffix kept), its count as a counter.
  t.same(await one('req_time_max'), ['300']);
  t.same(await one('req_time_count_total'), ['2']);
  // Prometheus 2.42 asks for OpenMetrics first, so that is what it parsed, without error.
  const targets = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets`)).json()) as {
    data: { activeTargets: { health: string; lastError: string }[] };
  };
  t.same(targets.data.activeTargets.map((a) => [a.health, a.lastError]), [['up', '']]);
  t.ok(context.stats.counter('scrapes_openmetrics') >= 1, 'scraped as OpenMetrics');
  t.equal(context.stats.counter('scrapes_text'), 0);
  // And the text format of this very state, from the aggregator's real output, passes promtool's lint.
  if (NO_PROMTOOL === false) {
    const r = promtool(await (await fetch(`http://127.0.0.1:${sink.boundPort}/metrics`)).text());
    t.equal(r.status, 0, r.out);
    t.equal(r.out.trim(), '');
  }
});
