// The receive cost of each reader at saturation, measured in a way the machine's load does not move:
// the event loop is blocked (spawnSync) while a sender fills the socket's receive queue, then the
// process's own CPU time (process.cpuUsage) to drain and aggregate that queue is divided by the
// datagrams read. Prints one JSON line per reader with µs per datagram and lines per CPU-second, and
// with SLICES=1 the most CPU time one loop iteration took while draining (the longest synchronous
// slice; a chain of setImmediate marks the iterations, which adds a little CPU of its own).
//
// Run after a build: node bench/drain.mjs   (READERS=dgram,batch ROUNDS=12 DATAGRAMS=4000 LPP=20)
// Needs the bench's C sender (bench/.build/sender, built by `pnpm bench` or by SENDER=path) or falls
// back to a Node sender; either way only the receiver's CPU is counted.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aggregator, componentContext, silentLogger } from '@metrics-distributor/core';
import { UdpFrontend } from '../dist/index.js';

const READERS = (process.env.READERS ?? 'dgram,batch').split(',');
const ROUNDS = Number(process.env.ROUNDS ?? 12);
const DATAGRAMS = Number(process.env.DATAGRAMS ?? 4000);
const LPP = Number(process.env.LPP ?? 20);
const SLICES = process.env.SLICES === '1';
const repoSender = fileURLToPath(new URL('../../../bench/.build/sender', import.meta.url));
const SENDER = process.env.SENDER ?? (existsSync(repoSender) ? repoSender : undefined);

const dir = mkdtempSync(join(tmpdir(), 'md-udp-drain-'));
const lines = Array.from({ length: 1000 }, (_, i) => `bench.drain.${String(i).padStart(3, '0')}:1|c`);
const payloadFile = join(dir, 'lines.txt');
writeFileSync(payloadFile, `${lines.join('\n')}\n`);
const nodeSender = join(dir, 'send.mjs');
writeFileSync(
  nodeSender,
  `import { createSocket } from 'node:dgram';
const [port, n, lpp] = process.argv.slice(2).map(Number);
const lines = ${JSON.stringify(lines)};
const s = createSocket('udp4');
let left = n;
for (let i = 0; i < n; i++) {
  const p = Buffer.from(Array.from({ length: lpp }, (_, j) => lines[(i * lpp + j) % lines.length]).join('\\n'));
  s.send(p, port, '127.0.0.1', () => { if (--left === 0) s.close(); });
}
`,
);

/** Fills the queue while this process's loop is blocked: nothing is read until spawnSync returns. */
function fill(port) {
  const r = SENDER !== undefined
    ? spawnSync(SENDER, ['127.0.0.1', String(port), payloadFile, String(LPP), String(DATAGRAMS), '0', '30'], { env: { ...process.env, NO_GSO: '1' }, encoding: 'utf8' })
    : spawnSync(process.execPath, [nodeSender, String(port), String(DATAGRAMS), String(LPP)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sender failed: ${r.stderr}`);
}

async function measure(reader) {
  const agg = new Aggregator({ hostname: 'bench', selfMetrics: false, flushIntervalMs: 3_600_000 });
  const context = componentContext({ logger: silentLogger(), stats: agg.stats }, 'statsd-udp');
  const inner = agg.target(context);
  let target = 0;
  let onDone;
  // Counts datagrams as they are handed over and notes the CPU time the moment the last one is in.
  const counting = {
    statsd(buf, start, end) {
      inner.statsd(buf, start, end);
      if (context.stats.packets === target) onDone?.(process.cpuUsage());
    },
    statsdLine: (b, s, e) => inner.statsdLine(b, s, e),
    addSample: (s, w) => inner.addSample(s, w),
    get windowStartMs() {
      return inner.windowStartMs;
    },
  };
  const fe = new UdpFrontend({ port: 0, reader, recvBufferBytes: 64 * 1024 * 1024, kernelDropsPollMs: 0, closeDrainMs: 0 }, { target: counting, context });
  await fe.start();
  if (fe.reader !== reader) throw new Error(`asked for ${reader}, running ${fe.reader}`);
  const port = Number(fe.addresses()[0].split(':').at(-1));
  let cpuUs = 0;
  let datagrams = 0;
  let maxSliceMs = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const before = context.stats.packets;
    fill(port);
    const queued = readQueued(port);
    target = before + queued;
    const t0 = process.cpuUsage();
    // Each round's chain of immediates has its own flag: one still queued when the next fill blocks
    // the loop must not count that block as a slice.
    const slices = { stop: false };
    if (SLICES) {
      // CPU time, not wall time: on a shared machine a slice's wall time includes being preempted.
      let last = process.cpuUsage();
      const tick = () => {
        if (slices.stop) return;
        const now = process.cpuUsage();
        if (round > 0) maxSliceMs = Math.max(maxSliceMs, (now.user - last.user + now.system - last.system) / 1000);
        last = now;
        setImmediate(tick);
      };
      setImmediate(tick);
    }
    const t1 = await new Promise((resolve) => (onDone = resolve));
    slices.stop = true;
    onDone = undefined;
    // Round 0 warms the JIT and creates the contexts; it is not counted.
    if (round === 0) continue;
    cpuUs += t1.user - t0.user + (t1.system - t0.system);
    datagrams += queued;
  }
  await fe.close();
  await agg.close();
  return { reader, datagrams, lines: datagrams * LPP, cpuUsPerDatagram: +(cpuUs / datagrams).toFixed(3), linesPerCpuSecond: Math.round((datagrams * LPP) / (cpuUs / 1e6)), ...(SLICES ? { maxSliceMs: +maxSliceMs.toFixed(2) } : {}) };
}

/** Datagrams waiting on the socket: the rx_queue of /proc/net/udp is in bytes, so count what the sender sent minus the socket's drops. */
let lastDrops = 0;
function readQueued(port) {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  const row = readFileSync('/proc/net/udp', 'utf8').split('\n').find((l) => l.includes(hex));
  const drops = Number(row?.trim().split(/\s+/).at(-1) ?? 0);
  const lost = drops - lastDrops;
  lastDrops = drops;
  return DATAGRAMS - lost;
}

const results = [];
for (const reader of READERS) {
  lastDrops = 0;
  results.push(await measure(reader));
}
for (const r of results) console.log(JSON.stringify({ ...r, sender: SENDER === undefined ? 'node' : 'c', loadAverage: loadavg()[0].toFixed(1) }));
