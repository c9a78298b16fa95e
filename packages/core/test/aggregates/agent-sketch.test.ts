import t from 'tap';
import type { SketchData } from '../../src/model.js';
import {
  AgentSketch,
  SKETCH_BIAS,
  SKETCH_BIN_LIMIT,
  SKETCH_LN_GAMMA,
  SKETCH_MAX_KEY,
  roundHalfEven,
  sketchKey,
  sketchLowerBound,
} from '../../src/aggregates/agent-sketch.js';

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Exact quantile with the sketch's own rank definition, from sorted data. */
function exactQuantile(sorted: Float64Array, q: number): number {
  return sorted[roundHalfEven(q * (sorted.length - 1))]!;
}

function relErr(est: number, exact: number): number {
  return exact === 0 ? Math.abs(est) : Math.abs(est - exact) / Math.abs(exact);
}

t.test('constants match the agent configuration', (t) => {
  t.equal(SKETCH_LN_GAMMA, 0.015504186535965254);
  t.equal(SKETCH_BIAS, 1 - Math.floor(Math.log(1e-9) / SKETCH_LN_GAMMA));
  t.equal(SKETCH_BIAS, 1338);
  t.equal(SKETCH_BIN_LIMIT, 4096);
  t.end();
});

t.test('roundHalfEven rounds ties to even like Go', (t) => {
  const cases: [number, number][] = [
    [0.5, 0], [1.5, 2], [2.5, 2], [3.5, 4], [-0.5, 0], [-1.5, -2], [-2.5, -2],
    [2.4999999, 2], [2.5000001, 3], [-44.7, -45], [7, 7], [-7, -7],
  ];
  for (const [x, want] of cases) t.equal(roundHalfEven(x) + 0, want, `roundHalfEven(${x})`);
  t.end();
});

t.test('sketchKey matches the agent reference keys', (t) => {
  t.equal(sketchKey(1), 1338);
  t.equal(sketchKey(2), 1383);
  t.equal(sketchKey(10), 1487);
  t.equal(sketchKey(100), 1635);
  t.equal(sketchKey(0.5), 1293);
  t.end();
});

t.test('sketchKey handles negatives, zero, tiny and huge values', (t) => {
  t.equal(sketchKey(-1), -1338);
  t.equal(sketchKey(-10), -1487);
  t.equal(sketchKey(-0.5), -1293);
  t.equal(sketchKey(0) + 0, 0);
  t.equal(sketchKey(-0) + 0, 0);
  t.equal(sketchKey(5e-10) + 0, 0, 'below γ^(1-bias) is zero');
  t.equal(sketchKey(-5e-10) + 0, 0);
  t.equal(sketchKey(1e-9), 1, 'minValue maps to key 1');
  t.equal(sketchKey(-1e-9), -1);
  t.equal(sketchKey(Infinity), SKETCH_MAX_KEY);
  t.equal(sketchKey(-Infinity), -SKETCH_MAX_KEY);
  t.equal(sketchKey(1e300), SKETCH_MAX_KEY, 'finite values beyond the key range clamp');
  t.equal(sketchKey(-1e300), -SKETCH_MAX_KEY);
  t.end();
});

t.test('sketchLowerBound is the inverse of sketchKey on every key', (t) => {
  let bad = 0;
  for (let k = -SKETCH_MAX_KEY + 1; k < SKETCH_MAX_KEY; k++) {
    if (sketchKey(sketchLowerBound(k)) !== k) bad++;
  }
  t.equal(bad, 0);
  t.equal(sketchLowerBound(0), 0);
  t.equal(sketchLowerBound(1338), 1);
  t.equal(sketchLowerBound(-1338), -1);
  t.equal(sketchLowerBound(SKETCH_MAX_KEY), Infinity);
  t.equal(sketchLowerBound(-SKETCH_MAX_KEY), -Infinity);
  t.end();
});

t.test('weightForRate truncates 1/rate and treats bad rates as 1', (t) => {
  const cases: [number, number][] = [[1, 1], [0.5, 2], [0.3, 3], [1 / 3, 3], [0.1, 10], [0.25, 4], [0.7, 1], [0, 1], [-0.5, 1], [2, 1], [NaN, 1]];
  for (const [rate, w] of cases) t.equal(AgentSketch.weightForRate(rate), w, `rate ${rate}`);
  t.end();
});

t.test('summary statistics are exact', (t) => {
  const s = new AgentSketch();
  t.ok(s.isEmpty);
  t.equal(s.count, 0);
  t.ok(Number.isNaN(s.min));
  t.ok(Number.isNaN(s.max));
  t.ok(Number.isNaN(s.avg));
  t.ok(Number.isNaN(s.quantile(0.5)));
  s.insert(3.15);
  s.insert(-2.5, 2);
  s.insert(7);
  t.notOk(s.isEmpty);
  t.equal(s.count, 4);
  t.equal(s.min, -2.5);
  t.equal(s.max, 7);
  t.equal(s.sum, 3.15 - 5 + 7);
  t.equal(s.avg, (3.15 - 5 + 7) / 4);
  t.equal(s.quantile(0), -2.5, 'q=0 is the exact min');
  t.equal(s.quantile(1), 7, 'q=1 is the exact max');
  t.end();
});

t.test('non-finite values and weights below 1 are ignored', (t) => {
  const s = new AgentSketch();
  s.insert(NaN);
  s.insert(Infinity);
  s.insert(-Infinity);
  s.insert(5, 0);
  s.insert(5, -3);
  s.insert(5, NaN);
  t.ok(s.isEmpty);
  t.same(s.toData().keys, []);
  t.end();
});

t.test('a weighted insert equals repeated inserts', (t) => {
  const a = new AgentSketch();
  const b = new AgentSketch();
  a.insert(42, 7);
  a.insert(-3, 2);
  for (let i = 0; i < 7; i++) b.insert(42);
  b.insertMany([-3, -3]);
  t.same(a.toData(), b.toData());
  t.end();
});

t.test('toData emits ascending keys across signs and zero', (t) => {
  const s = new AgentSketch();
  s.insertMany([10, -1, 0, 1, -10, 1e-12, 10]);
  const d = s.toData();
  t.same(d.keys, [-1487, -1338, 0, 1338, 1487]);
  t.same(d.counts, [1, 1, 2, 1, 2]);
  t.equal(d.count, 7);
  t.equal(d.min, -10);
  t.equal(d.max, 10);
  t.end();
});

t.test('an empty sketch serialises as zeros', (t) => {
  t.same(new AgentSketch().toData(), { count: 0, min: 0, max: 0, sum: 0, avg: 0, keys: [], counts: [] });
  t.end();
});

t.test('quantiles are within 1% of the exact quantiles', (t) => {
  const r = rng(7);
  const n = 200_000;
  const dists: Record<string, () => number> = {
    uniform: () => r() * 1000,
    lognormal: () => Math.exp(3 + 1.5 * normal(r)),
    pareto: () => 10 / Math.pow(1 - r(), 1 / 1.2),
    negative: () => -Math.exp(2 + normal(r)),
    mixed: () => (r() - 0.5) * 2000,
  };
  const qs = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999];
  for (const [name, gen] of Object.entries(dists)) {
    const data = new Float64Array(n);
    const s = new AgentSketch();
    for (let i = 0; i < n; i++) {
      data[i] = gen();
      s.insert(data[i]!);
    }
    data.sort();
    let worst = 0;
    for (const q of qs) worst = Math.max(worst, relErr(s.quantile(q), exactQuantile(data, q)));
    t.ok(worst <= 0.01, `${name}: worst relative error ${worst}`);
    t.equal(s.quantile(0), data[0], `${name}: min`);
    t.equal(s.quantile(1), data[n - 1], `${name}: max`);
    t.equal(s.count, n);
  }
  t.end();
});

t.test('quantile uses the agent rank roundToEven(q·(count−1))', (t) => {
  const near = (got: number, want: number): boolean => Math.abs(got - want) / want <= 0.008;
  const tens = new AgentSketch();
  tens.insertMany([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  t.ok(near(tens.quantile(0.6), 60), `rank 5 of 10: ${tens.quantile(0.6)}`);
  t.ok(near(tens.quantile(0.5), 50), `rank round(4.5) = 4: ${tens.quantile(0.5)}`);
  const three = new AgentSketch();
  three.insertMany([10, 20, 30]);
  t.ok(near(three.quantile(0.25), 10), `rank round(0.5) = 0: ${three.quantile(0.25)}`);
  t.ok(near(three.quantile(0.75), 30), `rank round(1.5) = 2: ${three.quantile(0.75)}`);
  t.end();
});

t.test('quantile results stay within [min, max]', (t) => {
  const s = new AgentSketch();
  s.insertMany([1.003, 1.004, 1.005]); // all in key 1338, whose value 1 is below the min
  t.equal(s.quantile(0.5), 1.003);
  const big = new AgentSketch();
  big.insert(1e300, 3); // key 32767 whose bound is +∞
  t.equal(big.quantile(0.5), 1e300);
  t.end();
});

t.test('merge equals inserting everything into one sketch, negatives included', (t) => {
  const r = rng(11);
  const a = new AgentSketch();
  const b = new AgentSketch();
  const all = new AgentSketch();
  for (let i = 0; i < 5000; i++) {
    const v = Math.round((r() - 0.7) * 1000); // integers keep the float sums order-independent
    const w = 1 + Math.floor(r() * 3);
    (i % 3 === 0 ? b : a).insert(v, w);
    all.insert(v, w);
  }
  const before = b.toData();
  a.merge(b);
  t.same(a.toData(), all.toData());
  t.same(b.toData(), before, 'the merged-in sketch is unchanged');
  const d = a.toData();
  t.ok(d.keys.some((k) => k < 0), 'negative bins survive the merge');
  t.ok(a.quantile(0.25) < 0);
  t.equal(a.quantile(0.25), all.quantile(0.25));
  t.end();
});

t.test('merging negative-only sketches keeps their weight', (t) => {
  const a = new AgentSketch();
  const b = new AgentSketch();
  a.insertMany([-1, -2]);
  b.insertMany([-2, -100]);
  a.merge(b);
  const d = a.toData();
  t.same(d.keys, [-1635, -1383, -1338]);
  t.same(d.counts, [1, 2, 1]);
  t.equal(a.count, 4);
  t.equal(a.min, -100);
  t.equal(a.max, -1);
  t.end();
});

t.test('merge into itself doubles every bin; merging an empty sketch changes nothing', (t) => {
  const a = new AgentSketch();
  a.insertMany([1, 2, 2, -5]);
  a.merge(new AgentSketch());
  t.same(a.toData().counts, [1, 1, 2]);
  a.merge(a);
  t.same(a.toData().counts, [2, 2, 4]);
  t.equal(a.count, 8);
  t.equal(a.sum, 0);
  t.end();
});

t.test('bins above 65535 are split like the agent appendSafe', (t) => {
  const s = new AgentSketch();
  s.insert(1, 200_000);
  s.insert(2, 65_535);
  s.insert(10, 65_536);
  s.insert(100, 131_070);
  const d = s.toData();
  t.same(d.keys, [1338, 1338, 1338, 1338, 1383, 1487, 1487, 1635, 1635]);
  t.same(d.counts, [3395, 65535, 65535, 65535, 65535, 1, 65535, 65535, 65535]);
  t.equal(d.count, 200_000 + 65_535 + 65_536 + 131_070);
  t.ok(d.counts.every((c) => c <= 65535));
  t.end();
});

t.test('more than 4096 bins collapse from the low end into the lowest kept key', (t) => {
  const s = new AgentSketch();
  const n = 5000;
  for (let i = 0; i < n; i++) s.insert(Math.pow(1.015625, i));
  t.equal(s.binCount, SKETCH_BIN_LIMIT);
  const d = s.toData();
  t.equal(d.keys.length, SKETCH_BIN_LIMIT);
  const dropped = n - SKETCH_BIN_LIMIT;
  t.equal(d.keys[0], 1338 + dropped, 'lowest kept key');
  t.equal(d.counts[0], dropped + 1, 'collapsed weight lands on it');
  t.equal(d.keys[d.keys.length - 1], 1338 + n - 1, 'the high end is kept');
  t.equal(d.counts.reduce((a, b) => a + b, 0), n);
  t.equal(s.count, n);
  t.equal(s.min, 1, 'min stays exact after collapsing');
  t.end();
});

t.test('collapsing takes the most negative bins first', (t) => {
  const s = new AgentSketch();
  for (let i = 0; i < 3000; i++) s.insert(-Math.pow(1.015625, i));
  for (let i = 0; i < 3000; i++) s.insert(Math.pow(1.015625, i));
  const d = s.toData();
  t.equal(d.keys.length, SKETCH_BIN_LIMIT);
  t.equal(d.keys[0], -(1338 + 3000 - 1 - (6000 - SKETCH_BIN_LIMIT)));
  t.equal(d.counts[0], 6000 - SKETCH_BIN_LIMIT + 1);
  t.equal(d.keys[d.keys.length - 1], 1338 + 2999);
  t.end();
});

t.test('merging past the bin limit collapses too', (t) => {
  const a = new AgentSketch();
  const b = new AgentSketch();
  for (let i = 0; i < 3000; i++) a.insert(Math.pow(1.015625, i));
  for (let i = 3000; i < 6000; i++) b.insert(Math.pow(1.015625, i));
  a.merge(b);
  const d = a.toData();
  t.equal(d.keys.length, SKETCH_BIN_LIMIT);
  t.equal(d.keys[0], 1338 + 6000 - SKETCH_BIN_LIMIT);
  t.equal(d.counts[0], 6000 - SKETCH_BIN_LIMIT + 1);
  t.equal(a.count, 6000);
  t.end();
});

t.test('toData/fromData round trip', (t) => {
  const r = rng(3);
  const s = new AgentSketch();
  for (let i = 0; i < 20_000; i++) s.insert((r() - 0.3) * 500, 1 + Math.floor(r() * 4));
  s.insert(7, 150_000); // a split bin
  const d = s.toData();
  const back = AgentSketch.fromData(d);
  t.same(back.toData(), d);
  t.equal(back.count, s.count);
  t.equal(back.sum, s.sum);
  t.equal(back.min, s.min);
  t.equal(back.max, s.max);
  for (const q of [0.1, 0.5, 0.99]) t.equal(back.quantile(q), s.quantile(q));
  t.equal(back.binCount, s.binCount, 'split bins join back into one');
  t.ok(AgentSketch.fromData(new AgentSketch().toData()).isEmpty);
  t.end();
});

t.test('fromData rejects malformed sketches', (t) => {
  const good: SketchData = { count: 2, min: 1, max: 2, sum: 3, avg: 1.5, keys: [1338, 1383], counts: [1, 1] };
  t.ok(AgentSketch.fromData(good));
  t.throws(() => AgentSketch.fromData({ ...good, counts: [1] }), RangeError);
  t.throws(() => AgentSketch.fromData({ ...good, count: 3 }), RangeError);
  t.throws(() => AgentSketch.fromData({ ...good, keys: [1338, 40000] }), RangeError);
  t.throws(() => AgentSketch.fromData({ ...good, counts: [1.5, 0.5] }), RangeError);
  t.end();
});

t.test('memory stays bounded however many and however spread the samples', (t) => {
  const r = rng(5);
  const s = new AgentSketch();
  for (let i = 0; i < 1_000_000; i++) {
    const v = (r() < 0.5 ? -1 : 1) * Math.exp((r() - 0.5) * 200); // ~13000 distinct keys
    s.insert(v, 1 + (i & 3));
  }
  t.equal(s.binCount, SKETCH_BIN_LIMIT);
  t.ok(s.byteSize() <= 64 * 1024, `byteSize ${s.byteSize()}`);
  const small = new AgentSketch();
  small.insert(1);
  t.ok(small.byteSize() < 1024, `a one-sample sketch is small: ${small.byteSize()}`);
  t.end();
});

t.test('toData of a sketch with only buffered keys equals toData after compaction, and leaves the sketch as it was', async (t) => {
  let x = 12345;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let round = 0; round < 200; round++) {
    const a = new AgentSketch();
    const b = new AgentSketch();
    const n = 1 + Math.floor(rnd() * (round % 2 === 0 ? 8 : 1500));
    const add = (s: AgentSketch, v: number, w: number) => s.insert(v, w);
    const samples: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      const v = (rnd() - 0.3) * 10 ** Math.floor(rnd() * 8);
      // Now and then a weight above 65535, so wire bins are split.
      const w = rnd() < 0.05 ? 70_000 + Math.floor(rnd() * 200_000) : rnd() < 0.5 ? 1 : 1 + Math.floor(rnd() * 5);
      samples.push([v, w]);
    }
    for (const [v, w] of samples) {
      add(a, v, w);
      add(b, v, w);
    }
    void b.binCount; // compacts b
    const da = a.toData();
    t.same(da, b.toData(), `round ${round}`);
    t.same(a.toData(), da, 'reading twice gives the same');
    add(a, 3.5, 2);
    add(b, 3.5, 2);
    t.same(a.toData(), b.toData(), 'still the same after more samples');
  }
});
