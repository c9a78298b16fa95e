import t from 'tap';
import { DEFAULT_HISTOGRAM_EXACT_LIMIT, HistogramAgg } from '../../src/aggregates/histogram.js';

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

function of(values: readonly number[], rate = 1, limit?: number): HistogramAgg {
  const h = new HistogramAgg(limit);
  for (const v of values) h.add(v, rate);
  return h;
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

t.test('agent worked example: 1..10 at rate 1', (t) => {
  const h = of(range(1, 10));
  t.equal(h.max, 10);
  t.equal(h.min, 1);
  t.equal(h.median(), 5);
  t.equal(h.avg, 5.5);
  t.equal(h.count, 10);
  t.equal(h.sum, 55);
  t.equal(h.percentile(0.95), 10);
  t.ok(h.isExact);
  t.end();
});

t.test('agent worked example: 1..5', (t) => {
  const h = of(range(1, 5));
  t.equal(h.median(), 3);
  t.equal(h.percentile(0.95), 5);
  t.end();
});

t.test('arrival order does not matter', (t) => {
  const h = of(range(1, 10).reverse());
  t.equal(h.median(), 5);
  t.equal(h.percentile(0.95), 10);
  t.equal(h.percentile(0.5), 5);
  t.equal(h.percentile(0.1), 1);
  t.equal(h.percentile(0.2), 2);
  h.add(0);
  t.equal(h.median(), 5, 'samples added after a read are sorted in too');
  t.equal(h.min, 0);
  t.end();
});

t.test('median is the lower median without interpolation', (t) => {
  t.equal(of([4, 1, 3, 2]).median(), 2);
  t.equal(of([7]).median(), 7);
  t.equal(of([7]).percentile(0.95), 7);
  t.end();
});

t.test('sample rate 0.5: weight 2 for count and ranks, 2·value for sum', (t) => {
  const h = new HistogramAgg();
  h.add(10, 0.5);
  h.add(20, 1);
  t.equal(h.count, 3);
  t.equal(h.sum, 40);
  t.equal(h.avg, 40 / 3);
  // sorted [10 (w2), 20 (w1)]: median target ⌊2/2⌋ = 1, cumulative 2 > 1 at 10
  t.equal(h.median(), 10);
  // p95 target ⌊(95·3−1)/100⌋ = 2, cumulative 2 is not > 2, so 20
  t.equal(h.percentile(0.95), 20);
  t.end();
});

t.test('sample rate 0.3: weight 3 but the sum uses 3.333… (agent quirk)', (t) => {
  const h = new HistogramAgg();
  h.add(10, 0.3);
  t.equal(h.count, 3, 'count uses trunc(1/0.3) = 3');
  t.equal(h.sum, 10 * (1 / 0.3), 'sum uses 1/0.3');
  t.ok(Math.abs(h.sum - 33.3333333) < 1e-6);
  t.ok(h.avg > 11.1 && h.avg < 11.2, `avg is skewed: ${h.avg}`);
  h.add(1, 0.3);
  t.equal(h.count, 6);
  t.equal(h.median(), 1, 'target ⌊5/2⌋ = 2 < 3 (weight of 1)');
  t.equal(h.percentile(0.95), 10);
  t.end();
});

t.test('rates outside (0, 1] count as 1', (t) => {
  for (const rate of [0, -0.5, 1.5, NaN, 1]) {
    const h = new HistogramAgg();
    h.add(4, rate);
    t.equal(h.count, 1, `count at rate ${rate}`);
    t.equal(h.sum, 4, `sum at rate ${rate}`);
  }
  t.end();
});

t.test('non-finite values are ignored', (t) => {
  const h = of([NaN, Infinity, -Infinity]);
  t.ok(h.isEmpty);
  t.ok(Number.isNaN(h.median()));
  t.ok(Number.isNaN(h.percentile(0.95)));
  t.ok(Number.isNaN(h.quantile(0.5)));
  t.ok(Number.isNaN(h.min));
  t.ok(Number.isNaN(h.max));
  t.ok(Number.isNaN(h.avg));
  t.equal(h.count, 0);
  t.end();
});

t.test('quantile is nearest rank and agrees with median and percentile', (t) => {
  const h = of(range(1, 100));
  t.equal(h.quantile(0.07), 7, 'no off-by-one from 0.07·100 rounding');
  t.equal(h.quantile(0), 1);
  t.equal(h.quantile(1), 100);
  const r = rng(1);
  const w = new HistogramAgg();
  for (let i = 0; i < 777; i++) w.add(Math.round(r() * 1000), [1, 0.5, 0.3, 0.25][i % 4]);
  t.equal(w.quantile(0.5), w.median());
  for (const q of [0.5, 0.75, 0.9, 0.95, 0.99]) t.equal(w.quantile(q), w.percentile(q), `q=${q}`);
  t.end();
});

t.test('merge equals adding every sample to one histogram (exact)', (t) => {
  const r = rng(2);
  const a = new HistogramAgg();
  const b = new HistogramAgg();
  const all = new HistogramAgg();
  for (let i = 0; i < 600; i++) {
    const v = Math.round((r() - 0.2) * 500);
    const rate = i % 5 === 0 ? 0.5 : 1;
    (i % 2 === 0 ? a : b).add(v, rate);
    all.add(v, rate);
  }
  a.merge(b);
  t.ok(a.isExact);
  t.equal(a.count, all.count);
  t.equal(a.sum, all.sum);
  t.equal(a.min, all.min);
  t.equal(a.max, all.max);
  t.equal(a.median(), all.median());
  for (const q of [0.5, 0.9, 0.95, 0.99]) t.equal(a.percentile(q), all.percentile(q), `p${q}`);
  t.equal(b.count, 600 - 300 + 60, 'the merged-in histogram is unchanged');
  t.end();
});

t.test('merge past the exact limit switches to a sketch and still equals one histogram', (t) => {
  const r = rng(4);
  const parts = [new HistogramAgg(), new HistogramAgg(), new HistogramAgg()];
  const all = new HistogramAgg();
  for (let i = 0; i < 3000; i++) {
    const v = Math.round(Math.exp(4 + normal(r)));
    const h = i < 800 ? parts[0]! : i < 1500 ? parts[1]! : parts[2]!; // exact, exact, sketch
    h.add(v, 0.5);
    all.add(v, 0.5);
  }
  t.ok(parts[2]!.isExact === false);
  const m = new HistogramAgg();
  for (const p of parts) m.merge(p);
  t.notOk(m.isExact);
  t.equal(m.count, all.count);
  t.equal(m.sum, all.sum);
  t.equal(m.min, all.min);
  t.equal(m.max, all.max);
  t.equal(m.median(), all.median());
  for (const q of [0.5, 0.95, 0.99]) t.equal(m.percentile(q), all.percentile(q), `p${q}`);
  t.end();
});

t.test('merging a histogram into itself doubles it', (t) => {
  const h = of([1, 2, 3]);
  h.merge(h);
  t.equal(h.count, 6);
  t.equal(h.sum, 12);
  t.equal(h.median(), 2);
  const big = of(range(1, 2000));
  big.merge(big);
  t.equal(big.count, 4000);
  t.equal(big.max, 2000);
  t.end();
});

t.test('switches to a sketch at sample 1001 with exact summaries', (t) => {
  t.equal(DEFAULT_HISTOGRAM_EXACT_LIMIT, 1000);
  const h = new HistogramAgg();
  for (let i = 1; i <= 1000; i++) h.add(i);
  t.ok(h.isExact, 'exact at 1000 samples');
  t.equal(h.median(), 500);
  h.add(1001);
  t.notOk(h.isExact, 'sketch at 1001 samples');
  t.equal(h.count, 1001);
  t.equal(h.sum, (1001 * 1002) / 2);
  t.equal(h.min, 1);
  t.equal(h.max, 1001);
  t.ok(Math.abs(h.median() - 501) / 501 <= 0.01, `median ${h.median()}`);
  t.equal(new HistogramAgg(0).isExact, true);
  const zero = of([5, 6], 1, 0);
  t.notOk(zero.isExact, 'exactLimit 0 sketches from the first sample');
  t.throws(() => new HistogramAgg(-1), RangeError);
  t.throws(() => new HistogramAgg(1.5), RangeError);
  t.end();
});

for (const [name, gen] of [
  ['uniform', (r: () => number) => r() * 1000],
  ['lognormal', (r: () => number) => Math.exp(3 + 1.5 * normal(r))],
] as const) {
  t.test(`1,000,000 ${name} samples: exact summaries, p50/p95/p99 within 1%, ≤ 64 KiB`, (t) => {
    const r = rng(name.length);
    const n = 1_000_000;
    const data = new Float64Array(n);
    const h = new HistogramAgg();
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const v = gen(r);
      data[i] = v;
      sum += v;
      h.add(v, 1);
    }
    data.sort();
    t.notOk(h.isExact);
    t.equal(h.count, n);
    t.equal(h.sum, sum);
    t.equal(h.avg, sum / n);
    t.equal(h.min, data[0]);
    t.equal(h.max, data[n - 1]);
    const exactMedian = data[Math.floor((n - 1) / 2)]!;
    t.ok(Math.abs(h.median() - exactMedian) / exactMedian <= 0.01, `median ${h.median()} vs ${exactMedian}`);
    for (const q of [0.5, 0.95, 0.99]) {
      const p = Math.trunc(q * 100 + 0.5);
      const exact = data[Math.trunc((p * n - 1) / 100)]!;
      const err = Math.abs(h.percentile(q) - exact) / exact;
      t.ok(err <= 0.01, `p${p}: ${h.percentile(q)} vs ${exact} (${err})`);
    }
    t.ok(h.byteSize() <= 64 * 1024, `byteSize ${h.byteSize()}`);
    t.end();
  });
}

t.test('memory stays ≤ 64 KiB even for weighted samples over a huge range', (t) => {
  const r = rng(9);
  const h = new HistogramAgg();
  for (let i = 0; i < 300_000; i++) h.add((r() < 0.5 ? -1 : 1) * Math.exp((r() - 0.5) * 200), i % 2 ? 0.5 : 0.1);
  t.ok(h.byteSize() <= 64 * 1024, `byteSize ${h.byteSize()}`);
  const exact = of(range(1, 1000), 0.5);
  t.ok(exact.isExact);
  t.ok(exact.byteSize() <= 20 * 1024, `exact storage ${exact.byteSize()}`);
  t.end();
});
