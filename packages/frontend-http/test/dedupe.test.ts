import t from 'tap';
import { RecentIds } from '../src/dedupe.js';

t.test('an id is remembered for the window, then forgotten', async (t) => {
  let now = 1_000;
  const ids = new RecentIds(60_000, 100, () => now);
  t.equal(ids.has('a'), false);
  ids.add('a');
  t.equal(ids.has('a'), true);
  now += 59_999;
  t.equal(ids.has('a'), true, 'still inside the window');
  now += 1;
  t.equal(ids.has('a'), false, 'expired at the window');
});

t.test('memory is bounded: the oldest ids go first', async (t) => {
  const ids = new RecentIds(60_000, 3, () => 0);
  for (const id of ['a', 'b', 'c', 'd']) ids.add(id);
  t.equal(ids.size, 3);
  t.same(['a', 'b', 'c', 'd'].map((id) => ids.has(id)), [false, true, true, true]);
  for (let i = 0; i < 10_000; i++) ids.add(`x${i}`);
  t.equal(ids.size, 3, 'never above the cap, however many ids arrive');
});

t.test('expired ids are evicted on insert, so a quiet drain does not pin memory', async (t) => {
  let now = 0;
  const ids = new RecentIds(1_000, 100, () => now);
  for (let i = 0; i < 50; i++) ids.add(`old${i}`);
  now = 5_000;
  ids.add('new');
  t.equal(ids.size, 1);
  t.equal(ids.has('new'), true);
});

t.test('re-adding an id restarts its window; max 0 disables the memory', async (t) => {
  let now = 0;
  const ids = new RecentIds(1_000, 2, () => now);
  ids.add('a');
  now = 900;
  ids.add('a');
  now = 1_500;
  t.equal(ids.has('a'), true);
  const off = new RecentIds(1_000, 0, () => 0);
  off.add('a');
  t.equal(off.has('a'), false);
  t.equal(off.size, 0);
});
