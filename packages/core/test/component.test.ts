import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { Aggregator } from '../src/aggregator.js';
import { ComponentContext, ComponentNames, componentContext, sinkContext } from '../src/component.js';
import { StatsRegistry } from '../src/stats.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

t.test('drop counts every item and logs once a minute per reason, naming the suppressed count', (t) => {
  const { lines, logger } = capture();
  let now = 1_000_000;
  const stats = new StatsRegistry();
  // Built by hand with a fake clock, so the rate limit is testable.
  const timed = new ComponentContext('statsd-tcp', 'statsd-tcp', logger.child({ component: 'statsd-tcp' }), stats.component('statsd-tcp'), () => now);
  for (let i = 0; i < 5; i++) timed.drop('line_too_long', 2, { code: 'MD_ERR_CONFIG_INVALID' });
  timed.drop('idle_timeout', 1, { code: 'MD_ERR_CONFIG_INVALID', fields: { remote: 'x' } });
  timed.drop('partial_line'); // counted, not logged
  t.equal(stats.component('statsd-tcp').dropped('line_too_long'), 10);
  t.equal(stats.component('statsd-tcp').dropped('partial_line'), 1);
  t.equal(lines.length, 2, 'one line per reason within the interval');
  t.equal(lines[0]!.component, 'statsd-tcp');
  t.equal(lines[0]!.reason, 'line_too_long');
  t.equal((lines[1] as { remote?: string }).remote, 'x');
  now += 60_000;
  timed.drop('line_too_long', 1, { code: 'MD_ERR_CONFIG_INVALID', level: 'error' });
  t.equal(lines.length, 3);
  t.equal(lines[2]!.suppressed, 4, 'the next line says how many were suppressed');
  t.equal(lines[2]!.level, 50);
  t.end();
});

t.test('component names are built in one place', (t) => {
  const root = { logger: pino({ level: 'silent' }), stats: new StatsRegistry() };
  t.equal(sinkContext(root, 'datadog').name, 'sink-datadog');
  t.equal(ComponentNames.sink('console'), 'sink-console');
  t.equal(componentContext(root, 'http', ComponentNames.httpStatsd).name, 'http-statsd');
  t.equal(root.stats.component('http-statsd'), componentContext(root, 'http', 'http-statsd').stats, 'same stats object per name');
  t.equal(sinkContext(root, 'datadog'), sinkContext(root, 'datadog'), 'one context per root and name, so its log limits are shared');
  t.not(sinkContext({ ...root, stats: new StatsRegistry() }, 'datadog'), sinkContext(root, 'datadog'), 'another registry, another context');
  t.throws(() => componentContext(root, 'statsd-udp', 'sink-datadog'), /already a sink/);
  t.end();
});

t.test('an ingest target counts on its component and reports accepted or dropped with weight', (t) => {
  const stats = new StatsRegistry();
  const a = new Aggregator({ hostname: 'h', stats, maxContexts: 1, selfMetrics: false });
  const ctx = componentContext({ logger: pino({ level: 'silent' }), stats }, 'http');
  const target = a.target(ctx);
  target.statsd(Buffer.from('a:1|c\nbad'));
  t.equal(ctx.stats.packets, 1);
  t.equal(ctx.stats.parsed, 1);
  t.equal(ctx.stats.bad, 1);
  t.equal(target.addSample({ name: 'a', type: 'c', value: 3 }), 'accepted');
  t.equal(target.addSample({ name: 'b', type: 'c', value: 3 }, 7), 'dropped');
  t.equal(stats.component('aggregator').dropped('max_contexts'), 7, 'a merged sample counts as its weight');
  t.equal(target.windowStartMs, a.currentWindowStart);
  t.end();
});
