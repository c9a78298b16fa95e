import t from 'tap';
import { batch, dist, makeSink, point, samples } from './helpers.js';

t.test('exact text 0.0.4 for every type', async (t) => {
  const { sink } = makeSink({ buckets: [1, 5, 10] });
  await sink.export(
    batch(
      [
        point('req.count', 'rate', 1.2, { tags: ['env:prod'], host: 'web-1' }),
        point('mem.used', 'gauge', 512.5, { tags: ['env:prod'] }),
      ],
      [dist('lat', [1, 2, 5, 7, 100], { tags: ['svc:api'], host: 'web-1' })],
    ),
  );
  t.equal(
    await sink.renderText('text'),
    [
      '# HELP req_count_total StatsD counter (cumulative sum of every window) req.count, via metrics-distributor.',
      '# TYPE req_count_total counter',
      'req_count_total{host="web-1",env="prod"} 12',
      '# HELP mem_used StatsD gauge mem.used, via metrics-distributor.',
      '# TYPE mem_used gauge',
      'mem_used{env="prod"} 512.5',
      '# HELP lat StatsD distribution (cumulative histogram from its sketches) lat, via metrics-distributor.',
      '# TYPE lat histogram',
      'lat_bucket{host="web-1",svc="api",le="1"} 1',
      'lat_bucket{host="web-1",svc="api",le="5"} 3',
      'lat_bucket{host="web-1",svc="api",le="10"} 4',
      'lat_bucket{host="web-1",svc="api",le="+Inf"} 5',
      'lat_sum{host="web-1",svc="api"} 115',
      'lat_count{host="web-1",svc="api"} 5',
      '',
    ].join('\n'),
  );
  t.equal(
    await sink.renderText('openmetrics'),
    [
      '# HELP req_count StatsD counter (cumulative sum of every window) req.count, via metrics-distributor.',
      '# TYPE req_count counter',
      'req_count_total{host="web-1",env="prod"} 12',
      '# HELP mem_used StatsD gauge mem.used, via metrics-distributor.',
      '# TYPE mem_used gauge',
      'mem_used{env="prod"} 512.5',
      '# HELP lat StatsD distribution (cumulative histogram from its sketches) lat, via metrics-distributor.',
      '# TYPE lat histogram',
      'lat_bucket{host="web-1",svc="api",le="1"} 1',
      'lat_bucket{host="web-1",svc="api",le="5"} 3',
      'lat_bucket{host="web-1",svc="api",le="10"} 4',
      'lat_bucket{host="web-1",svc="api",le="+Inf"} 5',
      'lat_count{host="web-1",svc="api"} 5',
      'lat_sum{host="web-1",svc="api"} 115',
      '# EOF',
      '',
    ].join('\n'),
  );
  t.equal(await makeSink().sink.renderText('openmetrics'), '# EOF\n', 'empty OpenMetrics is just # EOF');
  t.equal(await makeSink().sink.renderText('text'), '', 'empty text is empty');
});

t.test('counters are cumulative across windows, from rate or count series', async (t) => {
  const { sink } = makeSink();
  for (let w = 1; w <= 5; w++) await sink.export(batch([point('hits', 'rate', w / 10), point('jobs', 'count', w), point('up.total', 'count', 1)]));
  t.same(samples(await sink.renderText()), ['hits_total 15', 'jobs_total 15', 'up_total 5']);
  // An idle counter's zero-filled windows change nothing; a negative window is refused.
  await sink.export(batch([point('hits', 'rate', 0), point('hits', 'count', -3)]));
  t.same(samples(await sink.renderText()), ['hits_total 15', 'jobs_total 15', 'up_total 5']);
});

t.test('gauges take the last value; sets arrive as gauges', async (t) => {
  const { sink } = makeSink();
  await sink.export(batch([point('temp', 'gauge', 20), point('users.unique', 'gauge', 3)]));
  await sink.export(batch([point('temp', 'gauge', -4.5)]));
  t.same(samples(await sink.renderText()), ['temp -4.5', 'users_unique 3']);
});

t.test('histograms from sketches are cumulative across windows; value scale', async (t) => {
  const { sink } = makeSink({ buckets: [0.1, 0.5], sketchScale: 0.001 });
  await sink.export(batch([], [dist('rt', [50, 100, 400])]));
  await sink.export(batch([], [dist('rt', [100, 2000])]));
  t.same(samples(await sink.renderText()), ['rt_bucket{le="0.1"} 3', 'rt_bucket{le="0.5"} 4', 'rt_bucket{le="+Inf"} 5', 'rt_sum 2.65', 'rt_count 5']);
});

t.test('a value exactly on a bound stays in that bucket; negative values in the lowest', async (t) => {
  const { sink } = makeSink({ buckets: [0.1, 1] });
  await sink.export(batch([], [dist('x', [0.1, 0.1, 1]), dist('neg', [-5, -1])]));
  t.same(samples(await sink.renderText()), [
    'x_bucket{le="0.1"} 2',
    'x_bucket{le="1"} 3',
    'x_bucket{le="+Inf"} 3',
    'x_sum 1.2',
    'x_count 3',
    'neg_bucket{le="0.1"} 2',
    'neg_bucket{le="1"} 2',
    'neg_bucket{le="+Inf"} 2',
    'neg_sum -6',
    'neg_count 2',
  ]);
});

t.test('names colliding after sanitising: counters merge, gauges clash', async (t) => {
  const { sink, context } = makeSink();
  await sink.export(batch([point('a.b', 'count', 2), point('a_b', 'count', 3), point('a-b.total', 'count', 1)]));
  t.same(samples(await sink.renderText()), ['a_b_total 6']);
  await sink.export(batch([point('g.x', 'gauge', 1), point('g_x', 'gauge', 2), point('g.x', 'gauge', 3, { tags: ['k.1:v'] }), point('g.x', 'gauge', 4, { tags: ['k_1:v'] })]));
  t.same(samples(await sink.renderText()).slice(1), ['g_x 1', 'g_x{k_1="v"} 3']);
  t.equal(context.stats.dropped('name_clash'), 2);
  // The owner keeps updating its series.
  await sink.export(batch([point('g.x', 'gauge', 10)]));
  t.same(samples(await sink.renderText()).slice(1), ['g_x 10', 'g_x{k_1="v"} 3']);
});

t.test('one name with two types, and exposed names taken by another family, are clashes', async (t) => {
  const { sink, context } = makeSink();
  await sink.export(
    batch(
      [
        point('m', 'count', 1),
        point('m', 'gauge', 5), // counter family m exists
        point('m.total', 'gauge', 5), // would expose m_total, held by counter m
        point('h.count', 'gauge', 1), // h_count held by histogram h below? created first, so h clashes
      ],
      [dist('h', [1]), dist('m', [1])],
    ),
  );
  t.same(samples(await sink.renderText()), ['m_total 1', 'h_count 1']);
  t.equal(context.stats.dropped('type_clash'), 2, 'gauge m, histogram m');
  t.equal(context.stats.dropped('name_clash'), 2, 'gauge m_total, histogram h');
  const text = await sink.renderText();
  t.equal(text.match(/^# TYPE /gm)!.length, 2, 'never two families of one name');
});

t.test('TTL: series not updated disappear, families and their names are freed', async (t) => {
  const { sink, clock } = makeSink({ ttlMs: 60_000 });
  await sink.export(batch([point('c', 'count', 1), point('g', 'gauge', 1)], [dist('d', [1])]));
  clock.advance(30_000);
  await sink.export(batch([point('c', 'count', 1)]));
  clock.advance(30_000);
  t.same(samples(await sink.renderText()), ['c_total 2'], 'g and d expired at 60 s, c updated at 30 s');
  t.equal(sink.seriesCount, 1);
  // Zero-filled windows do not keep a counter alive.
  await sink.export(batch([point('c', 'count', 0)]));
  clock.advance(30_000);
  t.same(samples(await sink.renderText()), []);
  t.equal(sink.seriesCount, 0);
  // The name g is free again, for another type too.
  await sink.export(batch([point('g', 'count', 7)]));
  t.same(samples(await sink.renderText()), ['g_total 7']);
});

t.test('TTL also applies without scrapes (exports sweep)', async (t) => {
  const { sink, clock } = makeSink({ ttlMs: 10_000 });
  await sink.export(batch([point('a', 'gauge', 1)]));
  clock.advance(20_000);
  await sink.export(batch([point('b', 'gauge', 1)]));
  t.equal(sink.seriesCount, 1);
});

t.test('maxSeries: new series beyond are dropped and counted; expired ones make room', async (t) => {
  const { sink, context, clock } = makeSink({ maxSeries: 3, ttlMs: 60_000 });
  await sink.export(batch([1, 2, 3, 4, 5].map((i) => point('s', 'gauge', i, { tags: [`i:${i}`] }))));
  t.equal(sink.seriesCount, 3);
  t.equal(context.stats.dropped('max_series'), 2);
  await sink.export(batch([point('s', 'gauge', 9, { tags: ['i:1'] })]));
  t.equal(context.stats.dropped('max_series'), 2, 'existing series still update');
  t.same(samples(await sink.renderText()), ['s{i="1"} 9', 's{i="2"} 2', 's{i="3"} 3']);
  clock.advance(61_000);
  await sink.export(batch([point('t', 'gauge', 1)], [dist('u', [1])]));
  t.equal(sink.seriesCount, 2);
  t.same(samples(await sink.renderText()).slice(0, 1), ['t 1']);
});

t.test('labels: host, bare tags, duplicate keys, escaping, reserved names', async (t) => {
  const { sink } = makeSink({ buckets: [1] });
  await sink.export(
    batch(
      [
        point('g', 'gauge', 1, { host: 'h"1', tags: ['bare', 'path:C:\\x', 'msg:a\nb'] }),
        point('g', 'gauge', 2, { host: '', tags: ['env:a', 'env:b'] }),
      ],
      [dist('d', [1], { tags: ['le:3', 'quantile:x', '__x:y'] })],
    ),
  );
  t.same(samples(await sink.renderText()), [
    'g{host="h\\"1",msg="a\\nb",path="C:\\\\x"} 1',
    'g{env="a"} 2',
    'd_bucket{exported___x="y",exported_le="3",exported_quantile="x",le="1"} 1',
    'd_bucket{exported___x="y",exported_le="3",exported_quantile="x",le="+Inf"} 1',
    'd_sum{exported___x="y",exported_le="3",exported_quantile="x"} 1',
    'd_count{exported___x="y",exported_le="3",exported_quantile="x"} 1',
  ]);
});

t.test('after shutdown, exports fail and count as closed', async (t) => {
  const { sink, context } = makeSink();
  await sink.shutdown(Date.now());
  const r = await sink.export(batch([point('a', 'gauge', 1)]));
  t.equal(r.code, 'failure');
  t.equal(context.stats.dropped('closed'), 1);
});

t.test('options are validated', async (t) => {
  t.throws(() => makeSink({ ttlMs: 0 }), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => makeSink({ maxSeries: -1 }), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => makeSink({ buckets: [2, 1] }), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => makeSink({ listenPort: 70000 }), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => makeSink({ path: 'metrics' }), { code: 'MD_ERR_CONFIG_INVALID' });
});

t.test('milliseconds on the default (seconds) bounds land exactly', async (t) => {
  const { sink } = makeSink({ sketchScale: 0.001 });
  await sink.export(batch([], [dist('t', [5, 5, 10, 25, 250, 2500, 10_000, 10_001, 10_100])]));
  const lines = samples(await sink.renderText());
  t.same(lines.slice(0, 12), [
    't_bucket{le="0.005"} 2',
    't_bucket{le="0.01"} 3',
    't_bucket{le="0.025"} 4',
    't_bucket{le="0.05"} 4',
    't_bucket{le="0.1"} 4',
    't_bucket{le="0.25"} 5',
    't_bucket{le="0.5"} 5',
    't_bucket{le="1"} 5',
    't_bucket{le="2.5"} 6',
    't_bucket{le="5"} 6',
    // 10.001 s shares the sketch bin of 10 s (documented: < 0.78 % above a bound may count below it); 10.1 s does not.
    't_bucket{le="10"} 8',
    't_bucket{le="+Inf"} 9',
  ]);
  t.same(lines.slice(12), ['t_sum 32.896', 't_count 9']);
});

t.test('a batch that breaks the sink fails alone, counted, and the next export works', async (t) => {
  const { sink, context } = makeSink();
  const bad = await sink.export(batch([point('x', 'gauge', 1, { tags: null as unknown as string[] })]));
  t.equal(bad.code, 'failure');
  t.equal(context.stats.dropped('internal_error'), 1);
  t.same(await sink.export(batch([point('y', 'gauge', 2)])), { code: 'success' });
  t.same(samples(await sink.renderText()), ['y 2']);
});

t.test('histogramSketches: ms timers in seconds, h as sent, values on bounds in their bucket; aggregates left out', async (t) => {
  const { sink, context } = makeSink({ buckets: [0.5, 1, 2] });
  const hs = (metric: string, sourceType: 'ms' | 'h', values: number[]) => ({ ...dist(metric, values), sourceType });
  const b = {
    ...batch([point('lat.max', 'gauge', 2000, { aggregateOf: 'ms' }), point('lat.count', 'rate', 0.4, { aggregateOf: 'ms' }), point('other', 'gauge', 1)]),
    histogramSketches: [hs('lat', 'ms', [500, 1000, 1000, 2000]), hs('size', 'h', [0.5, 2, 3])],
  };
  await sink.export(b);
  await sink.export({ ...b, series: [] });
  const lines = samples(await sink.renderText('text'));
  t.same(lines.filter((l) => l.startsWith('lat')), [
    'lat_bucket{le="0.5"} 2',
    'lat_bucket{le="1"} 6',
    'lat_bucket{le="2"} 8',
    'lat_bucket{le="+Inf"} 8',
    'lat_sum 9',
    'lat_count 8',
  ]);
  t.same(lines.filter((l) => l.startsWith('size')), ['size_bucket{le="0.5"} 2', 'size_bucket{le="1"} 2', 'size_bucket{le="2"} 4', 'size_bucket{le="+Inf"} 6', 'size_sum 11', 'size_count 6']);
  t.ok(lines.includes('other 1'));
  // A batch without sketches keeps its aggregates (the aggregator's option off).
  await sink.export(batch([point('lat2.max', 'gauge', 3, { aggregateOf: 'ms' })]));
  t.ok(samples(await sink.renderText('text')).includes('lat2_max 3'));
  // One name as an ms timer and an h histogram: the second unit is a clash, not mixed in.
  await sink.export({ ...batch([]), histogramSketches: [hs('lat', 'h', [1])] });
  t.equal(context.stats.dropped('name_clash'), 1);
});
