import t from 'tap';
import assert from 'node:assert/strict';
import type { MetricBatch, Sample } from '@metrics-distributor/core';
import { dynoTags, herokuKey, tag, type BadValueReason } from '../src/heroku-metrics.js';
import type { LogLine } from '../src/platform-lines.js';
import { lineSamples, newAggregator } from './helpers.js';
import { extractLine } from './oracle.js';

const BASE = ['app:shop'];

/**
 * Samples of one line, each as `name type value [sorted tags]`, plus the skipped keys. They are the
 * oracle's, one per metric in line order, after checking that production makes the same window of
 * them (its merged counters arrive once, with a weight) and skips the same values.
 */
function run(line: LogLine) {
  const out: Sample[] = [];
  const bad: [BadValueReason, string][] = [];
  extractLine(line, BASE, out, (reason, key) => bad.push([reason, key]));
  const prod = lineSamples(line, 'shop');
  const ref = newAggregator();
  const got = newAggregator();
  for (const s of out) ref.addSample(s);
  for (const a of prod.added) got.addSample(a.sample, a.weight);
  const window = (b: MetricBatch): string[] => [...b.series, ...b.sketches].map((x) => JSON.stringify(x)).sort();
  assert.deepEqual(window(got.closeWindow()), window(ref.closeWindow()), 'production makes the same window');
  assert.deepEqual(prod.bad, bad, 'production skips the same values');
  return { samples: out.map((s) => `${s.name} ${s.type} ${s.value} [${[...(s.tags ?? [])].sort().join(',')}]`), bad };
}

const router = (msg: string) => run({ appName: 'heroku', procId: 'router', msg });

t.test('router at=info: request counter, connect/service timers, bytes histogram; unbounded fields never tagged', async (t) => {
  const r = router(
    'at=info method=GET path="/assets/admin.css" host=app.example.com request_id=bef7f609-eceb-4684-90ce-c249e6843112 fwd="58.6.203.42,54.239.202.42" dyno=web.1 connect=0ms service=2ms status=304 bytes=112',
  );
  const timerTags = '[app:shop,dyno:web.1,dyno_type:web,method:GET,status_class:3xx]';
  t.same(r.samples, [
    'heroku.router.request c 1 [app:shop,dyno:web.1,dyno_type:web,method:GET,status:304,status_class:3xx]',
    `heroku.router.connect ms 0 ${timerTags}`,
    `heroku.router.service ms 2 ${timerTags}`,
    `heroku.router.bytes h 112 ${timerTags}`,
  ]);
  t.same(r.bad, []);
  t.notMatch(r.samples.join(' '), /request_id|fwd|path|host:|58\.6/, 'no request id, forwarded-for, path or host');
});

t.test('router Router-2.0 line with protocol/tls fields and a 7 s connect', async (t) => {
  const r = router(
    'at=info method=GET path="/" host=www.123-bibel.de request_id=407b828f-ec16-bfef-cff3-25e749e57945 fwd="45.134.142.196" dyno=web.1 connect=7001ms service=459ms status=200 bytes=15225 protocol=http1.1 tls=true tls_version=tls1.3',
  );
  t.equal(r.samples.length, 4);
  t.match(r.samples[1], /^heroku\.router\.connect ms 7001 /);
  t.match(r.samples[0], /status:200,status_class:2xx/);
});

t.test('router H10: empty connect/service/bytes/dyno are skipped, never read as 1', async (t) => {
  const r = router('at=error code=H10 desc="App crashed" method=GET path="/" host=myapp.herokuapp.com fwd=17.17.17.17 dyno= connect= service= status=503 bytes=');
  t.same(r.samples, [
    'heroku.router.request c 1 [app:shop,method:GET,status:503,status_class:5xx]',
    'heroku.router.error c 1 [app:shop,code:H10]',
    'heroku.error c 1 [app:shop,code:H10]',
  ]);
  t.same(r.bad, []);
});

t.test('router H12: empty connect but a service time', async (t) => {
  const r = router('at=error code=H12 desc="Request timeout" method=GET path=/ host=myapp.herokuapp.com fwd="204.204.204.204" dyno=web.1 connect= service=30000ms status=503 bytes=0');
  t.same(r.samples, [
    'heroku.router.request c 1 [app:shop,dyno:web.1,dyno_type:web,method:GET,status:503,status_class:5xx]',
    'heroku.router.service ms 30000 [app:shop,dyno:web.1,dyno_type:web,method:GET,status_class:5xx]',
    'heroku.router.bytes h 0 [app:shop,dyno:web.1,dyno_type:web,method:GET,status_class:5xx]',
    'heroku.router.error c 1 [app:shop,code:H12]',
    'heroku.error c 1 [app:shop,code:H12,dyno:web.1,dyno_type:web]',
  ]);
});

t.test('router H18 with `sock=backend` before `at=`: keys in any order', async (t) => {
  const r = router(
    'sock=backend at=error code=H18 desc="Server Request Interrupted" method=POST path="/api/v1/x" host=h.herokuapp.com request_id=32703692-2362-4363-b46a-92c695c1d6b1 fwd="100.27.26.255" dyno=web.1 connect=0ms service=710ms status=200 bytes=0 protocol=http1.1 tls=true tls_version=unknown',
  );
  t.equal(r.samples.length, 6);
  t.ok(r.samples.includes('heroku.router.error c 1 [app:shop,code:H18]'));
  t.ok(r.samples.includes('heroku.router.service ms 710 [app:shop,dyno:web.1,dyno_type:web,method:POST,status_class:2xx]'));
});

t.test('router: odd methods and statuses cannot create new tag values; bad numbers are counted', async (t) => {
  const r = router('at=info method=FOOBAR dyno=web.1 connect=abc service=2s status=2000 bytes=12');
  t.same(r.samples, ['heroku.router.request c 1 [app:shop,dyno:web.1,dyno_type:web,method:other]', 'heroku.router.bytes h 12 [app:shop,dyno:web.1,dyno_type:web,method:other]']);
  t.same(r.bad, [
    ['bad_value', 'connect'],
    ['bad_value', 'service'],
  ]);
  t.same(router('foo bar baz').samples, [], 'a router line without at= is not a request');
  t.same(run({ appName: 'app', procId: 'router', msg: 'at=info status=200' }).samples, [], 'an app process named router is not the Heroku router');
});

t.test('dyno runtime metrics: memory (units dropped) and load averages', async (t) => {
  const mem = run({
    appName: 'heroku',
    procId: 'web.1',
    msg: 'source=web.1 dyno=heroku.54241834.4b88c98d-6243-4194-af49-8db9b53be371 sample#memory_total=154.85MB sample#memory_rss=139.79MB sample#memory_cache=3.63MB sample#memory_swap=11.43MB sample#memory_pgpgin=80522pages sample#memory_pgpgout=53004pages sample#memory_quota=512.00MB',
  });
  const tags = '[app:shop,dyno:web.1,dyno_type:web]';
  t.same(mem.samples, [
    `heroku.dyno.memory_total g 154.85 ${tags}`,
    `heroku.dyno.memory_rss g 139.79 ${tags}`,
    `heroku.dyno.memory_cache g 3.63 ${tags}`,
    `heroku.dyno.memory_swap g 11.43 ${tags}`,
    `heroku.dyno.memory_pgpgin g 80522 ${tags}`,
    `heroku.dyno.memory_pgpgout g 53004 ${tags}`,
    `heroku.dyno.memory_quota g 512 ${tags}`,
  ]);
  t.notMatch(mem.samples.join(' '), /4b88c98d|54241834/, 'the per-run dyno id is never a tag');
  const load = run({ appName: 'heroku', procId: 'worker.2', msg: 'source=worker.2 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99' });
  t.same(load.samples, [
    'heroku.dyno.load_avg_1m g 2.46 [app:shop,dyno:worker.2,dyno_type:worker]',
    'heroku.dyno.load_avg_5m g 1.06 [app:shop,dyno:worker.2,dyno_type:worker]',
    'heroku.dyno.load_avg_15m g 0.99 [app:shop,dyno:worker.2,dyno_type:worker]',
  ]);
});

t.test('dyno runtime metrics of one-off dynos get only dyno_type (run.N grows without bound)', async (t) => {
  t.same(run({ appName: 'heroku', procId: 'run.4821', msg: 'source=run.4821 sample#load_avg_1m=1' }).samples, ['heroku.dyno.load_avg_1m g 1 [app:shop,dyno_type:run]']);
  t.same(dynoTags('scheduler.1234'), ['dyno_type:scheduler']);
  t.same(dynoTags('web.12'), ['dyno:web.12', 'dyno_type:web']);
  t.same(dynoTags('heroku.54241834.4b88c98d'), [], 'not a dyno name');
  t.same(dynoTags(''), []);
});

t.test('Heroku Postgres (2016 and 2022 formats): gauges heroku.postgres.<key>, - becomes _, tagged addon and source', async (t) => {
  const old = run({
    appName: 'app',
    procId: 'heroku-postgres',
    msg: 'source=DATABASE sample#current_transaction=15365 sample#db_size=4347350804bytes sample#tables=43 sample#active-connections=6 sample#waiting-connections=0 sample#index-cache-hit-rate=0.97116 sample#table-cache-hit-rate=0.73958 sample#load-avg-1m=0.05 sample#load-avg-5m=0.03 sample#load-avg-15m=0.035 sample#read-iops=0 sample#write-iops=112.73 sample#memory-total=15405636.0kB sample#memory-free=214004kB sample#memory-cached=14392920.0kB sample#memory-postgres=181644kB',
  });
  t.equal(old.samples.length, 16);
  t.ok(old.samples.includes('heroku.postgres.db_size g 4347350804 [app:shop,source:DATABASE]'));
  t.ok(old.samples.includes('heroku.postgres.active_connections g 6 [app:shop,source:DATABASE]'));
  t.ok(old.samples.includes('heroku.postgres.memory_postgres g 181644 [app:shop,source:DATABASE]'));
  const next = run({
    appName: 'app',
    procId: 'heroku-postgres',
    msg: 'source=HEROKU_POSTGRESQL_GREEN addon=postgresql-opaque-12345 sample#current_transaction=11618849366 sample#db_size=147391814791bytes sample#tables=67 sample#active-connections=41 sample#waiting-connections=0 sample#index-cache-hit-rate=0.99625 sample#table-cache-hit-rate=0.99686 sample#load-avg-1m=0.3575 sample#load-avg-5m=0.3275 sample#load-avg-15m=0.2475 sample#read-iops=302.48 sample#write-iops=351.78 sample#tmp-disk-used=542765056 sample#tmp-disk-available=72436027392 sample#memory-total=31328356kB sample#memory-free=242328kB sample#memory-cached=29518708kB sample#memory-postgres=367856kB sample#wal-percentage-used=0.07767112123673295',
  });
  t.equal(next.samples.length, 19);
  const tags = '[addon:postgresql-opaque-12345,app:shop,source:HEROKU_POSTGRESQL_GREEN]';
  t.ok(next.samples.includes(`heroku.postgres.tmp_disk_available g 72436027392 ${tags}`));
  t.ok(next.samples.includes(`heroku.postgres.wal_percentage_used g 0.07767112123673295 ${tags}`));
});

t.test('Heroku Redis (2016 and 2026 formats) and PgBouncer', async (t) => {
  const redis = run({
    appName: 'app',
    procId: 'heroku-redis',
    msg: 'source=REDIS addon=redis-rugged-24473 sample#active-connections=4 sample#max-connections=18 sample#connection-percentage-used=0.22222 sample#load-avg-1m=1.51 sample#load-avg-5m=1.09 sample#load-avg-15m=1.135 sample#read-iops=0 sample#write-iops=0 sample#max-iops=3000 sample#iops-percentage-used=0.00000 sample#memory-total=16167800kB sample#memory-free=10693340kB sample#memory-percentage-used=0.33860 sample#memory-cached=979072kB sample#memory-redis=5116080bytes sample#hit-rate=0.0013079 sample#evicted-keys=0',
  });
  t.equal(redis.samples.length, 17);
  t.ok(redis.samples.includes('heroku.redis.memory_redis g 5116080 [addon:redis-rugged-24473,app:shop,source:REDIS]'));
  t.ok(redis.samples.includes('heroku.redis.connection_percentage_used g 0.22222 [addon:redis-rugged-24473,app:shop,source:REDIS]'));
  const old = run({ appName: 'app', procId: 'heroku-redis', msg: 'source=REDIS sample#hit-rate=0.0096774 sample#evicted-keys=0' });
  t.same(old.samples, ['heroku.redis.hit_rate g 0.0096774 [app:shop,source:REDIS]', 'heroku.redis.evicted_keys g 0 [app:shop,source:REDIS]'], 'no addon= means no addon tag');
  const bouncer = run({
    appName: 'app',
    procId: 'heroku-pgbouncer',
    msg: 'source=pgbouncer addon=postgresql-contoured-12345 sample#client_active=56 sample#client_waiting=0 sample#server_active=0 sample#server_idle=16 sample#max_wait=0 sample#avg_query=8751 sample#avg_recv=37568 sample#avg_sent=1339005',
  });
  t.equal(bouncer.samples.length, 8);
  t.equal(bouncer.samples[0], 'heroku.pgbouncer.client_active g 56 [addon:postgresql-contoured-12345,app:shop,source:pgbouncer]');
});

t.test('add-on lines: a bad sample is counted and the rest kept', async (t) => {
  const r = run({ appName: 'app', procId: 'heroku-redis', msg: 'source=REDIS sample#a=1 sample#b=oops sample#c= sample#d=2' });
  t.same(r.samples, ['heroku.redis.a g 1 [app:shop,source:REDIS]', 'heroku.redis.d g 2 [app:shop,source:REDIS]']);
  t.same(r.bad, [
    ['bad_value', 'sample#b'],
    ['bad_value', 'sample#c'],
  ]);
});

t.test('Error R14 / R15 lines: heroku.error tagged code and dyno; other platform lines produce nothing', async (t) => {
  t.same(run({ appName: 'heroku', procId: 'web.1', msg: 'Error R14 (Memory quota exceeded)' }).samples, ['heroku.error c 1 [app:shop,code:R14,dyno:web.1,dyno_type:web]']);
  t.same(run({ appName: 'app', procId: 'worker.3', msg: 'Error R15 (Memory quota vastly exceeded)' }).samples, ['heroku.error c 1 [app:shop,code:R15,dyno:worker.3,dyno_type:worker]'], 'older docs: platform lines as app');
  t.same(run({ appName: 'heroku', procId: 'web.1', msg: 'Process running mem=870M(170.1%)' }).samples, []);
  t.same(run({ appName: 'heroku', procId: 'web.3', msg: 'State changed from starting to up' }).samples, []);
  t.same(run({ appName: 'heroku', procId: 'web.1', msg: 'count#x=1' }).samples, [], 'platform lines are not l2met app lines');
  t.same(run({ appName: 'app', procId: 'web.1', msg: 'Error: something broke' }).samples, [], 'an app error message is not a Heroku error code');
});

t.test('logplex L10: both wordings add N to heroku.logplex.dropped; other L codes are heroku.error', async (t) => {
  t.same(run({ appName: 'heroku', procId: 'logplex', msg: 'Error L10 (output buffer overflow): 5 messages dropped since 2025-03-18T07:43:08.99958+00:00.' }).samples, ['heroku.logplex.dropped c 5 [app:shop]']);
  t.same(
    run({ appName: 'heroku', procId: 'logplex', msg: "Error L10 (output buffer overflow): drain 'd.efe51fd5-8fdb-4153-b094-f5e9f7df3058' dropped 1 messages since 2025-10-22T14:24:56.323777+00:00." }).samples,
    ['heroku.logplex.dropped c 1 [app:shop]'],
    'the drain token is not a tag',
  );
  t.same(run({ appName: 'heroku', procId: 'logplex', msg: 'Error L11 (Tail buffer overflow)' }).samples, ['heroku.error c 1 [app:shop,code:L11]']);
});

t.test('app lines: l2met metrics tagged source and unit; plain lines produce nothing', async (t) => {
  t.same(run({ appName: 'app', procId: 'web.1', msg: 'count#signups=1 measure#signup-controller=50ms sample#queue.length=99' }).samples, [
    'signups c 1 [app:shop]',
    'signup-controller ms 50 [app:shop,unit:ms]',
    'queue.length g 99 [app:shop]',
  ]);
  t.same(run({ msg: 'source=web.1 measure#db.latency=4ms' }).samples, ['db.latency ms 4 [app:shop,source:web.1,unit:ms]'], 'a plain-text line (no syslog header)');
  t.same(run({ msg: 'source=a,b|c sample#x=50%' }).samples, ['x g 50 [app:shop,source:a_b_c,unit:%]'], 'tag values are cleaned');
  t.same(run({ msg: 'Build completed successfully' }).samples, []);
});

t.test('naming and tag helpers', async (t) => {
  t.equal(herokuKey('active-connections'), 'active_connections');
  t.equal(herokuKey('load-avg-1m'), 'load_avg_1m');
  t.equal(herokuKey('memory_total'), 'memory_total');
  t.equal(tag('k', ''), undefined);
  t.equal(tag('k', undefined), undefined);
  t.equal(tag('k', 'a:b,c'), 'k:a_b_c');
  t.equal(tag('k', 'x'.repeat(150)), `k:${'x'.repeat(100)}`);
});
