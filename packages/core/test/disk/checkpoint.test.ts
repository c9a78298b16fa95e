import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Aggregator } from '../../src/aggregator.js';
import { componentContext } from '../../src/component.js';
import { Checkpointer, decodeCheckpoint } from '../../src/disk/checkpoint.js';
import { silentLogger } from '../../src/logger.js';
import type { MetricBatch } from '../../src/model.js';
import { StatsRegistry } from '../../src/stats.js';

const T0 = 1_700_000_000_000;
const INTERVAL = 10_000;

/** One line of every aggregate type, with sample rates and several values where the aggregate keeps them. */
const LINES = [
  'c.one:1|c|#k:a',
  'c.one:2|c|#k:a',
  'c.rate:3|c|@0.5',
  'g.one:7|g|#k:b',
  'g.one:9.5|g|#k:b',
  's.one:u1|s',
  's.one:u2|s',
  's.one:u1|s',
  'h.one:1|h',
  'h.one:4|h|@0.25',
  'h.one:10|h',
  't.one:12|ms',
  't.one:30|ms',
  'd.one:5|d',
  'd.one:6.5|d|@0.5',
  'd.one:100|d',
].join('\n');

/** `crashes`: the process never hands its windows on (a SIGKILL), so its checkpoint stays for the next one. */
function setup(nowMs: number, dir: string, crashes = false) {
  let now = nowMs;
  const stats = new StatsRegistry();
  const aggregator = new Aggregator({ flushIntervalMs: INTERVAL, hostname: 'h', now: () => now++, stats, selfMetrics: false });
  const context = componentContext({ logger: silentLogger(), stats }, 'checkpoint');
  const cp = new Checkpointer(aggregator, context, { dir, intervalMs: 1000 });
  const windows: MetricBatch[] = [];
  aggregator.onWindow((b) => {
    windows.push(b);
    if (!crashes) cp.windowClosed(b.windowStartMs, Promise.resolve());
  });
  return { aggregator, cp, stats, windows, component: stats.component('checkpoint') };
}

const sorted = (b: MetricBatch) => ({
  windowStartMs: b.windowStartMs,
  series: [...b.series].sort((a, c) => (a.metric + a.tags.join()).localeCompare(c.metric + c.tags.join())),
  sketches: [...b.sketches].sort((a, c) => (a.metric + a.tags.join()).localeCompare(c.metric + c.tags.join())),
});

const dirs: string[] = [];
t.teardown(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function tmp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'md-checkpoint-'));
  dirs.push(dir);
  return dir;
}

t.test('a checkpoint restored within its window gives exactly the window the first process would have closed', async (t) => {
  const dir = await tmp();
  const a = setup(T0 + 1000, dir, true);
  a.aggregator.ingestStatsd(Buffer.from(LINES));
  await a.cp.checkpoint();
  t.same(await readdir(dir), [`window-${T0}.ckpt`]);
  // The snapshot took nothing: what the first process would have closed is the whole window.
  const expected = a.aggregator.closeWindow();
  t.ok(expected.series.length > 10 && expected.sketches.length === 1);

  const b = setup(T0 + 5000, dir);
  t.same(await b.cp.restore(), { merged: 1, closed: 0, series: 7, corrupt: 0 });
  t.equal(b.component.counter('restored'), 7);
  const got = b.aggregator.closeWindow();
  t.same(sorted(got), sorted(expected));
  // Exact values of each aggregate, not only equality with the first process.
  const value = (metric: string) => got.series.find((s) => s.metric === metric)?.value;
  t.equal(value('c.one'), 0.3, 'counter 1+2 as a rate over 10 s');
  t.equal(value('c.rate'), 0.6, 'counter 3 at @0.5');
  t.equal(value('g.one'), 9.5, 'gauge keeps the last value');
  t.equal(value('s.one'), 2, 'set of u1, u2');
  t.equal(value('h.one.max'), 10);
  t.equal(value('h.one.count'), 0.6, 'histogram count 1+4+1 over 10 s');
  t.equal(value('t.one.avg'), 21);
  const d = got.sketches[0]!.sketch;
  t.match(d, { count: 4, min: 5, max: 100, sum: 5 + 13 + 100 });
});

// One window later is the window just before the new process's clock epoch (window number -1).
for (const later of [1, 3]) {
t.test(`a checkpoint of a window that closed ${later} window(s) ago is closed as that window, then deleted`, async (t) => {
  const dir = await tmp();
  const a = setup(T0 + 1000, dir, true);
  a.aggregator.ingestStatsd(Buffer.from(LINES));
  await a.cp.checkpoint();
  const expected = a.aggregator.closeWindow();

  const b = setup(T0 + later * INTERVAL + 1000, dir);
  t.match(await b.cp.restore(), { merged: 0, closed: 1, series: 7, corrupt: 0 });
  t.equal(b.windows.length, 1);
  t.equal(b.windows[0]!.windowStartMs, T0, 'with its original start');
  t.same(sorted(b.windows[0]!), sorted(expected));
  await b.cp.close();
  t.same(await readdir(dir), [], 'deleted once handed on');
  // The open window is the new process's own, untouched by the restored one.
  t.equal(b.aggregator.currentWindowStart, T0 + later * INTERVAL);
  t.same(b.aggregator.closeWindow().series.filter((s) => s.metric === 'g.one'), []);
});
}

t.test('a closed window is never written again, and its checkpoint goes', async (t) => {
  const dir = await tmp();
  const a = setup(T0 + 1000, dir);
  a.aggregator.ingestStatsd(Buffer.from('c.one:1|c'));
  await a.cp.checkpoint();
  t.same(await readdir(dir), [`window-${T0}.ckpt`]);
  // A checkpoint racing the close: started before it, finished after.
  const racing = a.cp.checkpoint();
  a.aggregator.closeWindow();
  await racing;
  await a.cp.close();
  t.same(await readdir(dir), []);
});

t.test('a snapshot of a window that closes between its slices is abandoned', async (t) => {
  const a = setup(T0 + 1000, await tmp());
  for (let i = 0; i < 10; i++) a.aggregator.increment(`c${i}`);
  const steps = a.aggregator.snapshotState(4);
  const first = steps.next();
  t.equal(first.done, false);
  t.equal((first.value as unknown[]).length, 4);
  a.aggregator.closeWindow();
  const next = steps.next();
  t.equal(next.done, true);
  t.equal(next.value, undefined);
});

t.test('corrupt, torn and foreign checkpoints are counted, named in the log and ignored', async (t) => {
  const dir = await tmp();
  const a = setup(T0 + 1000, dir);
  a.aggregator.ingestStatsd(Buffer.from(LINES));
  await a.cp.checkpoint();
  const good = await readFile(join(dir, `window-${T0}.ckpt`));
  t.ok(decodeCheckpoint(good).ok);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 5]! ^= 0x01;
  t.match(decodeCheckpoint(flipped), { ok: false, error: { code: 'MD_ERR_CHECKPOINT_CORRUPT', message: /CRC32/ } });
  t.match(decodeCheckpoint(good.subarray(0, good.length - 3)), { ok: false, error: { message: /torn/ } });
  await writeFile(join(dir, `window-${T0}.ckpt`), flipped);
  await writeFile(join(dir, `window-${T0 - INTERVAL}.ckpt`), 'not a checkpoint');
  await writeFile(join(dir, `window-${T0 + INTERVAL}.ckpt.tmp`), good.subarray(0, 20));

  const lines: unknown[] = [];
  const logger = silentLogger();
  const stats = new StatsRegistry();
  const aggregator = new Aggregator({ flushIntervalMs: INTERVAL, now: () => T0 + 2000, stats, selfMetrics: false });
  const warn = (obj: unknown) => lines.push(obj);
  const cp = new Checkpointer(aggregator, componentContext({ logger: Object.assign(logger, { child: () => Object.assign(silentLogger(), { warn, info: () => undefined }) }), stats }, 'checkpoint'), { dir, intervalMs: 1000 });
  t.same(await cp.restore(), { merged: 0, closed: 0, series: 0, corrupt: 2 });
  t.equal(stats.component('checkpoint').dropped('corrupt'), 2);
  t.same(
    lines.map((l) => (l as { file: string }).file).sort(),
    [`window-${T0 - INTERVAL}.ckpt`, `window-${T0}.ckpt`].sort(),
  );
  t.same(await readdir(dir), [], 'the bad files and the unfinished temporary file are gone');
  t.equal(aggregator.closeWindow().series.length, 0);
});
