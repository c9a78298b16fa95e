/**
 * `--checkpoint-open-window`: the open window written to `<data-dir>/checkpoint/` every interval. A
 * SIGKILLed server's window comes back at the next start: merged into the open window when the restart
 * is within it (a 30 s window), closed as itself with its own timestamp when it has closed since (a 2 s
 * window); either way with exactly the counts sent before the last checkpoint. A clean SIGTERM leaves
 * no checkpoint. A corrupt checkpoint never stops the start and is counted.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { decodeCheckpoint } from '@metrics-distributor/core';
import { killOnTeardown, sleep, startCli, UdpSender, waitForPhase, windowOf, type Child } from './helpers.js';
import { datadogArgs, selfTotal, startStandIn, total, type StandIn } from './stand-in-datadog.js';

// One at a time: each test runs two or three servers, and their start-up is what a loaded machine slows first.
t.jobs = 1;

async function setup(t: Test): Promise<{ dd: StandIn; dir: string }> {
  const dd = await startStandIn();
  t.teardown(() => dd.close());
  const dir = await mkdtemp(join(tmpdir(), 'md-ckpt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return { dd, dir };
}

async function start(t: Test, dd: StandIn, dir: string, intervalMs: number, checkpointMs: number, extra: string[] = []): Promise<Child> {
  const cli = startCli(['--flush-interval', `${intervalMs}ms`, '--checkpoint-open-window', `${checkpointMs}ms`, '--counter-expiry', '0ms', ...datadogArgs(dd), '--data-dir', dir, ...extra]);
  killOnTeardown(t, cli);
  await cli.listening;
  return cli;
}

/** Sends `batches` UDP packets of `ck.<name>:1|c` ×10 each from one source port; returns the count sent and when the last went. */
async function sendCounts(cli: Child, name: string, batches: number): Promise<{ count: number; lastAtMs: number }> {
  const sender = new UdpSender(cli.ports.udp);
  for (let b = 0; b < batches; b++) await sender.send(Array.from({ length: 10 }, () => `ck.${name}:1|c|#t:x`).join('\n'));
  sender.close();
  return { count: batches * 10, lastAtMs: Date.now() };
}

/** Waits until the checkpoint of window `w` was written after `afterMs` (so it holds everything sent before). */
async function checkpointAfter(dir: string, w: number, afterMs: number): Promise<void> {
  const file = join(dir, 'checkpoint', `window-${w}.ckpt`);
  let mtime = 0;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    mtime = await stat(file).then((s) => s.mtimeMs, () => 0);
    // A whole interval later: the write that began after the sends is finished, not merely a rename of an earlier one.
    if (mtime > afterMs + 50) return;
    await sleep(50);
  }
  throw new Error(`no checkpoint of window ${w} after ${afterMs} (last ${mtime})`);
}

/** Waits for two checkpoint writes of window `w` after `afterMs`: the second began after the first ended, so after the sends. */
async function twoCheckpointsAfter(dir: string, w: number, afterMs: number): Promise<void> {
  await checkpointAfter(dir, w, afterMs - 50);
  const first = (await stat(join(dir, 'checkpoint', `window-${w}.ckpt`))).mtimeMs;
  await checkpointAfter(dir, w, first - 50);
}

/** Pids of the UDP workers of `cli`, from their log lines. */
const workerPids = (cli: Child): number[] => [...new Set(cli.logs().flatMap((l) => (typeof l['workerPid'] === 'number' ? [l['workerPid']] : [])))];

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const points = (dd: StandIn, metric: string) => dd.series().filter((s) => s.metric === metric);

t.test('SIGKILL, restart within the 30 s window: the checkpoint is merged into it, counts exact, original timestamp', async (t) => {
  const { dd, dir } = await setup(t);
  const INTERVAL = 30_000;
  // Room in the window for the sends, the kill and the restart: else wait for the next window.
  if (INTERVAL - (Date.now() % INTERVAL) < 8_000) await waitForPhase(INTERVAL, 200);
  const first = await start(t, dd, dir, INTERVAL, 1000);
  const w = windowOf(Date.now(), INTERVAL);
  const sent = await sendCounts(first, 'merged', 20);
  await checkpointAfter(dir, w, sent.lastAtMs);
  first.proc.kill('SIGKILL');
  await first.exited;
  t.equal(dd.series().length, 0, 'nothing was sent before the kill');

  const second = await start(t, dd, dir, INTERVAL, 1000);
  const restored = second.logs().find((l) => l['msg'] === 'Restored the open window from its checkpoint.');
  t.match(restored, { component: 'checkpoint', merged: 1, closed: 0, corrupt: 0 }, 'one log line');
  t.equal(windowOf(Date.now(), INTERVAL), w, 'still the same window');
  // A clean stop flushes the window, restored part included, and leaves no checkpoint behind.
  await second.stop('SIGTERM');
  await dd.waitFor(() => points(dd, 'ck.merged').length > 0, 10_000, 'the window');
  const p = points(dd, 'ck.merged');
  t.equal(p.length, 1);
  t.equal(p[0]?.points[0]?.timestamp, w / 1000, 'the window it was sent in');
  t.equal(total(dd.series(), 'ck.merged'), sent.count, 'exactly what was sent before the checkpoint');
  t.equal(selfTotal(dd.series(), 'restored', 'checkpoint'), 1, 'restored{component:checkpoint} counts the series');
  t.same(await readdir(join(dir, 'checkpoint')), [], 'no checkpoint after SIGTERM');
});

t.test('--workers 2: SIGKILL of the primary and its workers, restart within the 30 s window: the workers\' parts are restored, counts exact', async (t) => {
  const { dd, dir } = await setup(t);
  const INTERVAL = 30_000;
  // Room for up to four rounds of sends and checkpoints, the kill and the restart.
  if (INTERVAL - (Date.now() % INTERVAL) < 20_000) await waitForPhase(INTERVAL, 200);
  const first = await start(t, dd, dir, INTERVAL, 1000, ['--workers', '2']);
  const workers = workerPids(first);
  t.equal(workers.length, 2, 'two workers listening');
  t.teardown(() => workers.filter(alive).forEach((pid) => process.kill(pid, 'SIGKILL')));
  const w = windowOf(Date.now(), INTERVAL);
  // Only the workers read the UDP socket; eight senders (source ports), so both are likely to get some.
  // The kernel, not the source port, picks the reader of each datagram: bursts from several senders
  // at once, until both workers have a part in the checkpoint (one entry of the context each).
  let count = 0;
  let parts = 0;
  for (let round = 0; round < 4 && parts < 2; round++) {
    count += (await Promise.all(Array.from({ length: 8 }, () => sendCounts(first, 'workers', 25)))).reduce((n, r) => n + r.count, 0);
    await twoCheckpointsAfter(dir, w, Date.now());
    const file = decodeCheckpoint(await readFile(join(dir, 'checkpoint', `window-${w}.ckpt`)));
    parts = file.ok ? file.state.contexts.filter((c) => c.name === 'ck.workers').length : 0;
  }
  t.equal(parts, 2, 'both workers have a part in the checkpoint');
  // A crash takes every process of the server at once: none ships its window anywhere.
  for (const pid of [first.proc.pid!, ...workers]) process.kill(pid, 'SIGKILL');
  await first.exited;
  while (workers.some(alive)) await sleep(20);
  t.equal(dd.series().length, 0, 'nothing was sent before the kill');

  const second = await start(t, dd, dir, INTERVAL, 1000, ['--workers', '2']);
  t.match(second.logs().find((l) => l['msg'] === 'Restored the open window from its checkpoint.'), { component: 'checkpoint', merged: 1, closed: 0, corrupt: 0 });
  t.equal(windowOf(Date.now(), INTERVAL), w, 'still the same window');
  await second.stop('SIGTERM');
  await dd.waitFor(() => points(dd, 'ck.workers').length > 0, 10_000, 'the window');
  const p = points(dd, 'ck.workers');
  t.equal(p.length, 1, 'once');
  t.equal(p[0]?.points[0]?.timestamp, w / 1000, 'the window it was sent in');
  t.equal(total(dd.series(), 'ck.workers'), count, 'exactly what the workers received before the checkpoint');
  t.same(await readdir(join(dir, 'checkpoint')), [], 'no checkpoint after SIGTERM');
});

t.test('SIGKILL, restart after the window closed: it arrives as that window, once, with the counts of the last checkpoint', async (t) => {
  const { dd, dir } = await setup(t);
  const INTERVAL = 2000;
  let first: Child | undefined, w = 0, sent = { count: 0, lastAtMs: 0 }, name = '';
  // Under load a start or a checkpoint can miss the window it was meant for: then try again in the next.
  for (let attempt = 0; attempt < 3; attempt++) {
    await waitForPhase(INTERVAL, 100);
    first = await start(t, dd, dir, INTERVAL, 300);
    w = windowOf(Date.now(), INTERVAL);
    name = `closed${attempt}`;
    sent = await sendCounts(first, name, 10);
    const written = await checkpointAfter(dir, w, sent.lastAtMs).then(() => true, () => false);
    const inTime = written && windowOf(Date.now(), INTERVAL) === w;
    first.proc.kill('SIGKILL');
    await first.exited;
    if (inTime) break;
    t.comment(`attempt ${attempt}: the checkpoint missed window ${w}; again`);
    name = '';
  }
  if (name === '') throw new Error('no checkpoint within its window in three attempts');
  // Past the window's end: the restart finds a closed window.
  while (windowOf(Date.now(), INTERVAL) === w) await sleep(50);

  const second = await start(t, dd, dir, INTERVAL, 300);
  t.match(second.logs().find((l) => l['msg'] === 'Restored the open window from its checkpoint.'), { closed: 1, merged: 0 });
  await dd.waitFor(() => points(dd, `ck.${name}`).length > 0, 10_000, 'the restored window');
  const p = points(dd, `ck.${name}`);
  t.equal(p.length, 1, 'once');
  t.equal(p[0]?.points[0]?.timestamp, w / 1000, 'with its original timestamp');
  t.equal(total(dd.series(), `ck.${name}`), sent.count, 'exact counts');
  await dd.waitFor(() => selfTotal(dd.series(), 'restored', 'checkpoint') > 0, 10_000, 'the restored self-metric');
  t.ok(selfTotal(dd.series(), 'restored', 'checkpoint') >= 1, 'restored counted');
  const left = (await readdir(join(dir, 'checkpoint'))).filter((f) => f === `window-${w}.ckpt`);
  t.same(left, [], "the restored window's checkpoint is gone");
  // Deleted once on the disk buffer: a second kill and restart brings nothing back.
  second.proc.kill('SIGKILL');
  await second.exited;
  const third = await start(t, dd, dir, INTERVAL, 300);
  await sleep(INTERVAL + 500);
  await third.stop('SIGTERM');
  t.equal(points(dd, `ck.${name}`).length, 1, 'never twice');
});

t.test('a corrupt checkpoint: the start works, the file is named in the log and counted', async (t) => {
  const { dd, dir } = await setup(t);
  const cpDir = join(dir, 'checkpoint');
  await mkdir(cpDir, { recursive: true });
  await writeFile(join(cpDir, 'window-1700000000000.ckpt'), Buffer.from('MDCP\0\0\0\x01garbage that fails its checks'));
  const cli = await start(t, dd, dir, 1000, 300);
  const line = cli.logs().find((l) => l['file'] === 'window-1700000000000.ckpt');
  t.match(line, { component: 'checkpoint', err: { code: 'MD_ERR_CHECKPOINT_CORRUPT' } }, 'logged with the file name');
  await dd.waitFor(() => selfTotal(dd.series(), 'dropped', 'checkpoint', 'corrupt') > 0, 10_000, 'the drop count');
  t.equal(selfTotal(dd.series(), 'dropped', 'checkpoint', 'corrupt'), 1);
  // Still ingesting.
  await sendCounts(cli, 'after', 1);
  await dd.waitFor(() => total(dd.series(), 'ck.after') === 10, 10_000, 'samples after the bad start');
  await cli.stop();
});

t.test('--checkpoint-open-window without --data-dir is refused, naming both', async (t) => {
  const cli = startCli(['--checkpoint-open-window', '1s']);
  killOnTeardown(t, cli);
  const exit = await cli.exited;
  t.not(exit.code, 0);
  t.match(cli.stderr(), /--checkpoint-open-window.*--data-dir/);
});
