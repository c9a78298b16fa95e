import t from 'tap';
import { Aggregator } from '../src/aggregator.js';
import { AgentSketch } from '../src/aggregates/agent-sketch.js';
import { HistogramAgg } from '../src/aggregates/histogram.js';
import type { MetricBatch } from '../src/model.js';

const T0 = 1_700_000_000_000;

/** Deterministic lines of every type; `prefix` keeps windows' contexts apart when wanted. */
function lines(seed: number, n: number, prefix: string): string[] {
  let x = seed;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `${prefix}${Math.floor(rnd() * 40)}`;
    const tag = `#k:${Math.floor(rnd() * 3)},z:${Math.floor(rnd() * 2)}`;
    const v = Math.floor(rnd() * 100000) / 10 - 100;
    switch (Math.floor(rnd() * 7)) {
      case 0: out.push(`${name}.c:${v}|c|@0.5|${tag}`); break;
      case 1: out.push(`${name}.g:${v}|g|${tag}`); break;
      case 2: out.push(`${name}.s:u${Math.floor(v)}|s|${tag}`); break;
      case 3: out.push(`${name}.h:${v}|h|${tag}`); break;
      case 4: out.push(`${name}.ms:${v}|ms|@0.25|${tag}`); break;
      case 5: out.push(`${name}.hot:${v}|h|@0.5|${tag}`); break;
      default: out.push(`${name}.d:${v}|d|@0.5|${tag}`); break;
    }
  }
  return out;
}

function sorted(b: MetricBatch) {
  const key = (s: { metric: string; tags: readonly string[] }) => `${s.metric}|${s.tags.join(',')}`;
  return {
    series: [...b.series].map((s) => ({ ...s, tags: [...s.tags] })).sort((p, q) => key(p).localeCompare(key(q))),
    sketches: [...b.sketches].map((s) => ({ ...s, tags: [...s.tags] })).sort((p, q) => key(p).localeCompare(key(q))),
  };
}

const opts = { hostname: 'h', selfMetrics: false, counterExpiryMs: 0, histogramExactSamples: 50 } as const;

t.test('pooled window storage is fully reset: every window equals a fresh aggregator fed only that window', async (t) => {
  for (const asyncClose of [false, true]) {
    let now = T0 + 1;
    const a = new Aggregator({ ...opts, now: () => now });
    for (let w = 0; w < 6; w++) {
      // Some windows reuse the previous contexts, some bring new ones; hot histograms overflow into sketches.
      const input = lines(1000 + w, w % 2 === 0 ? 3000 : 400, w % 3 === 0 ? 'a' : 'b');
      const fresh = new Aggregator({ ...opts, now: () => now });
      for (let i = 0; i < input.length; i += 25) {
        const pkt = Buffer.from(input.slice(i, i + 25).join('\n'));
        a.ingestStatsd(pkt);
        fresh.ingestStatsd(pkt);
      }
      now += 10_000;
      const got = asyncClose ? await a.closeWindowAsync() : a.closeWindow();
      t.same(sorted(got), sorted(fresh.closeWindow()), `window ${w} (${asyncClose ? 'async' : 'sync'} close)`);
    }
  }
});

t.test('a window still being built does not share aggregates with the window that opened after it', async (t) => {
  let now = T0 + 1;
  const a = new Aggregator({ ...opts, now: () => now });
  // Enough contexts for several build chunks.
  const big = Array.from({ length: 5000 }, (_, i) => `x${i}:${i}|h\nd${i}:${i}|d`);
  for (let i = 0; i < big.length; i += 50) a.ingestStatsd(Buffer.from(big.slice(i, i + 50).join('\n')));
  now += 10_000;
  const first = a.closeWindowAsync();
  // Arrives while the first window is built, so it may reuse histograms and sketches released by it.
  for (let i = 0; i < 5000; i += 1000) a.ingestStatsd(Buffer.from(`x${i}:-7|h\nd${i}:-7|d\nnew${i}:1|h`));
  const b1 = await first;
  t.equal(b1.series.filter((s) => s.metric.endsWith('.max')).length, 5000);
  t.equal(b1.series.find((s) => s.metric === 'x4000.max')?.value, 4000, 'first window untouched by later samples');
  t.equal(b1.sketches.find((s) => s.metric === 'd4000')?.sketch.count, 1);
  now += 10_000;
  const b2 = a.closeWindow();
  t.same(
    b2.series.filter((s) => s.metric.endsWith('.max')).map((s) => [s.metric, s.value]).sort(),
    [...[0, 1000, 2000, 3000, 4000].map((i) => [`x${i}.max`, -7]), ...[0, 1000, 2000, 3000, 4000].map((i) => [`new${i}.max`, 1])].sort(),
  );
  t.same(b2.sketches.map((s) => [s.metric, s.sketch.count, s.sketch.min]).sort(), [0, 1000, 2000, 3000, 4000].map((i) => [`d${i}`, 1, -7]).sort());
});

t.test('a context that expired and comes back starts from nothing', async (t) => {
  let now = T0 + 1;
  const a = new Aggregator({ ...opts, gaugeDeltas: true, counterExpiryMs: 20_000, now: () => now });
  a.ingestStatsd(Buffer.from('g:10|g|#t:1\nh:5|h|#t:1\nh:6|h|#t:1\nc:4|c|#t:1\ns:a|s|#t:1'));
  now += 10_000;
  a.closeWindow();
  t.equal(a.contextCount, 4);
  now += 10_000;
  const idle = a.closeWindow();
  t.same(idle.series.map((s) => [s.metric, s.value]), [['c', 0]], 'only the counter is zero-filled');
  t.equal(a.contextCount, 1, 'the other contexts expired');
  now += 10_000;
  a.closeWindow();
  t.equal(a.contextCount, 0);
  a.ingestStatsd(Buffer.from('g:+3|g|#t:1\nh:1|h|#t:1\nc:1|c|#t:1\ns:b|s|#t:1'));
  now += 10_000;
  const b = a.closeWindow();
  const v = (m: string) => b.series.find((s) => s.metric === m)?.value;
  t.equal(v('g'), 3, 'a delta on a new gauge context sets it; the old value is gone');
  t.equal(v('h.max'), 1);
  t.equal(v('h.count'), 0.1);
  t.equal(v('c'), 0.1);
  t.equal(v('s'), 1);
  t.same(b.series.find((s) => s.metric === 'g')?.tags, ['t:1']);
});

t.test('contexts share one tag array while any lives; series keep their context tag array across windows', async (t) => {
  let now = T0 + 1;
  const a = new Aggregator({ ...opts, counterExpiryMs: 60_000, now: () => now });
  a.ingestStatsd(Buffer.from('a:1|c|#y:2,x:1\nb:1|g|#x:1,y:2\nc:1|c|#x:1'));
  now += 10_000;
  const b1 = a.closeWindow();
  const tagsOf = (b: MetricBatch, m: string) => b.series.find((s) => s.metric === m)!.tags;
  t.equal(tagsOf(b1, 'a'), tagsOf(b1, 'b'), 'same tags, same array');
  t.same(tagsOf(b1, 'a'), ['x:1', 'y:2']);
  t.not(tagsOf(b1, 'a'), tagsOf(b1, 'c'));
  a.ingestStatsd(Buffer.from('a:1|c|#x:1,y:2'));
  now += 10_000;
  t.equal(tagsOf(a.closeWindow(), 'a'), tagsOf(b1, 'a'), 'the same array in the next window');
});

t.test('HistogramAgg.reset and AgentSketch.reset leave them as good as new', async (t) => {
  const h = new HistogramAgg(100);
  const s = new AgentSketch();
  for (let i = 0; i < 5000; i++) {
    // Spread over decades, so the sketch grows far more bins than a reset one keeps.
    h.add(((i * 7919) % 100_003) / 7, 0.5);
    s.insert(((i * 7919) % 100_003) / 7, 3);
  }
  for (const big of [true, false]) {
    h.reset();
    s.reset();
    t.ok(h.isEmpty && h.isExact && s.isEmpty, 'empty after reset');
    const fh = new HistogramAgg(100);
    const fs = new AgentSketch();
    for (const v of big ? [3, -1, 2] : [7]) {
      h.add(v);
      fh.add(v);
      s.insert(v);
      fs.insert(v);
    }
    t.same(h.toState(), fh.toState());
    t.same([h.median(), h.percentile(0.95), h.count, h.sum, h.min, h.max], [fh.median(), fh.percentile(0.95), fh.count, fh.sum, fh.min, fh.max]);
    t.same(s.toData(), fs.toData());
    t.ok(s.byteSize() < 2048, `a reset sketch lets large arrays go (${s.byteSize()} bytes)`);
  }
});

t.test('raw byte forms and the object API resolve to the same contexts (tag order, duplicates, host:, non-ASCII)', async (t) => {
  let x = 7;
  const rnd = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32) * n | 0;
  const names = ['a', 'b.c', 'é', 'ü.ms', 'x'.repeat(40), 'n\u00ff'];
  const tagPool = ['k:1', 'k:2', 'z', 'host:h2', 'host:h3', 'ü:1', 'dd.internal.card:low', 'a:é'];
  const types = ['c', 'g', 'h', 'ms', 'd', 's'] as const;
  for (const globalTags of [[], ['env:prod']]) {
    let now = T0 + 1;
    const o = { ...opts, counterExpiryMs: 20_000, globalTags, now: () => now };
    const raw = new Aggregator(o);
    const api = new Aggregator(o);
    for (let w = 0; w < 4; w++) {
      for (let i = 0; i < 3000; i++) {
        const name = names[rnd(names.length)]!;
        const type = types[rnd(types.length)]!;
        const tags = Array.from({ length: rnd(4) }, () => tagPool[rnd(tagPool.length)]!);
        const v = rnd(1000) - 200;
        const member = `m${rnd(5)}`;
        raw.ingestStatsd(Buffer.from(`${name}:${type === 's' ? member : v}|${type}${tags.length > 0 ? `|#${tags.join(',')}` : ''}`));
        if (type === 's') api.set(name, member, tags);
        else api.addSample({ name, type, value: v, tags });
      }
      now += 10_000;
      const [a, b] = [raw.closeWindow(), api.closeWindow()];
      t.same(sorted(a), sorted(b), `window ${w}, global tags ${globalTags.join(',')}`);
      t.equal(raw.contextCount, api.contextCount);
    }
  }
});

t.test('after a burst of contexts, windows of a few contexts stay exact on fresh, small storage', async (t) => {
  let now = T0 + 1;
  const a = new Aggregator({ ...opts, now: () => now });
  for (let i = 0; i < 20_000; i += 100) a.ingestStatsd(Buffer.from(Array.from({ length: 100 }, (_, j) => `burst${i + j}:1|h`).join('\n')));
  now += 10_000;
  t.equal(a.closeWindow().series.length, 20_000 * 5);
  for (let w = 0; w < 3; w++) {
    a.ingestStatsd(Buffer.from(`small:${w}|h\nsmall.c:1|c`));
    now += 10_000;
    const b = a.closeWindow();
    t.same(b.series.filter((s) => s.metric === 'small.max' || s.metric === 'small.c').map((s) => s.value), [w, 0.1]);
    t.equal(b.series.length, 6);
  }
});

t.test('normalizeTags: the sorted fast path answers exactly like the general one', async (t) => {
  const { normalizeTags } = await import('../src/tags.js');
  const cases: string[][] = [[], ['a'], ['a', 'b'], ['b', 'a'], ['a', 'a'], ['a', ''], ['host:x', 'a'], ['a', 'dd.internal.card:low'], ['a', 'dd.internal.other:1'], ['A', 'a', 'é'], ['é', 'a']];
  for (const tags of cases) {
    const general = normalizeTags(tags, ['zz:global']);
    const withoutGlobal = { tags: general.tags.filter((x) => x !== 'zz:global'), host: general.host };
    const got = normalizeTags(tags);
    t.same(got, withoutGlobal, JSON.stringify(tags));
    t.not(got.tags, tags, 'a new array, never the caller\'s');
  }
});

t.test('many contexts (32-bit hashes collide at this size): lookups, expiry and counts stay exact', async (t) => {
  let now = T0 + 1;
  const a = new Aggregator({ ...opts, counterExpiryMs: 0, now: () => now });
  const n = 150_000;
  const feed = (keep: (i: number) => boolean, v: number) => {
    let lines: string[] = [];
    for (let i = 0; i < n; i++) {
      if (!keep(i)) continue;
      lines.push(`m${i}:${v}|${i % 3 === 0 ? 'g' : 'c'}|#t:${i % 7}`);
      if (lines.length === 200) {
        a.ingestStatsd(Buffer.from(lines.join('\n')));
        lines = [];
      }
    }
    if (lines.length > 0) a.ingestStatsd(Buffer.from(lines.join('\n')));
  };
  feed(() => true, 1);
  now += 10_000;
  t.equal(a.closeWindow().series.length, n);
  t.equal(a.contextCount, n);
  // Every other context goes idle and is forgotten; the rest must still be found, not duplicated.
  feed((i) => i % 2 === 0, 2);
  now += 10_000;
  const b = a.closeWindow();
  t.equal(b.series.length, n / 2);
  t.equal(a.contextCount, n / 2);
  t.ok(b.series.every((s) => s.value === (s.type === 'gauge' ? 2 : 0.2)));
  feed(() => true, 3);
  now += 10_000;
  const c = a.closeWindow();
  t.equal(c.series.length, n);
  t.equal(a.contextCount, n);
  t.equal(new Set(c.series.map((s) => `${s.metric}|${s.tags.join(',')}`)).size, n, 'one series per context');
});

t.test('the series array is exactly filled: timestamped, slots and idle zeros, no holes', async (t) => {
  let now = T0 + 1;
  const a = new Aggregator({ ...opts, counterExpiryMs: 60_000, now: () => now });
  a.ingestStatsd(Buffer.from('idle:1|c\nx:1|h\nd:1|d\ns:a|s\ng:1|g'));
  now += 10_000;
  a.closeWindow();
  a.ingestStatsd(Buffer.from(`t:5|g|T${Math.floor(T0 / 1000)}\nx:2|h\nc:1|c`));
  now += 10_000;
  const b = await a.closeWindowAsync();
  const metrics = b.series.map((s) => s.metric);
  t.same(metrics.sort(), ['c', 'idle', 't', 'x.95percentile', 'x.avg', 'x.count', 'x.max', 'x.median'].sort());
  t.equal(Object.keys(b.series).length, b.series.length, 'no holes');
});
