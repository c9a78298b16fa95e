import t from 'tap';
import { Aggregator } from '../src/aggregator.js';
import { componentContext } from '../src/component.js';
import { silentLogger } from '../src/logger.js';

const T0 = 1_700_000_000_000;

function agg(maxContexts?: number) {
  const c = { now: T0 + 1234 };
  const a = new Aggregator({ hostname: 'h1', now: () => c.now, selfMetrics: false, ...(maxContexts !== undefined ? { maxContexts } : {}) });
  const rx = a.target(componentContext({ logger: silentLogger(), stats: a.stats }, 'embedded'));
  return { a, c, rx };
}

t.test('ranks names by live contexts, with examples and the tag key that blew up', async (t) => {
  const { a, rx } = agg(1000);
  const lines: string[] = [];
  for (let i = 0; i < 50; i++) lines.push(`api.requests:1|c|#env:prod,user:u${i}`);
  for (let i = 0; i < 5; i++) lines.push(`api.latency:${i}|ms|#env:prod,route:r${i}`);
  lines.push('queue.depth:3|g');
  rx.statsd(Buffer.from(lines.join('\n')));
  const r = await a.topContexts({ top: 2, by: 'contexts', examples: 2 });
  t.equal(r.liveContexts, 56);
  t.equal(r.maxContexts, 1000);
  t.equal(r.names, 3);
  t.equal(r.truncated, false);
  t.same(r.entries.map((e) => [e.name, e.contexts]), [['api.requests', 50], ['api.latency', 5]]);
  const top = r.entries[0]!;
  t.equal(top.examples.length, 2);
  t.ok(top.examples.every((ex) => ex.includes('env:prod') && ex.some((tag) => tag.startsWith('user:u'))));
  t.same(top.tagKeys?.[0], { key: 'user', values: 50 });
  t.same(top.tagKeys?.[1], { key: 'env', values: 1 });
  // No window closed yet while watched: samples come from the open window.
  t.equal(r.windowStartMs, a.currentWindowStart);
  t.equal(r.entries[1]!.samples, 5);
});

t.test('by samples uses the last closed window once someone asked', async (t) => {
  const { a, c, rx } = agg();
  await a.topContexts({ top: 5, by: 'samples', examples: 0 });
  const closedStart = a.currentWindowStart;
  // 200 timer values on one context outrank 20 counter contexts.
  const lines: string[] = [];
  for (let i = 0; i < 200; i++) lines.push(`db.query:${i}|ms`);
  for (let i = 0; i < 20; i++) lines.push(`hits:1|c|#shard:${i}`);
  rx.statsd(Buffer.from(lines.join('\n')));
  c.now += 10_000;
  a.closeWindow();
  // The open window gets other traffic; the report is about the closed one.
  rx.statsd(Buffer.from('other:1|c'));
  const r = await a.topContexts({ top: 5, by: 'samples', examples: 0 });
  t.equal(r.windowStartMs, closedStart);
  t.same(r.entries.map((e) => [e.name, e.samples, e.contexts]), [['db.query', 200, 1], ['hits', 20, 20], ['other', 0, 1]]);
  t.same(r.entries[0]!.examples, []);
});

t.test('builds skip the per-name tally when nobody asked', async (t) => {
  const { a, c, rx } = agg();
  rx.statsd(Buffer.from('x:1|c\nx:2|c'));
  c.now += 10_000;
  a.closeWindow();
  rx.statsd(Buffer.from('y:1|c'));
  const r = await a.topContexts({ top: 5, by: 'samples', examples: 1 });
  // Nothing was tallied, so the open window is what the samples describe.
  t.equal(r.windowStartMs, a.currentWindowStart);
  t.same(r.entries.map((e) => [e.name, e.samples]), [['y', 1], ['x', 0]]);
});

t.test('a large table is scanned across loop turns without holding the loop', async (t) => {
  const { a, rx } = agg(400_000);
  for (let p = 0; p < 300; p++) {
    const lines: string[] = [];
    for (let i = 0; i < 1000; i++) lines.push(`big.${p % 7}:1|c|#id:${p * 1000 + i}`);
    rx.statsd(Buffer.from(lines.join('\n')));
  }
  let turns = 0;
  let longestGapMs = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGapMs = Math.max(longestGapMs, now - last);
    last = now;
    turns++;
  }, 0);
  const t0 = performance.now();
  const r = await a.topContexts({ top: 10, by: 'contexts', examples: 1 });
  const elapsed = performance.now() - t0;
  clearInterval(ticker);
  t.equal(r.liveContexts, 300_000);
  t.equal(r.entries.length, 7);
  if (!r.truncated) t.equal(r.entries.reduce((n, e) => n + e.contexts, 0), 300_000);
  t.ok(turns > 3, `the loop turned ${turns} times during a ${elapsed.toFixed(0)} ms scan`);
  t.ok(longestGapMs < 250, `longest loop gap ${longestGapMs.toFixed(1)} ms`);
  t.same(r.entries[0]!.tagKeys?.[0], { key: 'id', values: 1000 }, 'distinct values stop counting at the cap');
});
