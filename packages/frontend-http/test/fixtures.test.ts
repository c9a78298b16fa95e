/**
 * Every fixture of test/fixtures/logdrains (a copy of the project's shared fixtures), byte-exact, through `inject()` with its MANIFEST headers,
 * and the exact series of the window afterwards.
 */
import t from 'tap';
import { c, entry, fixture, flat, g, h1, MANIFEST, setup, sorted } from './helpers.js';

const APP = ['app:shop'];
const WEB1 = ['app:shop', 'dyno:web.1', 'dyno_type:web'];

/** Router line expectations: request counter, two timers and the bytes histogram. */
function routerSeries(connect: number, service: number, bytes: number): string[] {
  const timer = [...WEB1, 'method:GET', 'status_class:3xx'];
  return [c('heroku.router.request', 1, [...timer, 'status:304']), h1('heroku.router.connect', connect, timer), h1('heroku.router.service', service, timer), h1('heroku.router.bytes', bytes, timer)].flat();
}

const DD_POSTGRES: [string, number][] = [
  ['current_transaction', 1947],
  ['db_size', 8945836],
  ['tables', 17],
  ['active_connections', 3],
  ['waiting_connections', 0],
  ['index_cache_hit_rate', 0.99396],
  ['table_cache_hit_rate', 0.99828],
  ['load_avg_1m', 0.02],
  ['load_avg_5m', 0.005],
  ['load_avg_15m', 0],
  ['read_iops', 0],
  ['write_iops', 0.011458],
  ['memory_total', 4045592],
  ['memory_free', 1560288],
  ['memory_cached', 1982288],
  ['memory_postgres', 21292],
];
const MIXED_POSTGRES: [string, number][] = [
  ['current_transaction', 15365],
  ['db_size', 4347350804],
  ['tables', 43],
  ['active_connections', 6],
  ['waiting_connections', 0],
  ['index_cache_hit_rate', 0.97116],
  ['table_cache_hit_rate', 0.73958],
  ['load_avg_1m', 0.05],
  ['load_avg_5m', 0.03],
  ['load_avg_15m', 0.035],
  ['read_iops', 0],
  ['write_iops', 112.73],
  ['memory_total', 15405636],
  ['memory_free', 214004],
  ['memory_cached', 14392920],
  ['memory_postgres', 181644],
];
const REDIS: [string, number][] = [
  ['active_connections', 27],
  ['load_avg_1m', 0],
  ['load_avg_5m', 0.015],
  ['load_avg_15m', 0.01],
  ['read_iops', 0],
  ['write_iops', 0.11282],
  ['memory_total', 15664876],
  ['memory_free', 12688956],
  ['memory_cached', 1762284],
  ['memory_redis', 1908016],
  ['hit_rate', 0.0096774],
  ['evicted_keys', 0],
];
const gauges = (prefix: string, values: [string, number][], tags: string[]) => values.map(([k, v]) => g(`${prefix}.${k}`, v, tags));

/** What each fixture must produce: the window's series and the `http` line counts. */
const EXPECTED: Record<string, { series: string[]; received: number; parsed: number; bad?: number; status?: number; late?: number; dropped?: Record<string, number> }> = {
  'heroku_devcenter_2msg.logplex': { series: [], received: 2, parsed: 2, late: 2 },
  'logplex_readme_10msg.logplex': { series: [], received: 10, parsed: 10, late: 10 },
  'logplex_readme_numbered_10msg.logplex': { series: [], received: 10, parsed: 10, late: 10 },
  // Its `2012-12-10T04:05:25Z+00:00` stamps do not parse: receive time, so not late.
  'logplex_input_10msg_nosep.logplex': { series: [], received: 10, parsed: 10, late: 0 },
  'vector_router_1msg_truncated.logplex': { series: routerSeries(1, 22, 656), received: 1, parsed: 1, late: 1 },
  'dd_router_1msg.logplex': { series: routerSeries(0, 2, 112), received: 1, parsed: 1, late: 1 },
  'dd_dyno_memory_1msg.logplex': {
    series: gauges(
      'heroku.dyno',
      [
        ['memory_total', 154.85],
        ['memory_rss', 139.79],
        ['memory_cache', 3.63],
        ['memory_swap', 11.43],
        ['memory_pgpgin', 80522],
        ['memory_pgpgout', 53004],
        ['memory_quota', 512],
      ],
      WEB1,
    ),
    received: 1,
    parsed: 1,
  },
  'dd_redis_1msg.logplex': { series: gauges('heroku.redis', REDIS, [...APP, 'source:REDIS']), received: 1, parsed: 1 },
  'dd_postgres_1msg.logplex': { series: gauges('heroku.postgres', DD_POSTGRES, [...APP, 'source:DATABASE']), received: 1, parsed: 1 },
  'mixed_batch_7msg_correct_counts.logplex': {
    series: [
      ...routerSeries(0, 2, 112),
      ...gauges(
        'heroku.dyno',
        [
          ['memory_total', 180.43],
          ['memory_rss', 180.05],
          ['memory_cache', 0.38],
          ['memory_swap', 0],
          ['memory_pgpgin', 84329],
          ['memory_pgpgout', 38140],
          ['memory_quota', 512],
          ['load_avg_1m', 0],
          ['load_avg_5m', 0],
          ['load_avg_15m', 0.01],
        ],
        WEB1,
      ),
      ...gauges('heroku.postgres', MIXED_POSTGRES, [...APP, 'source:DATABASE']),
      ...gauges('heroku.redis', REDIS, [...APP, 'source:REDIS', 'addon:redis-cubed-98704']),
      c('signups', 1, APP),
      ...h1('signup-controller', 50, [...APP, 'unit:ms']),
      g('queue.length', 99, APP),
      c('heroku.logplex.dropped', 5, APP),
    ],
    received: 7,
    parsed: 7,
    late: 7,
  },
  // The frame is `… measure#hello=1 measure#world=1ms\n` with a literal backslash-n (a Go raw string in
  // l2met's test). l2met reads world as 1 because its scanner stops at the first non-digit, the same rule
  // that reads `1,000` as 1; our values are strict, so `1ms\n` is skipped and counted as bad_value.
  'l2met_parser_simple.logplex': { series: h1('hello', 1, APP), received: 1, parsed: 1, dropped: { bad_value: 1 } },
  'l2met_parser_L10.logplex': { series: [c('heroku.logplex.dropped', 500, APP)], received: 1, parsed: 1 },
  'vercel_2msg.ndjson': { series: [], received: 2, parsed: 2, late: 2 },
  'vercel_2msg.json': { series: [], received: 2, parsed: 2, late: 2 },
  'vercel_2msg_badsig.ndjson': { series: [], received: 0, parsed: 0, status: 403, dropped: { bad_signature: 1 } },
  'fly_3msg.ndjson': { series: [], received: 3, parsed: 3, late: 3 },
  'fly_3msg_vector_http_sink.json': { series: [], received: 3, parsed: 3, late: 3 },
  'plain_text_3lines.txt': { series: [c('user.clicks', 4, APP), g('database.size', 40.9, [...APP, 'unit:MB']), ...h1('database.query', 200, [...APP, 'unit:ms'])], received: 3, parsed: 3, late: 0 },
  'syslog5424_newline_1msg.txt': { series: [], received: 1, parsed: 1, late: 1 },
};

t.test('the expectations cover exactly the fixtures in MANIFEST.json', async (t) => {
  t.same(Object.keys(EXPECTED).sort(), MANIFEST.map((m) => m.file).sort());
  for (const m of MANIFEST) t.equal(fixture(m.file).length, m.bytes, `${m.file} has its documented length`);
});

for (const m of MANIFEST) {
  t.test(m.file, async (t) => {
    const want = EXPECTED[m.file]!;
    const { agg, fe, stats } = setup(t, { vercelSecret: 'test-secret' });
    const res = await fe.server.inject({ method: 'POST', url: '/logs?app=shop', headers: m.headers, payload: fixture(m.file) });
    t.equal(res.statusCode, want.status ?? 200);
    const batch = agg.closeWindow();
    t.same(flat(batch), sorted(want.series));
    t.same([stats.received, stats.parsed, stats.bad], [want.received, want.parsed, want.bad ?? 0], 'received, parsed, bad');
    t.same(Object.fromEntries(stats.dropReasons()), want.dropped ?? {}, 'drops by reason');
    if (want.late !== undefined) t.equal(fe.lateLines, want.late, 'late lines');
    const declared = m.headers['Logplex-Msg-Count'];
    if (declared !== undefined) t.equal(stats.received, Number(declared), 'as many frames as Logplex-Msg-Count says');
    t.equal(agg.stats.component('http').counter('msg_count_mismatch'), 0);
    if ((want.status ?? 200) === 200) {
      t.equal(stats.packets, 1);
      t.equal(stats.bytes, m.bytes, 'bytes are the body as sent');
    }
  });
}

t.test('fixtures with their credentials: logplex-input Basic token, Fly Bearer token', async (t) => {
  const { agg, fe, stats } = setup(t, { credentials: [{ user: 'token', password: 't.d6799f88-4a77-402f-b197-2b722a02cdbc' }, { password: '<HTTP_TOKEN>' }] });
  const inj = (file: string) => fe.server.inject({ method: 'POST', url: '/logs', headers: entry(file).headers, payload: fixture(file) });
  t.equal((await inj('logplex_input_10msg_nosep.logplex')).statusCode, 200);
  t.equal((await inj('fly_3msg.ndjson')).statusCode, 200);
  t.equal((await inj('dd_router_1msg.logplex')).statusCode, 401, 'a fixture without Authorization is refused');
  t.equal(stats.received, 13);
  t.equal(flat(agg.closeWindow()).length, 0);
});
