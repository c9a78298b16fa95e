import t from 'tap';
import { Aggregator } from '../src/aggregator.js';
import type { WindowState } from '../src/state-merge.js';
import type { MetricBatch } from '../src/model.js';

const T0 = 1_700_000_000_000;

/** A clock that moves 1 ms per reading, inside one window, so gauge update times are ordered. */
function tickClock() {
  let now = T0 + 1000;
  return () => now++;
}

function mkLines(seed: number, n: number): string[] {
  let x = seed;
  const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `m${Math.floor(rnd() * 5)}`;
    const tag = `#k:${Math.floor(rnd() * 3)}`;
    const v = Math.floor(rnd() * 1000) / 10;
    switch (Math.floor(rnd() * 6)) {
      case 0: out.push(`${name}.c:${v}|c|@0.5|${tag}`); break;
      case 1: out.push(`${name}.g:${v}|g|${tag}`); break;
      case 2: out.push(`${name}.s:u${Math.floor(v)}|s|${tag}`); break;
      case 3: out.push(`${name}.h:${v}|h|${tag}`); break;
      case 4: out.push(`${name}.ms:${v}|ms|@0.25|${tag}`); break;
      default: out.push(`${name}.d:${v}|d|${tag}`); break;
    }
  }
  return out;
}

const norm = (b: MetricBatch) => ({
  series: [...b.series].map((s) => ({ ...s, value: Math.round(s.value * 1e9) / 1e9 })).sort((a, c) => (a.metric + a.tags.join()).localeCompare(c.metric + c.tags.join())),
  // Float sums depend on addition order; everything else must match exactly.
  sketches: [...b.sketches].map((k) => ({ ...k, sketch: { ...k.sketch, sum: Math.round(k.sketch.sum * 1e9) / 1e9, avg: Math.round(k.sketch.avg * 1e9) / 1e9 } })).sort((a, c) => (a.metric + a.tags.join()).localeCompare(c.metric + c.tags.join())),
});

t.test('partial windows from two aggregators merge into exactly what one aggregator produces', async (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const lines = mkLines(seed, 3000);
    const clock = tickClock();
    const opts = { hostname: 'h', selfMetrics: false, now: clock, histogramPercentiles: [0.5, 0.95, 0.99], histogramAggregates: ['max', 'min', 'median', 'avg', 'sum', 'count'] as const };
    const single = new Aggregator({ ...opts, histogramAggregates: [...opts.histogramAggregates] });
    const w1 = new Aggregator({ ...opts, histogramAggregates: [...opts.histogramAggregates] });
    const w2 = new Aggregator({ ...opts, histogramAggregates: [...opts.histogramAggregates] });
    const parent = new Aggregator({ ...opts, histogramAggregates: [...opts.histogramAggregates] });
    lines.forEach((line, i) => {
      single.ingestStatsd(Buffer.from(line));
      (i % 3 === 0 ? w1 : w2).ingestStatsd(Buffer.from(line));
    });
    // Through structured clone, as between processes.
    const states: WindowState[] = [structuredClone(w1.drainState()), structuredClone(w2.drainState())];
    for (const s of states) parent.mergeState(s);
    t.same(norm(parent.closeWindow()), norm(single.closeWindow()), `seed ${seed}`);
  }
});

t.test('drainState forgets idle contexts and leaves the next window empty', async (t) => {
  const w = new Aggregator({ hostname: 'h', selfMetrics: false, now: tickClock() });
  w.ingestStatsd(Buffer.from('a:1|c\nb:2|g'));
  const first = w.drainState();
  t.equal(first.contexts.length, 2);
  t.equal(w.drainState().contexts.length, 0);
  t.equal(w.contextCount, 0, 'a worker keeps no idle counters: zero-fill is the parent job');
});

t.test('the parent zero-fills merged counters and applies maxContexts', async (t) => {
  let now = T0 + 1;
  const parent = new Aggregator({ hostname: 'h', selfMetrics: false, maxContexts: 1, now: () => now });
  const w = new Aggregator({ hostname: 'h', selfMetrics: false, now: () => now });
  w.ingestStatsd(Buffer.from('a:1|c\nb:1|c'));
  parent.mergeState(w.drainState());
  const b1 = parent.closeWindow();
  t.same(b1.series.map((s) => [s.metric, s.value]), [['a', 0.1]]);
  t.equal(parent.stats.component('aggregator').dropped('max_contexts'), 1);
  now += 10_000;
  t.same(parent.closeWindow().series.map((s) => [s.metric, s.value]), [['a', 0]]);
});
