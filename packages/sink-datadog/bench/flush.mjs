// One flush of bench scenario 7's window (200,000 mixed contexts: c g ms h s d, two tags each), end to
// end in-process: the real aggregator's window close, the sink queue (with `--data-dir`: the disk
// buffer's encode, CRC, write and fdatasync) and the Datadog sink's payloads, compression and sends to
// the stand-in intake (bench/fake-datadog.mjs, in its own process). Figures are CPU time, so other
// processes' load counts little: the main thread's own (from /proc/self/task/<tid>/schedstat), the
// whole process's (main thread + libuv pool), and the longest loop turn measured in main-thread CPU.
// Run after a build:
//   node --expose-gc packages/sink-datadog/bench/flush.mjs [--data-dir] [--windows 3] [--load]
// `--load` feeds 200k lines/s (10k 20-line packets/s) through the flush, as the scenario does.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createSocket } from 'node:dgram';
import { buildSender, runSender, writePayload } from '../../../bench/harness.mjs';
import { mixedLines } from '../../../bench/lib/payloads.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const useDisk = argv.includes('--data-dir');
const withLoad = argv.includes('--load');
const windows = Number(argv[argv.indexOf('--windows') + 1] || 3);
// `--against <checkout>`: the same flush with another checkout's build (e.g. the commit before a change).
const against = argv.includes('--against') ? argv[argv.indexOf('--against') + 1] : undefined;
const { Aggregator, SinkFanout, silentLogger, sinkContext } = await import(against === undefined ? '@metrics-distributor/core' : join(against, 'packages/core/dist/index.js'));
const { DatadogSink } = await import(against === undefined ? '../dist/index.js' : join(against, 'packages/sink-datadog/dist/index.js'));
const CONTEXTS = 200_000;
const LPP = 20;

// Main-thread CPU in ms: field 1 of schedstat is the thread's time on a CPU, in ns.
const schedFd = openSync(`/proc/self/task/${process.pid}/schedstat`, 'r');
const schedBuf = Buffer.alloc(128);
const threadMs = () => {
  const n = readSync(schedFd, schedBuf, 0, 128, 0);
  return Number(schedBuf.toString('latin1', 0, n).split(' ')[0]) / 1e6;
};
const processMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

// The stand-in intake.
const dd = spawn(process.execPath, [join(here, '../../../bench/fake-datadog.mjs'), 'bench.s7.c.'], { stdio: ['ignore', 'pipe', 'inherit'] });
const ddLines = createInterface({ input: dd.stdout });
const port = await new Promise((resolve) => ddLines.once('line', (l) => resolve(JSON.parse(l).listening)));

const lines = mixedLines('bench.s7', CONTEXTS, 1);
const packets = [];
// Only the packets stay: the lines would be heap the server does not have.
for (let i = 0; i < lines.length; i += LPP) packets.push(Buffer.from(lines.slice(i, i + LPP).join('\n')));
lines.length = 0;

const root = { logger: silentLogger(), stats: undefined };
const agg = new Aggregator({ flushIntervalMs: 5000, hostname: 'bench', maxContexts: 300_000, selfMetrics: true, logger: root.logger });
root.stats = agg.stats;
const dir = useDisk ? mkdtempSync(join(tmpdir(), 'md-flush-bench-')) : undefined;
const fanout = new SinkFanout(root, { maxBatches: 16 }, dir === undefined ? undefined : { dir, maxBytesPerSink: 1 << 30 });
const dd0 = new DatadogSink({ apiKey: 'bench-key', url: `http://127.0.0.1:${port}`, validateKey: false }, sinkContext(root, 'datadog'), {});
// Times each export from the outside; the sink itself is the real one.
let exportStart = 0;
let exportDone;
const sink = {
  name: dd0.name,
  tracksDelivery: dd0.tracksDelivery,
  async export(batch, delivery) {
    exportStart = mark();
    const r = await dd0.export(batch, delivery);
    exportDone?.(mark());
    return r;
  },
  forceFlush: () => dd0.forceFlush?.(),
  shutdown: (d) => dd0.shutdown(d),
};
fanout.add(sink);
await fanout.opened();
let windowOut = 0;
let written;
agg.onWindow((batch) => {
  windowOut = mark();
  written = fanout.push(batch).then(() => mark());
});

function mark() {
  return { wall: performance.now(), thread: threadMs(), proc: processMs(), us: Number(process.hrtime.bigint() / 1000n) };
}
const d = (a, b, k) => (b[k] - a[k]).toFixed(0);

// Longest stretch of main-thread CPU between two ticks of a 1 ms timer: an upper bound of the longest
// loop turn that does not depend on other processes' load (a setImmediate chain would spin the loop
// while it waits for the pool and count that as work).
let turnTimer;
let worstTurn = { thread: 0, wall: 0 };
let lastTurn;
function turn() {
  const now = { thread: threadMs(), wall: performance.now() };
  if (lastTurn !== undefined && now.thread - lastTurn.thread > worstTurn.thread) worstTurn = { thread: now.thread - lastTurn.thread, wall: now.wall - lastTurn.wall };
  lastTurn = now;
}

// `--load`: 200k lines/s (10k 20-line packets/s) from the bench's sender to a real UDP socket with an
// 8 MiB receive buffer, read as the server reads it (at most 32 datagrams a loop turn), through the
// whole run; what the kernel dropped is what the loop could not keep up with.
let udpPackets = 0;
let loadRun;
async function startLoad() {
  const sock = createSocket('udp4');
  sock.on('message', (msg) => {
    udpPackets++;
    agg.ingestStatsd(msg);
  });
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
  sock.setRecvBufferSize(8 * 1024 * 1024);
  const payload = writePayload(mkdtempSync(join(tmpdir(), 'md-flush-load-')), 'lines.txt', mixedLines('bench.s7', CONTEXTS, 1));
  const seconds = windows * 6 + 4;
  loadRun = runSender(buildSender(), { port: sock.address().port, payload, lpp: LPP, packets: 10_000 * seconds, rate: 10_000, maxSeconds: seconds * 2 }).then((r) => {
    sock.close();
    return r;
  });
}

console.log(`flush of ${CONTEXTS} mixed contexts${against === undefined ? '' : ` (${against})`}${useDisk ? ' with --data-dir' : ''}${withLoad ? ' under 200k lines/s' : ''}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('window | build thr/proc ms | disk thr/proc ms | export thr/proc ms | total thr/proc ms | wall ms | worst turn thr ms (wall)');
if (withLoad) await startLoad();
for (let w = 0; w < windows; w++) {
  if (withLoad) await new Promise((r) => setTimeout(r, 4000));
  else for (const p of packets) agg.ingestStatsd(p);
  if (process.env.FLUSH_BENCH_GC === "1") globalThis.gc?.();
  worstTurn = { thread: 0, wall: 0 };
  lastTurn = undefined;
  turnTimer = setInterval(turn, 1);
  const exported = new Promise((r) => (exportDone = r));
  const t0 = mark();
  await agg.closeWindowAsync();
  const t1 = windowOut;
  const t2 = await written;
  const t3 = await exported;
  clearInterval(turnTimer);
  const t2e = exportStart;
  console.log(
    `${w} | ${d(t0, t1, 'thread')}/${d(t0, t1, 'proc')} | ${useDisk ? `${d(t1, t2, 'thread')}/${d(t1, t2, 'proc')}` : '-'} | ${d(t2e, t3, 'thread')}/${d(t2e, t3, 'proc')} | ${d(t0, t3, 'thread')}/${d(t0, t3, 'proc')} | ${d(t0, t3, 'wall')} | ${worstTurn.thread.toFixed(1)} (${worstTurn.wall.toFixed(1)})${process.env.FLUSH_BENCH_US ? ` us ${t0.us} ${t1.us} ${t2.us} ${t2e.us} ${t3.us}` : ''}`,
  );
}
if (loadRun !== undefined) {
  const sent = await loadRun;
  console.log(`load: sent ${sent.packets} packets, read ${udpPackets}, lost ${sent.packets - udpPackets} (${(((sent.packets - udpPackets) / sent.packets) * 100).toFixed(2)} %)`);
}
await agg.close(Date.now() + 5000);
dd.kill('SIGTERM');
const summary = await new Promise((resolve) => ddLines.on('line', (l) => { const o = JSON.parse(l); if (o.requests !== undefined) resolve(o); }));
console.log(`stand-in: ${summary.requests.length} requests, ${summary.requests.reduce((a, r) => a + r.series, 0)} series`);
if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
