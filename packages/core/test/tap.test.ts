import t from 'tap';
import { Aggregator } from '../src/aggregator.js';
import { componentContext } from '../src/component.js';
import { silentLogger } from '../src/logger.js';
import { globToRegExp, type TapDelivery } from '../src/tap.js';

function setup() {
  const a = new Aggregator({ hostname: 'h1', selfMetrics: false });
  const rx = a.target(componentContext({ logger: silentLogger(), stats: a.stats }, 'statsd-udp'));
  return { a, rx };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('globs', async (t) => {
  t.ok(globToRegExp('api.*').test('api.requests.count'));
  t.notOk(globToRegExp('api.*').test('xapi.requests'));
  t.ok(globToRegExp('a?c').test('abc'));
  t.notOk(globToRegExp('a.c').test('abc'), 'a dot is literal');
  t.ok(globToRegExp('(x)+[y]').test('(x)+[y]'));
});

t.test('inactive until a subscriber connects, and again after it leaves', async (t) => {
  const { a, rx } = setup();
  t.equal(a.tap.active, false);
  const got: TapDelivery[] = [];
  const stop = a.tap.subscribe({}, (d) => got.push(d));
  t.equal(a.tap.active, true);
  rx.statsd(Buffer.from('a.b:1|c|#env:prod\nset.x:u1|s\nh.y:1:2:3|h|@0.5'));
  await wait(400);
  stop();
  t.equal(a.tap.active, false);
  const samples = got.flatMap((d) => d.samples);
  t.same(
    samples.map((s) => [s.component, s.name, s.type, s.values, s.setMember, s.tags, s.sampleRate]),
    [
      ['statsd-udp', 'a.b', 'c', [1], undefined, ['env:prod'], 1],
      ['statsd-udp', 'set.x', 's', [], 'u1', [], 1],
      ['statsd-udp', 'h.y', 'h', [1, 2, 3], undefined, [], 0.5],
    ],
  );
  rx.statsd(Buffer.from('after:1|c'));
  await wait(300);
  t.notOk(got.flatMap((d) => d.samples).some((s) => s.name === 'after'), 'nothing is offered once unsubscribed');
  // The samples are aggregated as usual.
  t.equal(a.contextCount, 4);
});

t.test('filters by glob and type, rate-limits and counts what it skipped', async (t) => {
  const { a, rx } = setup();
  const got: TapDelivery[] = [];
  const stop = a.tap.subscribe({ match: 'api.*', types: ['c', 'ms'], maxPerSecond: 8 }, (d) => got.push(d));
  const lines: string[] = [];
  for (let i = 0; i < 50; i++) lines.push(`api.n${i}:1|c`, `api.g${i}:1|g`, `other.n${i}:1|c`);
  rx.statsd(Buffer.from(lines.join('\n')));
  rx.addSample({ name: 'api.drain', type: 'ms', value: 12 });
  await wait(300);
  stop();
  const samples = got.flatMap((d) => d.samples);
  t.equal(samples.length, 2, 'the per-tick budget (8/s over 4 ticks) is 2');
  t.same(samples.map((s) => s.name), ['api.n0', 'api.n1']);
  t.equal(got.reduce((n, d) => n + d.skipped, 0), 48 + 1, 'matching lines over the budget are skipped');
});

t.test('the sampler bounds the lines examined at high rates', async (t) => {
  const { a, rx } = setup();
  const got: TapDelivery[] = [];
  const stop = a.tap.subscribe({ maxPerSecond: 1000 }, (d) => got.push(d));
  const pkt = Buffer.from(Array.from({ length: 20 }, (_, i) => `load.${i}:1|c`).join('\n'));
  // A first tick measures the rate...
  for (let i = 0; i < 20_000; i++) rx.statsd(pkt);
  await wait(300);
  got.length = 0;
  // ...after which only every stride-th line is examined.
  for (let i = 0; i < 20_000; i++) rx.statsd(pkt);
  await wait(300);
  stop();
  const shown = got.reduce((n, d) => n + d.samples.length, 0);
  const skipped = got.reduce((n, d) => n + d.skipped, 0);
  t.ok(shown <= 250, `shown ${shown}`);
  t.ok(skipped >= 400_000 - 250 - shown, `skipped ${skipped}`);
});
