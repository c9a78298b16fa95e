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

t.test('a re-added id moves to the young end: under the cap the one added before it goes first', async (t) => {
  const ids = new RecentIds(60_000, 2, () => 0);
  ids.add('a');
  ids.add('b');
  ids.add('a');
  ids.add('c');
  t.same(['a', 'b', 'c'].map((id) => ids.has(id)), [true, false, true]);
  t.equal(ids.size, 2);
});

t.test('the insertion queue stays bounded: many evictions, and many re-adds behind a live id', async (t) => {
  let now = 0;
  const ids = new RecentIds(1_000, 50, () => now);
  const queue = () => (ids as unknown as { ids: string[] }).ids.length;
  for (let i = 0; i < 100_000; i++) {
    ids.add(`id${i}`);
    if (i % 7 === 0) now++;
  }
  t.equal(ids.size, 50);
  t.ok(queue() <= 2 * 50 + 1025, `queue ${queue()}`);
  t.equal(ids.has('id99999'), true);
  t.equal(ids.has('id99949'), false, 'the 51st newest was evicted');
  const pinned = new RecentIds(60_000, 2, () => 0);
  pinned.add('x');
  for (let i = 0; i < 100_000; i++) pinned.add('y');
  t.ok((pinned as unknown as { ids: string[] }).ids.length <= 2 * 2 + 1025);
  t.same([pinned.has('x'), pinned.has('y'), pinned.size], [true, true, 2]);
});

t.test('an insert costs the same with the memory full as empty (no walk over evicted entries)', async (t) => {
  const ids = new RecentIds(60_000, 50_000, () => 0);
  const time = (from: number) => {
    const started = performance.now();
    for (let i = from; i < from + 20_000; i++) ids.add(`frame-${i}`);
    return performance.now() - started;
  };
  time(0);
  time(20_000);
  time(40_000);
  const full = time(60_000);
  t.equal(ids.size, 50_000);
  // Before, 20000 inserts into a full memory took ~250 ms; now a few ms.
  t.ok(full < 100, `20000 inserts into a full memory took ${full.toFixed(1)} ms`);
});
