import t from 'tap';
import { AgentSketch } from '@metrics-distributor/core';
import { exponentialIndex, toExplicit, toExponential } from '../src/buckets.js';

const GAMMA = 1 + 1 / 64;

t.test('scale 6: distinct sketch keys never share a bucket; scale 5 does merge some', async (t) => {
  const at = (scale: number) => {
    const seen = new Set<number>();
    let merged = 0;
    for (let k = 1; k <= 4000; k++) {
      const i = exponentialIndex(GAMMA ** (k - 1338), scale);
      if (seen.has(i)) merged++;
      seen.add(i);
    }
    return merged;
  };
  t.equal(at(6), 0, 'injective at scale 6');
  t.ok(at(5) > 0, 'scale 5 merges neighbouring bins');
});

t.test('exact powers of the base are in the bucket below (upper-inclusive)', async (t) => {
  t.equal(exponentialIndex(1, 6), -1);
  t.equal(exponentialIndex(2, 0), 0);
  t.equal(exponentialIndex(2.0001, 0), 1);
  t.equal(exponentialIndex(0.5, 3), -9);
});

t.test('counts add up; negatives and zero are kept apart', async (t) => {
  const s = new AgentSketch();
  s.insertMany([-3, -3, 0, 0, 0, 7, 1e6]);
  const d = s.toData();
  const e = toExponential(d, 4);
  const total = (c: readonly number[]) => c.reduce((a, b) => a + b, 0);
  t.equal(e.zeroCount, 3);
  t.equal(total(e.negative.counts), 2);
  t.equal(total(e.positive.counts), 2);
  t.equal(e.count, 7);
  t.equal(e.positive.counts[0]! > 0 && e.positive.counts.at(-1)! > 0, true, 'dense from the first to the last filled bucket');
  const x = toExplicit(d, [-1, 0, 10]);
  t.same(x.counts, [2, 3, 1, 1], '(-inf,-1]: -3 -3; (-1,0]: 0 0 0; (0,10]: 7; > 10: 1e6');
});
