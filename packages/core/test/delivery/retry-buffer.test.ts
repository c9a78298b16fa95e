import t from 'tap';
import { RetryBuffer } from '../../src/delivery/retry-buffer.js';

t.test('bounded by bytes: the oldest are evicted; retries take the newest first', async (t) => {
  const buf = new RetryBuffer<{ id: number; n: number }>(100, (p) => p.n);
  t.same(buf.push({ id: 1, n: 40 }), []);
  t.same(buf.push({ id: 2, n: 40 }), []);
  t.same(buf.push({ id: 3, n: 40 }).map((p) => p.id), [1], 'the oldest goes');
  t.equal(buf.bytes, 80);
  t.same(buf.push({ id: 4, n: 150 }).map((p) => p.id), [2, 3, 4], 'one alone over the bound evicts everything, itself too');
  t.equal(buf.bytes, 0);
  t.equal(buf.length, 0);
  buf.push({ id: 5, n: 10 });
  buf.push({ id: 6, n: 10 });
  t.equal(buf.takeNewest()?.id, 6);
  t.equal(buf.bytes, 10);
});

t.test('removeWhere keeps the others in order; clear empties', async (t) => {
  const buf = new RetryBuffer<number>(1000, () => 1);
  for (let i = 0; i < 6; i++) buf.push(i);
  t.same(buf.removeWhere((p) => p % 2 === 0), [0, 2, 4]);
  t.equal(buf.bytes, 3);
  t.same(buf.clear(), [1, 3, 5]);
  t.equal(buf.bytes, 0);
  t.equal(buf.takeNewest(), undefined);
});
