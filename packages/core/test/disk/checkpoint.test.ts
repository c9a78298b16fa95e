import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Aggregator } from '../../src/aggregator.js';
import { componentContext } from '../../src/component.js';
import { Checkpointer, decodeCheckpoint, encodeOpenWindow, type CheckpointParts, type EncodedWindowPart } from '../../src/disk/checkpoint.js';
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

/** A second process's part of the window (a `--workers` UDP worker): its own aggregator, encoded as a worker encodes it. */
async function partOf(lines: string, nowMs: number): Promise<{ part: EncodedWindowPart; aggregator: Aggregator }> {
  const aggregator = new Aggregator({ flushIntervalMs: INTERVAL, hostname: 'h', now: () => nowMs, stats: new StatsRegistry(), selfMetrics: false });
  aggregator.ingestStatsd(Buffer.from(lines));
  const got = await encodeOpenWindow(aggregator);
  if (got === undefined) throw new Error('window closed');
  return { part: { windowStartMs: got.rest.windowStartMs, pieces: got.pieces, rest: got.rest }, aggregator };
}

/** Parts handed to every checkpoint as they are; `skip` makes take() refuse (a part merged during the snapshot). */
function fixedParts(parts: EncodedWindowPart[], opts: { skip?: boolean } = {}) {
  const calls = { refresh: 0, take: [] as number[] };
  const source: CheckpointParts = {
    refresh: async () => {
      calls.refresh++;
    },
    begin: () => ({
      take: (w) => {
        calls.take.push(w);
        return opts.skip === true ? undefined : parts.filter((p) => p.windowStartMs === w);
      },
    }),
  };
  return { source, calls };
}

const WORKER_LINES = ['c.one:5|c|#k:a', 'g.one:3|g|#k:b', 's.one:u3|s', 'h.one:2|h', 'd.one:7|d', 'c.worker:1|c', '_e{2,2}:ev|ok', '_sc|svc|0'].join('\n');

t.test('parts of other processes are written with the window and restored with it: exactly the merged window', async (t) => {
  const dir = await tmp();
  const a = setup(T0 + 1000, dir, true);
  a.aggregator.ingestStatsd(Buffer.from(LINES));
  const w1 = await partOf(WORKER_LINES, T0 + 1500);
  const w2 = await partOf('c.one:10|c|#k:a\nh.one:50|h', T0 + 1600);
  // Of another window: never written into this one's checkpoint.
  const stale = await partOf('c.one:1000|c|#k:a', T0 - INTERVAL + 5);
  const { source, calls } = fixedParts([w1.part, w2.part, stale.part]);
  a.cp.addParts(source);
  await a.cp.checkpoint();
  t.equal(calls.refresh, 1);
  t.same(calls.take, [T0], 'taken for the window the primary snapshotted');
  const file = decodeCheckpoint(await readFile(join(dir, `window-${T0}.ckpt`)));
  t.ok(file.ok, 'the same file format (version 1) and checks');
  // What a primary would close had it merged both workers' drained windows.
  a.aggregator.mergeState(w1.aggregator.drainState());
  a.aggregator.mergeState(w2.aggregator.drainState());
  const expected = a.aggregator.closeWindow();
  t.equal(expected.series.find((s) => s.metric === 'c.one')?.value, (1 + 2 + 5 + 10) / 10);

  const b = setup(T0 + 5000, dir);
  t.match(await b.cp.restore(), { merged: 1, closed: 0, corrupt: 0 });
  const got = b.aggregator.closeWindow();
  t.same(sorted(got), sorted(expected));
  t.equal(got.events.length, 1, "the worker's event");
  t.equal(got.serviceChecks.length, 1, "the worker's service check");
  t.equal(got.series.find((s) => s.metric === 'h.one.max')?.value, 50, 'histograms merged across parts');
  t.equal(got.sketches[0]?.sketch.count, 4 + 1, 'sketches merged across parts');
});

t.test('parts restored after their window closed: one closed window with every process part, once', async (t) => {
  const dir = await tmp();
  const a = setup(T0 + 1000, dir, true);
  a.aggregator.ingestStatsd(Buffer.from(LINES));
  const w1 = await partOf(WORKER_LINES, T0 + 1500);
  a.cp.addParts(fixedParts([w1.part]).source);
  await a.cp.checkpoint();
  a.aggregator.mergeState(w1.aggregator.drainState());
  const expected = a.aggregator.closeWindow();

  const b = setup(T0 + 2 * INTERVAL + 1000, dir);
  t.match(await b.cp.restore(), { merged: 0, closed: 1 });
  t.equal(b.windows.length, 1, 'one window, not one per process');
  t.same(sorted(b.windows[0]!), sorted(expected));
  await b.cp.close();
  t.same(await readdir(dir), []);
});

t.test('a checkpoint during which a part reached the aggregator is skipped: the previous one stays', async (t) => {
  const dir = await tmp();
  const a = setup(T0 + 1000, dir, true);
  a.aggregator.ingestStatsd(Buffer.from('c.one:1|c'));
  await a.cp.checkpoint();
  const before = await readFile(join(dir, `window-${T0}.ckpt`));
  a.aggregator.ingestStatsd(Buffer.from('c.one:1|c'));
  const w1 = await partOf('c.one:5|c', T0 + 1500);
  a.cp.addParts(fixedParts([w1.part], { skip: true }).source);
  await a.cp.checkpoint();
  t.same(await readFile(join(dir, `window-${T0}.ckpt`)), before, 'not rewritten');
  t.equal(a.component.counter('checkpoint_skipped'), 1, 'counted checkpoint_skipped');
});

t.test('encodeOpenWindow gives its pieces to onPiece as it goes and undefined when the window closed meanwhile', async (t) => {
  const a = setup(T0 + 1000, await tmp());
  for (let i = 0; i < 5000; i++) a.aggregator.increment(`c${i}`);
  const pieces: Buffer[] = [];
  const got = await encodeOpenWindow(a.aggregator, (p) => pieces.push(p));
  t.same(got?.pieces, [], 'not kept when onPiece takes them');
  t.equal(got?.rest.windowStartMs, T0);
  const contexts = JSON.parse(`[${pieces.map((p) => p.toString()).join(',')}]`) as { name: string }[];
  t.equal(contexts.length, 5000);
  // The window closes between two slices (right after the first piece): nothing to write.
  for (let i = 0; i < 50_000; i++) a.aggregator.increment(`x${i}`);
  let n = 0;
  const closing = encodeOpenWindow(a.aggregator, () => {
    if (n++ === 0) a.aggregator.closeWindow();
  });
  t.equal(await closing, undefined);
  t.equal(n, 1, 'no piece after the close');
});
