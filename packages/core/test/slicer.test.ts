/**
 * The slicer on real timers. Nothing here asserts how fast anything is: the checks are about which
 * slices exist (a slice ended by a pause has used its budget; no slice holds more work than the budget
 * allows), how many event-loop turns the work gave, and that the figures add up.
 */
import t from 'tap';
import { DEFAULT_SLICE_BUDGET_MS, Slicer, longestSlice, type SliceFigures } from '../src/slicer.js';

/** Spins for at least `ms` of wall time. */
function spinWall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** Spins until the process has used at least `ms` of CPU time. */
function spinCpu(ms: number): void {
  const start = process.cpuUsage();
  for (;;) {
    const d = process.cpuUsage(start);
    if (d.user + d.system >= ms * 1000) return;
  }
}

/** Work of `steps` steps, each spinning for `spinMs`, yielding between them; returns how many it did. */
function* busy(steps: number, spinMs: number): Generator<void, number> {
  for (let i = 0; i < steps; i++) {
    spinWall(spinMs);
    if (i < steps - 1) yield;
  }
  return steps;
}

/** Counts the event loop's turns (a self-rescheduling setImmediate) until `stop()`, which returns the count. */
function countTurns(): { stop(): number } {
  let turns = 0;
  let counting = true;
  const tick = (): void => {
    turns++;
    if (counting) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    stop: () => {
      counting = false;
      return turns;
    },
  };
}

/** A slicer that records every slice it ends. */
function recording(options: ConstructorParameters<typeof Slicer>[0]): { slicer: Slicer; slices: SliceFigures[] } {
  const slicer = new Slicer(options);
  const slices: SliceFigures[] = [];
  slicer.onSlice = (s) => slices.push(s);
  return { slicer, slices };
}

t.test('a tick loop longer than its budget pauses, and the loop turns meanwhile', async (t) => {
  const { slicer, slices } = recording({ budgetMs: 3 });
  const turns = countTurns();
  let pauses = 0;
  // 30 items of at least 1.1 ms: after 3 of them a slice of 3 ms is surely used up.
  let inSlice = 0;
  let mostInSlice = 0;
  for (let i = 0; i < 30; i++) {
    spinWall(1.1);
    inSlice++;
    if (slicer.tick()) {
      mostInSlice = Math.max(mostInSlice, inSlice);
      inSlice = 0;
      pauses++;
      await slicer.pause();
    }
  }
  const figures = slicer.finish();
  const n = turns.stop();
  t.ok(pauses >= 9, `${pauses} pauses for 30 ms of work in 3 ms slices`);
  t.ok(mostInSlice <= 3, `no slice held more than the 3 items its budget allows (most: ${mostInSlice})`);
  t.equal(slicer.turns, pauses, 'each pause is one turn');
  t.ok(n >= pauses - 1, `the event loop turned ${n} times, about once per pause`);
  t.equal(slices.length, pauses + 1, 'onSlice told every slice: one per pause and the last');
  for (const s of slices.slice(0, -1)) t.ok(s.wallMs >= 3, `a slice ended by a pause used its budget (${s.wallMs.toFixed(2)} ms)`);
  t.equal(figures.wallMs, Math.max(...slices.map((s) => s.wallMs)), 'finish() returns the longest slice in wall time');
  t.equal(figures.cpuMs, Math.max(...slices.map((s) => s.cpuMs)), 'and the CPU time of the slice that used the most');
  t.equal(slicer.longestMs, figures.wallMs);
  t.equal(slicer.longestCpuMs, figures.cpuMs);
});

t.test('the clock is looked at only every checkEvery items', async (t) => {
  const slicer = new Slicer({ budgetMs: 0, checkEvery: 4 });
  const due: number[] = [];
  for (let i = 1; i <= 20; i++) {
    if (slicer.tick()) {
      due.push(i);
      await slicer.pause();
    }
  }
  t.same(due, [4, 8, 12, 16, 20], 'with no budget, every fourth item ends a slice, and only those');
});

t.test('work well within its budget never pauses', async (t) => {
  const slicer = new Slicer({ budgetMs: 60_000, checkEvery: 1 });
  let due = 0;
  for (let i = 0; i < 10_000; i++) if (slicer.tick()) due++;
  t.equal(due, 0);
  t.equal(slicer.turns, 0);
});

t.test('finish() reports a slice in wall and in CPU time', async (t) => {
  const wall = new Slicer();
  spinWall(5);
  const w = wall.finish();
  t.ok(w.wallMs >= 5, `5 ms of spinning is a slice of ${w.wallMs.toFixed(2)} ms`);
  t.ok(w.cpuMs > 0, `that used CPU (${w.cpuMs.toFixed(2)} ms)`);
  const cpu = new Slicer();
  spinCpu(5);
  const c = cpu.finish();
  t.ok(c.cpuMs >= 5, `5 ms of process CPU is a slice of ${c.cpuMs.toFixed(2)} ms cpu`);
});

t.test('restart() ends a slice where the caller already gave the loop a turn, and starts the next', async (t) => {
  const t0 = performance.now();
  const { slicer, slices } = recording({});
  spinWall(4);
  slicer.restart();
  spinWall(1);
  const figures = slicer.finish();
  const elapsed = performance.now() - t0;
  t.equal(slicer.turns, 1);
  t.equal(slices.length, 2);
  t.ok(slices[0]!.wallMs >= 4 && slices[1]!.wallMs >= 1, 'one slice to the restart, one after it');
  // Had the second slice not started at the restart, the two would overlap and add up to more than it took.
  t.ok(slices[0]!.wallMs + slices[1]!.wallMs <= elapsed + 0.01, 'the slices do not overlap');
  t.equal(figures.wallMs, Math.max(slices[0]!.wallMs, slices[1]!.wallMs));
});

t.test('run(): work longer than a slice gives the event loop turns, and its result comes back', async (t) => {
  const slicer = new Slicer({ budgetMs: 3 });
  const turns = countTurns();
  t.equal(await slicer.run(busy(20, 1)), 20);
  const n = turns.stop();
  // 20 ms of work in slices of at least 3 ms: at most 7 slices, so at least a few turns between them.
  t.ok(n >= 3, `the loop turned ${n} times during the work`);
  const longest = slicer.takeLongest();
  t.ok(longest.wallMs >= 3, `the longest slice (${longest.wallMs.toFixed(2)} ms) is at least the budget it ran to`);
  t.ok(longest.cpuMs > 0, `and it used CPU (${longest.cpuMs.toFixed(2)} ms)`);
  t.same(slicer.takeLongest(), { wallMs: 0, cpuMs: 0 }, 'taking the longest slice starts the measurement anew');
});

t.test('run() with a budget of 0: a turn after every step', async (t) => {
  const { slicer, slices } = recording({ budgetMs: 0 });
  const turns = countTurns();
  t.equal(await slicer.run(busy(10, 0)), 10);
  const n = turns.stop();
  t.ok(n >= 9, `${n} turns for 10 steps`);
  t.equal(slicer.turns, 9, 'one pause between each two steps');
  t.equal(slices.length, 10, 'and ten slices');
});

t.test('run() of work that never yields is one slice, measured', async (t) => {
  const { slicer, slices } = recording({ budgetMs: 1000 });
  t.equal(await slicer.run(busy(1, 2)), 1);
  t.equal(slices.length, 1);
  t.equal(slicer.turns, 0);
  t.ok(slicer.takeLongest().wallMs >= 2);
});

t.test('an exception inside run() propagates, and the slicer goes on working', async (t) => {
  const { slicer, slices } = recording({ budgetMs: 0 });
  function* failing(): Generator<void, number> {
    yield;
    yield;
    throw new Error('boom');
  }
  await t.rejects(slicer.run(failing()), { message: 'boom' });
  t.equal(slicer.turns, 2, 'the turns before the throw were given');
  t.equal(slices.length, 3, 'the slice the exception ended was closed too');
  t.equal(await slicer.run(busy(3, 0)), 3, 'the next run works');
});

t.test('concurrent run()s on one slicer measure their own slices, never overlapping', async (t) => {
  const { slicer, slices } = recording({ budgetMs: 2 });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const results = await Promise.all([slicer.run(busy(15, 0.5)), slicer.run(busy(15, 0.5)), slicer.run(busy(15, 0.5))]);
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  t.same(results, [15, 15, 15]);
  t.ok(slicer.turns >= 6, `${slicer.turns} turns for 3 x 7.5 ms of work in 2 ms slices`);
  // A slice measured from another run's start would overlap it: the sums would exceed the totals.
  const wallSum = slices.reduce((n, s) => n + s.wallMs, 0);
  const cpuSum = slices.reduce((n, s) => n + s.cpuMs, 0);
  t.ok(wallSum <= elapsed + 0.01, `slices' wall times (${wallSum.toFixed(2)} ms) fit in the ${elapsed.toFixed(2)} ms it took`);
  t.ok(cpuSum <= (cpu.user + cpu.system) / 1000 + 0.01, `slices' CPU times (${cpuSum.toFixed(2)} ms) fit in the process CPU`);
});

t.test('longestSlice takes the longer figure of each', async (t) => {
  t.same(longestSlice({ wallMs: 3, cpuMs: 1 }, { wallMs: 2, cpuMs: 2 }), { wallMs: 3, cpuMs: 2 });
});

t.test('budgets and check counts are checked', async (t) => {
  t.equal(DEFAULT_SLICE_BUDGET_MS, 5);
  for (const bad of [{ budgetMs: -1 }, { budgetMs: Number.NaN }, { budgetMs: Infinity }, { checkEvery: 0 }, { checkEvery: 1.5 }]) {
    t.throws(() => new Slicer(bad), { name: 'MdError', code: 'MD_ERR_CONFIG_INVALID' }, JSON.stringify(bad));
  }
  t.doesNotThrow(() => new Slicer({ budgetMs: 0, checkEvery: 1 }));
});
