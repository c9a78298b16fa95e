import t from 'tap';
import type { EncodedWindowPart } from '@metrics-distributor/core';
import { WorkerParts } from '../src/workers.js';

const W = 1_700_000_010_000;
const NEXT = W + 10_000;
const part = (windowStartMs: number, text: string): EncodedWindowPart => ({
  windowStartMs,
  pieces: [Buffer.from(text)],
  rest: { windowStartMs, timestamped: [], events: [], serviceChecks: [] },
});
const texts = (got: readonly EncodedWindowPart[] | undefined) => got?.map((p) => p.pieces.map((b) => b.toString()).join()).sort();

t.test('the latest part of each worker for the window the primary snapshotted', async (t) => {
  const parts = new WorkerParts();
  t.ok(parts.received(1, part(W, 'a1'), W));
  t.ok(parts.received(1, part(W, 'a2'), W), 'a newer one replaces it');
  t.ok(parts.received(2, part(W, 'b1'), W));
  t.same(texts(parts.begin().take(W)), ['a2', 'b1']);
  t.equal(parts.size, 2);
});

t.test("a worker's part goes once its drained window is merged: never written with the primary's copy of it", async (t) => {
  const parts = new WorkerParts();
  parts.received(1, part(W, 'a'), W);
  parts.received(2, part(W, 'b'), W);
  parts.merged(1, W);
  t.same(texts(parts.begin().take(W)), ['b']);
  // A part of a window whose state of that worker was merged already (it cannot be newer than that state).
  t.notOk(parts.received(1, part(W, 'late'), W), 'ignored');
  t.same(texts(parts.begin().take(W)), ['b']);
});

t.test('a merge during the primary snapshot of a worker that had a part: that checkpoint is skipped, the next is whole', async (t) => {
  const parts = new WorkerParts();
  parts.received(1, part(W, 'a'), W);
  parts.received(2, part(W, 'b'), W);
  const taking = parts.begin();
  // The copy of the primary's window may hold some of worker 1's state now, and its part too.
  parts.merged(1, W);
  t.equal(taking.take(W), undefined, 'skipped');
  t.same(texts(parts.begin().take(W)), ['b']);
  // A merge of a worker with no part there does not skip: nothing of it is written twice.
  const again = parts.begin();
  parts.merged(3, W);
  t.same(texts(again.take(W)), ['b']);
});

t.test('parts of a closed window: ignored when they arrive late, and a dead worker\'s stays only until its window closes', async (t) => {
  const parts = new WorkerParts();
  t.notOk(parts.received(1, part(W, 'late'), NEXT), 'a part of a window the primary closed is ignored');
  // Worker 2 died with a part of W: it is written with W for as long as W is open.
  parts.received(2, part(W, 'dead'), W);
  t.same(texts(parts.begin().take(W)), ['dead']);
  t.same(texts(parts.begin().take(W)), ['dead']);
  parts.received(3, part(NEXT, 'new'), NEXT);
  t.same(texts(parts.begin().take(NEXT)), ['new'], 'not in the next window');
  t.equal(parts.size, 1, 'the dead worker\'s part is gone');
  // A part of a window the primary has not reached (a clock ahead): kept, not written into this one.
  parts.received(4, part(NEXT + 10_000, 'ahead'), NEXT);
  t.same(texts(parts.begin().take(NEXT)), ['new']);
});
