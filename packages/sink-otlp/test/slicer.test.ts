import t from 'tap';
import { Slicer } from '../src/slicer.js';
import { countTurns } from './helpers.js';

/** Work of `steps` steps, each spinning for `spinMs`, yielding between them; returns how many it did. */
function* busy(steps: number, spinMs: number): Generator<void, number> {
  for (let i = 0; i < steps; i++) {
    const end = performance.now() + spinMs;
    while (performance.now() < end);
    if (i < steps - 1) yield;
  }
  return steps;
}

t.test('work longer than a slice gives the event loop turns, and its result comes back', async (t) => {
  const slicer = new Slicer(3);
  const turns = countTurns();
  t.equal(await slicer.run(busy(20, 1)), 20);
  const n = turns.stop();
  // 20 ms of work in slices of at least 3 ms: at most 7 slices, so at least a few turns between them.
  t.ok(n >= 3, `the loop turned ${n} times during the work`);
  const longest = slicer.takeLongestMs();
  t.ok(longest >= 3, `the longest slice (${longest.toFixed(2)} ms) is at least the budget it ran to`);
  t.equal(slicer.takeLongestMs(), 0, 'taking the longest slice starts the measurement anew');
});

t.test('a budget of 0: a turn after every step', async (t) => {
  const slicer = new Slicer(0);
  const turns = countTurns();
  t.equal(await slicer.run(busy(10, 0)), 10);
  const n = turns.stop();
  t.ok(n >= 9, `${n} turns for 10 steps`);
});

t.test('work that never yields runs in one slice, measured', async (t) => {
  const slicer = new Slicer(1000);
  t.equal(await slicer.run(busy(1, 2)), 1);
  t.ok(slicer.takeLongestMs() >= 2);
});
