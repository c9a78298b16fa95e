/**
 * `--data-dir`: windows kept on disk until Datadog took them. With the stand-in down (503), windows pile
 * up on disk; the server is SIGKILLed and started again with the stand-in up: every window arrives once,
 * with the timestamps of its window, not of the replay. Kills at random points of a disk write never stop
 * the next start and never make anything arrive twice; torn records are logged. A tiny
 * `--data-dir-max-bytes` drops the oldest windows, counted; a directory that becomes unusable while running
 * (replaced by a file: tests run as root, where chmod does not stop writes, and no read-only mount is
 * available in CI) is logged and survived from memory.
 *
 * Windows are 200 ms (`--flush-interval 200ms`): the CLI warns that windows sharing a second overwrite
 * each other at Datadog, so every window here sends its own metric names (`dd.w<n>`), never shared.
 */
import { mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { killOnTeardown, rng, sleep, startCli, UdpSender, waitForPhase, type Child } from './helpers.js';
import { datadogArgs, duplicates, startStandIn, total, type StandIn } from './stand-in-datadog.js';

const INTERVAL_MS = 200;
const FAST_RETRY = ['--datadog-retry-base', '100ms', '--datadog-retry-max', '400ms', '--datadog-timeout', '1s'];

const start = async (t: Test, dd: StandIn, dir: string, extra: string[] = []): Promise<Child> => {
  const cli = startCli(['--flush-interval', `${INTERVAL_MS}ms`, '--self-metrics', 'false', '--counter-expiry', '0ms', ...datadogArgs(dd), ...FAST_RETRY, '--data-dir', dir, ...extra]);
  killOnTeardown(t, cli);
  await cli.listening;
  return cli;
};

/** Sends `n` windows, each its own metric `<prefix><k>` (3 × `:1|c`, `width` contexts), one per window; returns when each was sent. */
async function sendWindows(cli: Child, prefix: string, n: number, width = 1): Promise<{ name: string; at: number }[]> {
  const sender = new UdpSender(cli.ports.udp);
  const sent: { name: string; at: number }[] = [];
  for (let k = 0; k < n; k++) {
    await waitForPhase(INTERVAL_MS, 60);
    const name = `${prefix}${k}`;
    const at = Date.now();
    for (let r = 0; r < 3; r++) {
      const lines = Array.from({ length: width }, (_, i) => `${name}:1|c|#i:${i}`);
      for (let i = 0; i < lines.length; i += 100) await sender.send(lines.slice(i, i + 100).join('\n'));
    }
    sent.push({ name, at });
    await sleep(INTERVAL_MS - 60);
  }
  sender.close();
  return sent;
}

const down = (dd: StandIn): void => {
  dd.script = (r) => (r.method === 'POST' ? { status: 503 } : undefined);
};
const up = (dd: StandIn): void => {
  dd.script = () => undefined;
};
const points = (dd: StandIn, name: string) => dd.series().filter((s) => s.metric === name);

t.test('Datadog down, 30 windows, SIGKILL, restart with Datadog up: each window arrives once, with its own timestamp', async (t) => {
  const dd = await startStandIn();
  t.teardown(() => dd.close());
  down(dd);
  const dir = await mkdtemp(join(tmpdir(), 'md-dd-'));
  const first = await start(t, dd, dir);
  const sent = await sendWindows(first, 'dd.w', 30);
  await sleep(INTERVAL_MS + 300); // the last window closed and written
  t.equal(dd.series().length, 0, 'nothing accepted while down');
  first.proc.kill('SIGKILL');
  await first.exited;
  await sleep(1200); // a replay stamped with the time of the restart would show
  up(dd);
  const second = await start(t, dd, dir);
  await dd.waitFor(() => sent.every((w) => points(dd, w.name).length > 0), 15_000, 'every window');
  await sleep(300);
  for (const w of sent) {
    const p = points(dd, w.name);
    t.equal(p.length, 1, `${w.name}: one point (${JSON.stringify(p.map((x) => x.points))})`);
    t.equal(total(p, w.name), 3, `${w.name}: its count`);
    const ts = (p[0]?.points[0]?.timestamp ?? 0) * 1000;
    t.ok(ts <= w.at && ts > w.at - 1000 - INTERVAL_MS, `${w.name}: timestamp of its window (${ts} for a send at ${w.at})`);
  }
  t.same(duplicates(dd.series()), []);
  const replay = second.logs().find((l) => l['msg'] === 'Data directory: replaying windows left from the last run.');
  t.ok(replay !== undefined && (replay['windows'] as number) >= 30, `replayed ${String(replay?.['windows'])} windows`);
  await second.stop();
});

t.test('kills at random points of disk writes: every start works, nothing arrives twice, torn writes are logged', async (t) => {
  const dd = await startStandIn();
  t.teardown(() => dd.close());
  down(dd);
  const dir = await mkdtemp(join(tmpdir(), 'md-kill-'));
  const random = rng(15);
  const RUNS = 20;
  const all: string[] = [];
  const lastOfRun: string[] = [];
  let torn = 0;
  const began = Date.now();
  for (let run = 0; run < RUNS; run++) {
    const s0 = Date.now();
    const cli = await start(t, dd, dir);
    if (run % 5 === 4) t.comment(`run ${run}: start took ${Date.now() - s0} ms, ${Date.now() - began} ms so far`);
    torn += cli.logs().filter((l) => (l['err'] as { code?: string } | undefined)?.code === 'MD_ERR_DISK_CORRUPT').length;
    // Two windows of 1000 contexts (a record of ~100 kB); the kill lands while the second is being written.
    const t0 = Date.now();
    const sent = await sendWindows(cli, `rk.r${run}.w`, 2, 1000);
    if (run === 0) t.comment(`one run: ${Date.now() - t0} ms of sending`);
    all.push(...sent.map((w) => w.name));
    lastOfRun.push(sent[1]!.name);
    // The second window closes about now; its record is encoded and written over the next ~100 ms.
    await sleep(Math.floor(random() * 120));
    cli.proc.kill('SIGKILL');
    await cli.exited;
  }
  up(dd);
  const final = await start(t, dd, dir);
  torn += final.logs().filter((l) => (l['err'] as { code?: string } | undefined)?.code === 'MD_ERR_DISK_CORRUPT').length;
  const arrived = (): string[] => all.filter((n) => points(dd, n).length > 0);
  await dd.waitFor(() => arrived().length >= all.length - RUNS, 30_000, 'the windows written before each kill');
  await sleep(1500);
  const dups = duplicates(dd.series());
  t.same(dups.slice(0, 3), [], `nothing delivered twice (${dups.length}; requests not answered: ${dd.requests.filter((r) => r.outcome !== 'answered').length}, 503s: ${dd.requests.filter((r) => r.status === 503).length})`);
  t.same(arrived().filter((n) => points(dd, n).length !== 1000), [], 'every window that arrived is whole');
  const missing = all.filter((n) => points(dd, n).length === 0);
  t.ok(missing.every((n) => lastOfRun.includes(n)), `only windows being written at a kill are missing (${missing.length}: ${missing.join(',')})`);
  t.comment(`${missing.length} windows killed mid-write; ${torn} torn records logged`);
  await final.stop();
});

t.test('a tiny --data-dir-max-bytes drops the oldest windows, counted, and stays within its bound', async (t) => {
  const dd = await startStandIn();
  t.teardown(() => dd.close());
  down(dd);
  const dir = await mkdtemp(join(tmpdir(), 'md-full-'));
  const max = 64 * 1024;
  const cli = await start(t, dd, dir, ['--data-dir-max-bytes', String(max), '--datadog-retry-buffer-bytes', '20000']);
  const sent = await sendWindows(cli, 'full.w', 12, 100);
  await sleep(300);
  let bytes = 0;
  for (const f of await readdir(join(dir, 'sink-datadog'))) bytes += (await stat(join(dir, 'sink-datadog', f))).size;
  t.ok(bytes <= max, `the directory holds ${bytes} bytes ≤ ${max}`);
  const full = cli.logs().find((l) => (l['err'] as { code?: string } | undefined)?.code === 'MD_ERR_DISK_FULL');
  t.ok(full !== undefined, 'the drop is logged');
  t.ok((full?.['count'] as number) > 0, 'and counted');
  up(dd);
  await dd.waitFor(() => points(dd, sent.at(-1)!.name).length === 100, 10_000, 'the newest window');
  await sleep(500);
  t.same(duplicates(dd.series()), []);
  t.equal(cli.proc.exitCode, null, 'still running');
  await cli.stop();
});

t.test('a data directory that becomes unusable while running is logged and survived from memory', async (t) => {
  const dd = await startStandIn();
  t.teardown(() => dd.close());
  const dir = await mkdtemp(join(tmpdir(), 'md-ro-'));
  const cli = await start(t, dd, dir, ['--data-dir-max-bytes', String(64 * 1024)]);
  await sendWindows(cli, 'ro.a', 2, 50);
  const sinkDir = join(dir, 'sink-datadog');
  await rename(sinkDir, `${sinkDir}.gone`);
  await writeFile(sinkDir, 'not a directory');
  const sent = await sendWindows(cli, 'ro.b', 6, 50);
  await dd.waitFor(() => sent.every((w) => points(dd, w.name).length === 50), 10_000, 'the windows after the directory broke');
  t.ok(cli.logs().some((l) => (l['err'] as { code?: string } | undefined)?.code === 'MD_ERR_DISK_WRITE'), 'the failed write is logged');
  t.equal(cli.proc.exitCode, null, 'still running');
  t.same(duplicates(dd.series()), []);
  await cli.stop();
  await rm(sinkDir, { force: true });
});
