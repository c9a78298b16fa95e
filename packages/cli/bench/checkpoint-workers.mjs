// Cost of --checkpoint-open-window with --workers: the real CLI, its open window filled over UDP
// with `contexts` distinct contexts (spread over the workers), then CPU time of the primary and of
// each worker (from /proc/<pid>/stat) over a quiet stretch with a checkpoint every second, less the
// same stretch without checkpoints, per checkpoint written; and the primary's longest stall then, as
// the slowest of back-to-back GET /healthz to its admin listener (wall time: noisy on a loaded
// machine, compare with the stretch without checkpoints). Prints figures; asserts nothing.
// Run: node packages/cli/bench/checkpoint-workers.mjs [contexts] after a build.
import { spawn } from 'node:child_process';
import { get } from 'node:http';
import { createSocket } from 'node:dgram';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/metrics-distributor.js', import.meta.url));
const CONTEXTS = Number(process.argv[2] ?? 200_000);
const QUIET_MS = 12_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TICK = 100; // USER_HZ: /proc stat times are in clock ticks

/** utime + stime of `pid`, in ms. */
function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICK;
}

async function server(workers, checkpoint, dir) {
  const args = [BIN, '--statsd-udp', '127.0.0.1:0', '--workers', String(workers), '--flush-interval', '1h', '--sink', 'console', '--data-dir', dir, '--checkpoint-open-window', checkpoint, '--self-metrics', 'false', '--max-contexts', String(CONTEXTS * 2), '--admin', '127.0.0.1:0'];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  const deadline = Date.now() + 30_000;
  while (!/metrics-distributor started/.test(err)) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`no start: ${err}`);
    await sleep(50);
  }
  const port = Number(/udp:\/\/127\.0\.0\.1:(\d+)/.exec(err)[1]);
  const workerPids = [...new Set([...err.matchAll(/"workerPid":(\d+)/g)].map((m) => Number(m[1])))];
  const admin = /"admin":"(http:\/\/[^"]+)"/.exec(err)[1];
  return { proc, port, admin, workerPids, stderr: () => err };
}

/** Every context once, 20 lines a datagram; a sixth histograms, a sixth sets, as the core bench. */
async function fill(port) {
  const sock = createSocket('udp4');
  for (let p = 0; p < CONTEXTS / 20; p++) {
    const lines = [];
    for (let l = 0; l < 20; l++) {
      const n = p * 20 + l;
      const kind = n % 6 === 0 ? `${n % 997}|h` : n % 6 === 1 ? `u${n % 50}|s` : '1|c';
      lines.push(`app.m${n % 500}.x:${kind}|#shard:${Math.floor(n / 500)}`);
    }
    await new Promise((r) => sock.send(lines.join('\n'), port, '127.0.0.1', r));
    // Paced, so the kernel queue of the shared socket never overflows.
    if (p % 50 === 49) await sleep(5);
  }
  sock.close();
}

const healthz = (url) =>
  new Promise((resolve, reject) => {
    const t0 = performance.now();
    get(`${url}/healthz`, (res) => {
      res.resume();
      res.on('end', () => resolve(performance.now() - t0));
    }).on('error', reject);
  });

/** CPU of each process over QUIET_MS, how many checkpoints were written meanwhile, and the slowest /healthz. */
async function quiet(pids, file, admin) {
  const before = pids.map(cpuMs);
  let writes = 0;
  let last = await stat(file).then((s) => s.mtimeMs, () => 0);
  const end = Date.now() + QUIET_MS;
  let slowest = 0;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      slowest = Math.max(slowest, await healthz(admin));
      await sleep(5);
    }
  })();
  while (Date.now() < end) {
    await sleep(20);
    const m = await stat(file).then((s) => s.mtimeMs, () => 0);
    if (m !== last) writes++;
    last = m;
  }
  probing = false;
  await probe;
  return { cpu: pids.map((p, i) => cpuMs(p) - before[i]), writes, slowest };
}

async function run(workers) {
  const results = {};
  for (const checkpoint of ['1h', '1s']) {
    const dir = await mkdtemp(join(tmpdir(), 'md-bench-ckptw-'));
    const s = await server(workers, checkpoint, dir);
    try {
      await fill(s.port);
      await sleep(1500);
      const pids = [s.proc.pid, ...s.workerPids];
      const names = (await readdir(join(dir, 'checkpoint')).catch(() => [])).filter((n) => n.endsWith('.ckpt'));
      const file = join(dir, 'checkpoint', names[0] ?? 'none');
      results[checkpoint] = { ...(await quiet(pids, file, s.admin)), file };
      if (checkpoint === '1s') {
        const bytes = await readFile(file);
        results.contexts = JSON.parse(bytes.subarray(16).toString()).contexts.length;
        results.size = bytes.length;
      }
    } finally {
      s.proc.kill('SIGKILL');
      for (const p of s.workerPids) try { process.kill(p, 'SIGKILL'); } catch {}
      await rm(dir, { recursive: true, force: true });
    }
  }
  const off = results['1h'], on = results['1s'];
  const per = on.cpu.map((c, i) => (c - off.cpu[i]) / on.writes);
  console.log(
    `--workers ${workers}, ${CONTEXTS} contexts sent: ${results.contexts} context entries in the checkpoint (${(results.size / 1e6).toFixed(1)} MB), ${on.writes} checkpoints in ${QUIET_MS / 1000} s; ` +
      `CPU per checkpoint: primary ${per[0].toFixed(0)} ms` + per.slice(1).map((c, i) => `, worker ${i + 1} ${c.toFixed(0)} ms`).join('') +
      ` (idle CPU over ${QUIET_MS / 1000} s without checkpoints: ${off.cpu.map((c) => c.toFixed(0)).join(' / ')} ms)` +
      `; slowest /healthz of the primary: ${on.slowest.toFixed(0)} ms with checkpoints, ${off.slowest.toFixed(0)} ms without`,
  );
}

for (const w of process.argv[3] === undefined ? [1, 2] : process.argv[3].split(',').map(Number)) await run(w);
