#!/usr/bin/env node
// The benchmark suite: metrics-distributor against etsy statsd and null Node receivers, same run,
// same machine. Every figure in the table is a ratio against a baseline measured moments before.
//
//   node run.mjs [--sustained-seconds N] [--sustained-rate LINES_PER_S] [--only 1,3,8]
//   (or BENCH_SUSTAINED_SECONDS, BENCH_SUSTAINED_RATE, BENCH_ONLY)
//   BENCH_QUICK=1 node run.mjs      shorter everything (under a minute)
//
// Prints a table, writes results/latest.json and regenerates RESULTS.md. See README.md for what each
// scenario measures and how loss is counted.
import { Socket, connect } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BENCH_DIR,
  CLI_BIN as DEFAULT_CLI_BIN,
  CLI_DIST,
  ETSY_MAIN,
  FASTIFY_FROM,
  buildSender,
  cleanEnv,
  cpuSeconds,
  freePort,
  machine,
  memBytes,
  now,
  rcvbufDelta,
  runSender,
  sleep,
  spawnTracked,
  stopTracked,
  tcpSockets,
  udpSnmp,
  udpSockets,
  waitFor,
  within,
  writePayload,
} from './harness.mjs';

// ---------------------------------------------------------------------------------------------
// Options

const QUICK = process.env.BENCH_QUICK === '1';
const argv = process.argv.slice(2);
function flag(name, fallback) {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  return v;
}
// Each option also has a BENCH_* variable, for `pnpm bench`, which cannot pass flags through turbo.
const env = process.env;
const SUSTAINED_SECONDS = Number(flag('--sustained-seconds', env.BENCH_SUSTAINED_SECONDS ?? (QUICK ? 5 : 60)));
const SUSTAINED_RATE = Number(flag('--sustained-rate', env.BENCH_SUSTAINED_RATE ?? 1_000_000));
const ONLY = flag('--only', env.BENCH_ONLY)?.split(',').map((s) => s.trim());
if (!(SUSTAINED_SECONDS > 0) || !(SUSTAINED_RATE > 0)) throw new Error('--sustained-seconds and --sustained-rate must be positive numbers');

/** Sizes per scenario: full run (about 4 minutes on 2 cores) and BENCH_QUICK=1 (under a minute). */
const SIZE = QUICK
  ? { repeats: 2, s1Packets: 1_200_000, s2Packets: 500_000, s3Packets: 800_000, etsySustainedMax: 2, s5Lines: 20_000_000, s5MaxSeconds: 2, s6Requests: 30_000, s6MaxSeconds: 2, s7Interval: 2, s7Windows: 2, s8Contexts: 100_000, s8HeavySamples: 1_000_000, histInstances: 8 }
  : { repeats: 4, s1Packets: 4_000_000, s2Packets: 1_500_000, s3Packets: 1_500_000, etsySustainedMax: 15, s5Lines: 80_000_000, s5MaxSeconds: 8, s6Requests: 100_000, s6MaxSeconds: 8, s7Interval: 5, s7Windows: 3, s8Contexts: 100_000, s8HeavySamples: 1_000_000, histInstances: 16 };

if (process.env.BENCH_REPEATS !== undefined) SIZE.repeats = Math.max(1, Number(process.env.BENCH_REPEATS));

const LPP = 20;
const UDP_RECV_BUFFER = 33_554_432;
const OUR_BASE = [
  '--statsd-udp', '127.0.0.1:0',
  '--statsd-tcp', 'off',
  '--http', 'off',
  '--flush-interval', '1s',
  '--self-metrics', 'false',
  '--statsd-udp-recv-buffer-bytes', String(UDP_RECV_BUFFER),
  '--hostname', 'bench',
  // Extra server flags for every scenario, e.g. BENCH_SERVER_ARGS="--workers 2".
  ...(process.env.BENCH_SERVER_ARGS ?? '').split(/\s+/).filter(Boolean),
];

/** The server under test; BENCH_CLI points at another entry script (e.g. to test the harness itself). */
const CLI_BIN = process.env.BENCH_CLI ?? DEFAULT_CLI_BIN;

const TMP = mkdtempSync(join(tmpdir(), 'md-bench-'));
const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);
let SENDER;

// ---------------------------------------------------------------------------------------------
// Formatting

function si(x) {
  if (!Number.isFinite(x)) return 'n/a';
  if (Math.abs(x) >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (Math.abs(x) >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(x % 1 === 0 ? 0 : 1);
}
const mib = (b) => (Number.isFinite(b) ? `${(b / 1048576).toFixed(1)} MiB` : 'n/a');
const kib = (b) => (Number.isFinite(b) ? `${(b / 1024).toFixed(1)} KiB` : 'n/a');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);
const fmtRatio = (r) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '—');
const pct = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(x < 0.001 && x > 0 ? 4 : 2)}%` : 'n/a');
const best = (runs, key) => runs.reduce((a, b) => (b[key] > a[key] ? b : a));
/** A blast figure; "≥" when the sender was the bottleneck, so the receiver's ceiling is higher. */
const blastFig = (run, key, unit) => `${run.senderBound ? '≥ ' : ''}${si(run[key])} ${unit}${run.senderBound ? ' (sender-bound)' : ''}`;

// ---------------------------------------------------------------------------------------------
// Payloads. Lines of one kind have equal width, so the GSO sender pads (almost) nothing.

function counterLines(prefix, names) {
  const w = String(names - 1).length;
  return Array.from({ length: names }, (_, i) => `${prefix}.${String(i).padStart(w, '0')}:1|c`);
}

/** Composition of every 20-line mixed packet: c×4, g×4, ms×3 (@0.5), h×3, s×3, d×3. */
const MIX = ['c', 'g', 'ms', 'h', 's', 'd', 'c', 'g', 'ms', 'h', 's', 'd', 'c', 'g', 'ms', 'h', 's', 'd', 'c', 'g'];
const MIX_PER_PACKET = { c: 4, g: 4, ms: 3, h: 3, s: 3, d: 3 };

/**
 * Mixed DogStatsD lines, each with 2 tags. Context k (of `contexts`, a multiple of 20) always has type
 * MIX[k % 20], so every packet the sender builds from 20 consecutive lines has the composition above.
 * `cycles` repeats the contexts with other values and set members.
 */
function mixedLines(prefix, contexts, cycles) {
  if (contexts % LPP !== 0) throw new Error('contexts must be a multiple of 20');
  const w = String(contexts - 1).length;
  const out = [];
  for (let j = 0; j < contexts * cycles; j++) {
    const k = j % contexts;
    const r = Math.floor(j / contexts);
    const t = MIX[k % LPP];
    const v3 = (m) => String(100 + ((j * m) % 900));
    let value;
    switch (t) {
      case 'c':
        value = '1|c';
        break;
      case 'g':
        value = `${v3(3)}|g`;
        break;
      case 'ms':
        value = `${v3(7)}|ms|@0.5`;
        break;
      case 'h':
        value = `${v3(13)}|h`;
        break;
      case 's':
        value = `m${String((k * 31 + r) % 1000).padStart(3, '0')}|s`;
        break;
      default:
        value = `${v3(17)}|d`;
    }
    out.push(`${prefix}.${t}.${String(k).padStart(w, '0')}:${value}|#env:bench,shard:${k % 8}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Counting what comes out of a sink

/** Counter totals (rate × interval) for metrics under `prefix` in our console-sink output. */
function counterTally(prefix) {
  let total = 0;
  return {
    onSeries(o) {
      if (typeof o.metric !== 'string' || !o.metric.startsWith(prefix)) return;
      if (o.type === 'rate') total += o.value * o.interval;
      else if (o.type === 'count') total += o.value;
    },
    result(lpp) {
      const lines = Math.round(total);
      return { lines, packets: lines / lpp };
    },
  };
}

/**
 * Mixed traffic: every received packet carries 4 `c` lines of value 1, so packets = Σc / 4 and
 * lines = packets × 20. Checked against the histogram `.count` totals (h: 3 per packet; ms@0.5: 3
 * lines of weight 2) and the distributions' `count` (3 per packet).
 */
function mixedTally(prefix) {
  const sums = { c: 0, h: 0, ms: 0, d: 0 };
  const p = `${prefix}.`;
  return {
    onSeries(o) {
      const m = o.metric;
      if (typeof m !== 'string' || !m.startsWith(p)) return;
      const t = m.slice(p.length, m.indexOf('.', p.length));
      if (t === 'c' && (o.type === 'rate' || o.type === 'count')) sums.c += o.type === 'rate' ? o.value * o.interval : o.value;
      else if ((t === 'h' || t === 'ms') && m.endsWith('.count')) sums[t] += o.type === 'rate' ? o.value * o.interval : o.value;
      else if (t === 'd' && o.type === 'distribution' && typeof o.count === 'number') sums.d += o.count;
    },
    result() {
      const packets = Math.round(sums.c) / MIX_PER_PACKET.c;
      const checks = { fromH: Math.round(sums.h) / MIX_PER_PACKET.h, fromMs: Math.round(sums.ms) / (MIX_PER_PACKET.ms * 2), fromD: Math.round(sums.d) / MIX_PER_PACKET.d };
      const maxDev = Math.max(...Object.values(checks).map((x) => Math.abs(x - packets)));
      return { packets, lines: packets * LPP, checks, consistent: maxDev <= 1 };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Servers

/** Starts our CLI. Resolves { ok, h, pid, listeners } or { ok: false, code, message } (e.g. exit 2 on an unknown flag). */
async function startOurs(extra, onSeries, { env: extraEnv } = {}) {
  const prof = env.BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', env.BENCH_CPU_PROF];
  const h = spawnTracked(process.execPath, [...prof, CLI_BIN, ...OUR_BASE, ...extra], {
    env: cleanEnv(extraEnv),
    onLine: (l) => {
      if (l.charCodeAt(0) !== 123) return;
      let o;
      try {
        o = JSON.parse(l);
      } catch {
        return;
      }
      onSeries?.(o);
    },
  });
  const listeners = await h.until(() => {
    for (const l of h.stderr().split('\n')) {
      if (!l.includes('metrics-distributor started.')) continue;
      try {
        return JSON.parse(l).listeners;
      } catch {
        return undefined;
      }
    }
    return undefined;
  }, 20_000);
  if (listeners === undefined) {
    const ex = (await within(h.exited, 3000)) ?? (await stopTracked(h, { timeoutMs: 3000 }));
    const lines = h.stderr().trim().split('\n').filter(Boolean);
    return { ok: false, code: ex.code, message: (lines.find((l) => l.startsWith('metrics-distributor:')) ?? lines.at(-1) ?? '').slice(0, 300) };
  }
  const portOf = (scheme) => {
    const l = listeners.find((x) => x.startsWith(`${scheme}://`));
    return l === undefined ? undefined : Number(l.slice(l.lastIndexOf(':') + 1));
  };
  return { ok: true, h, pid: h.pid, listeners, portOf, port: portOf('udp') };
}

/** Starts etsy statsd with the bench backend. Resolves { h, pid, port, flushes }. */
async function startEtsy({ prefix, timerPrefix, flushInterval = 1000 }) {
  const port = await freePort('udp');
  const mgmt = await freePort('tcp');
  const cfg = join(TMP, `etsy-${port}.js`);
  const conf = {
    port,
    address: '127.0.0.1',
    mgmt_port: mgmt,
    mgmt_address: '127.0.0.1',
    flushInterval,
    deleteIdleStats: true,
    automaticConfigReload: false,
    backends: [join(BENCH_DIR, 'etsy-backend.cjs')],
    benchBackend: { prefix, timerPrefix: timerPrefix ?? prefix },
  };
  writeFileSync(cfg, JSON.stringify(conf, null, 2));
  const flushes = [];
  const h = spawnTracked(process.execPath, [ETSY_MAIN, cfg], {
    cwd: join(BENCH_DIR, 'node_modules/statsd'),
    onLine: (l) => {
      if (l.charCodeAt(0) === 123) flushes.push(JSON.parse(l));
    },
  });
  const up = await waitFor(() => udpSockets().has(port) || h.exitInfo() !== undefined, 15_000, 20);
  if (up === undefined || h.exitInfo() !== undefined) throw new Error(`etsy statsd did not start: ${h.stderr().slice(-500)}`);
  // The backend loads right after the bind; give it a moment.
  await sleep(200);
  return { h, pid: h.pid, port, flushes };
}

/** Starts a null receiver (udp or tcp). Resolves { h, pid, port, result() } where result() stops it and returns its counts. */
async function startNull(mode) {
  const lines = [];
  const h = spawnTracked(process.execPath, [join(BENCH_DIR, 'null-receiver.mjs'), mode, String(UDP_RECV_BUFFER)], { onLine: (l) => lines.push(JSON.parse(l)) });
  const first = await h.until(() => lines.find((l) => l.listening !== undefined), 10_000);
  if (first === undefined) throw new Error(`null receiver did not start: ${h.stderr()}`);
  return {
    h,
    pid: h.pid,
    port: first.listening,
    recvBufferBytes: first.recvBufferBytes,
    /** Counts so far, without stopping. */
    async snapshot() {
      const n = lines.length;
      h.proc.kill('SIGUSR1');
      return (await h.until(() => lines.slice(n).find((l) => l.final === false), 5000)) ?? { datagrams: NaN, bytes: NaN };
    },
    async result() {
      await stopTracked(h, { timeoutMs: 5000 });
      return lines.find((l) => l.final === true) ?? { datagrams: NaN, bytes: NaN };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// UDP measurement

/**
 * Sends a load to a receiver and waits until its socket's receive queue is empty (all that the kernel
 * accepted has been read). `seconds` = the sender's own run time + the drain after it exited.
 */
async function udpLoad(target, { payload, lpp, packets, rate = 0, maxSeconds = 120 }) {
  const s0 = udpSnmp();
  const c0 = cpuSeconds(target.pid);
  const d0 = udpSockets().get(target.port)?.drops ?? 0;
  let maxRx = 0;
  const mon = setInterval(() => {
    const r = udpSockets().get(target.port);
    if (r !== undefined && r.rxQueue > maxRx) maxRx = r.rxQueue;
  }, 50);
  let sent;
  try {
    sent = await runSender(SENDER, { port: target.port, payload, lpp, packets, rate, maxSeconds });
  } finally {
    clearInterval(mon);
  }
  const drainedAt = await waitFor(() => {
    const r = udpSockets().get(target.port);
    return r === undefined || r.rxQueue === 0 ? now() : undefined;
  }, 30_000, 5);
  const drainMs = (drainedAt ?? now()) - sent.exitAt;
  const d1 = udpSockets().get(target.port)?.drops ?? d0;
  const s1 = udpSnmp();
  return {
    sender: sent,
    seconds: sent.seconds + drainMs / 1000,
    drainMs,
    drainTimedOut: drainedAt === undefined,
    kernelRcvbufErrors: rcvbufDelta(s0, s1),
    socketDrops: d1 - d0,
    serverCpuSeconds: cpuSeconds(target.pid) - c0,
    maxRxQueueBytes: maxRx,
  };
}

/**
 * Warm-up before a measured blast, so that no receiver is measured while its JIT is still cold:
 * 0.4 s at 1M lines/s of the same kind of lines under another prefix (not counted), then drain.
 */
async function warmUp(target, load) {
  if (load.warm === undefined) return;
  await runSender(SENDER, { port: target.port, payload: load.warm, lpp: load.lpp, packets: Math.round(20_000 * (LPP / load.lpp) / 10), rate: Math.round(50_000 * (LPP / load.lpp) / 10), maxSeconds: 10 });
  await waitFor(() => (udpSockets().get(target.port)?.rxQueue ?? 0) === 0 || undefined, 10_000, 5);
  await sleep(100);
}

/** Derived figures of one UDP run. */
function rates(run, received) {
  const sentLines = run.sender.lines;
  return {
    ...run,
    ...received,
    linesPerSec: received.lines / run.seconds,
    packetsPerSec: received.packets / run.seconds,
    offeredLinesPerSec: sentLines / run.sender.seconds,
    offeredPacketsPerSec: run.sender.packets / run.sender.seconds,
    lostLines: sentLines - received.lines,
    // Sent lines neither flushed nor dropped by the kernel at the socket: loss inside the receiver.
    unaccountedLines: sentLines - received.lines - run.socketDrops * run.sender.lines / Math.max(1, run.sender.packets),
    serverCpuBusy: run.serverCpuSeconds / run.seconds,
    // The receiver took (nearly) all that was offered: the sender, not the receiver, set the pace.
    senderBound: received.lines / run.seconds >= 0.9 * (sentLines / run.sender.seconds),
    receivedFraction: received.lines / sentLines,
    linesPerCpuSecond: received.lines / run.serverCpuSeconds,
  };
}

async function oursUdp(load, tally, extra = []) {
  const srv = await startOurs(extra, tally.onSeries);
  if (!srv.ok) throw new Error(`metrics-distributor did not start (exit ${srv.code}): ${srv.message}`);
  await warmUp(srv, load);
  const run = await udpLoad({ pid: srv.pid, port: srv.port }, load);
  const ex = await stopTracked(srv.h);
  if (ex.code !== 0) log(`warning: metrics-distributor exited ${ex.code}${ex.killed ? ' (killed)' : ''}`);
  return rates(run, tally.result(load.lpp));
}

async function etsyUdp(load, { prefix, timerPrefix, mixed = false }) {
  const srv = await startEtsy({ prefix, timerPrefix });
  await warmUp(srv, load);
  const run = await udpLoad({ pid: srv.pid, port: srv.port }, load);
  await stopTracked(srv.h);
  const counters = Math.round(srv.flushes.reduce((a, f) => a + f.counters, 0));
  const timerCount = Math.round(srv.flushes.reduce((a, f) => a + f.timerCount, 0));
  let received;
  if (mixed) {
    const packets = counters / MIX_PER_PACKET.c;
    received = { packets, lines: packets * LPP, checks: { fromMs: timerCount / (MIX_PER_PACKET.ms * 2) }, consistent: Math.abs(timerCount / (MIX_PER_PACKET.ms * 2) - packets) <= 1 };
  } else {
    received = { lines: counters, packets: counters / load.lpp };
  }
  return rates(run, { ...received, flushes: srv.flushes.length, etsyBadLines: srv.flushes.reduce((a, f) => a + f.bad, 0) });
}

async function nullUdp(load) {
  const srv = await startNull('udp');
  await warmUp(srv, load);
  const w = load.warm === undefined ? { datagrams: 0, bytes: 0 } : await srv.snapshot();
  const run = await udpLoad({ pid: srv.pid, port: srv.port }, load);
  const r = await srv.result();
  const datagrams = r.datagrams - w.datagrams;
  return rates(run, { packets: datagrams, lines: datagrams * load.lpp, bytes: r.bytes - w.bytes });
}

/** Strips bulky fields for the JSON file. */
const slim = (r) => (r === undefined ? undefined : { ...r, sender: r.sender === undefined ? undefined : { ...r.sender, exitAt: undefined } });

// ---------------------------------------------------------------------------------------------
// Scenarios. Each returns { rows, details }.

async function scenario1() {
  const payload = writePayload(TMP, 's1.txt', counterLines('bench.s1', 1000));
  const warm = writePayload(TMP, 's1w.txt', counterLines('bench.warm', 1000));
  const load = { payload, warm, lpp: LPP, packets: SIZE.s1Packets, rate: 0 };
  const ours = [];
  const etsy = [];
  for (let i = 0; i < SIZE.repeats; i++) {
    ours.push(await oursUdp(load, counterTally('bench.s1.')));
    log(`  ours: ${si(ours.at(-1).linesPerSec)} lines/s`);
    etsy.push(await etsyUdp(load, { prefix: 'bench.s1.' }));
    log(`  etsy statsd: ${si(etsy.at(-1).linesPerSec)} lines/s`);
  }
  const nul = await nullUdp(load);
  log(`  null dgram receiver: ${si(nul.linesPerSec)} lines/s`);
  const o = best(ours, 'linesPerSec');
  const e = best(etsy, 'linesPerSec');
  const r = ratio(o.linesPerSec, e.linesPerSec);
  return {
    rows: [{ id: '1', name: 'UDP, 20 counter lines/packet, 1,000 names, blast', ours: blastFig(o, 'linesPerSec', 'lines/s'), baseline: `etsy statsd ${blastFig(e, 'linesPerSec', 'lines/s')}`, ratio: fmtRatio(r), target: '≥ 4× etsy statsd', met: r >= 4 }],
    details: { ours: ours.map(slim), etsy: etsy.map(slim), nullReceiver: slim(nul), oursVsNull: ratio(o.linesPerSec, nul.linesPerSec) },
  };
}

/** Scenario 1's load through `--workers N` (BENCH_WORKERS, default 2) against `--workers 1`, alternating, best of each. */
async function scenarioWorkers() {
  const W = Number(env.BENCH_WORKERS ?? '2');
  const name = `UDP, scenario 1 load, --workers ${W} vs --workers 1`;
  const target = 'reported (no target)';
  const payload = writePayload(TMP, 's9.txt', counterLines('bench.s9', 1000));
  const warm = writePayload(TMP, 's9w.txt', counterLines('bench.warm', 1000));
  const load = { payload, warm, lpp: LPP, packets: SIZE.s1Packets, rate: 0 };
  const one = [];
  const two = [];
  for (let i = 0; i < SIZE.repeats; i++) {
    one.push(await oursUdp(load, counterTally('bench.s9.'), ['--workers', '1']));
    log(`  --workers 1: ${si(one.at(-1).linesPerSec)} lines/s`);
    two.push(await oursUdp(load, counterTally('bench.s9.'), ['--workers', String(W)]));
    log(`  --workers ${W}: ${si(two.at(-1).linesPerSec)} lines/s`);
  }
  const o1 = best(one, 'linesPerSec');
  const o2 = best(two, 'linesPerSec');
  const r = ratio(o2.linesPerSec, o1.linesPerSec);
  return {
    rows: [{ id: '9', name, ours: `--workers ${W}: ${blastFig(o2, 'linesPerSec', 'lines/s')}`, baseline: `--workers 1: ${blastFig(o1, 'linesPerSec', 'lines/s')}`, ratio: fmtRatio(r), target, met: null }],
    details: { workers: W, workers1: one.map(slim), workers2: two.map(slim) },
  };
}

async function scenario2() {
  const payload = writePayload(TMP, 's2.txt', mixedLines('bench.s2', 1000, 20));
  const warm = writePayload(TMP, 's2w.txt', mixedLines('bench.warm', 1000, 20));
  const load = { payload, warm, lpp: LPP, packets: SIZE.s2Packets, rate: 0 };
  const ours = [];
  const etsy = [];
  for (let i = 0; i < SIZE.repeats; i++) {
    ours.push(await oursUdp(load, mixedTally('bench.s2')));
    log(`  ours: ${si(ours.at(-1).linesPerSec)} lines/s (checks ${JSON.stringify(ours.at(-1).checks)} vs ${ours.at(-1).packets} packets)`);
    etsy.push(await etsyUdp(load, { prefix: 'bench.s2.c.', timerPrefix: 'bench.s2.ms.', mixed: true }));
    log(`  etsy statsd: ${si(etsy.at(-1).linesPerSec)} lines/s`);
  }
  const nul = await nullUdp(load);
  log(`  null dgram receiver: ${si(nul.linesPerSec)} lines/s`);
  const o = best(ours, 'linesPerSec');
  const e = best(etsy, 'linesPerSec');
  return {
    rows: [{ id: '2', name: 'UDP, mixed DogStatsD (c g ms@0.5 h s d, 2 tags), 20 lines/packet, blast', ours: blastFig(o, 'linesPerSec', 'lines/s'), baseline: `etsy statsd ${blastFig(e, 'linesPerSec', 'lines/s')}`, ratio: fmtRatio(ratio(o.linesPerSec, e.linesPerSec)), target: '≥ 1.5M lines/s', met: o.linesPerSec >= 1.5e6 && o.consistent }],
    details: { ours: ours.map(slim), etsy: etsy.map(slim), nullReceiver: slim(nul), oursVsNull: ratio(o.linesPerSec, nul.linesPerSec) },
  };
}

async function scenario3() {
  const payload = writePayload(TMP, 's3.txt', counterLines('bench.s3', 1000));
  const warm = writePayload(TMP, 's3w.txt', counterLines('bench.warm', 1000));
  const load = { payload, warm, lpp: 1, packets: SIZE.s3Packets, rate: 0 };
  const ours = [];
  const nul = [];
  for (let i = 0; i < SIZE.repeats; i++) {
    ours.push(await oursUdp(load, counterTally('bench.s3.')));
    log(`  ours: ${si(ours.at(-1).packetsPerSec)} packets/s`);
    nul.push(await nullUdp(load));
    log(`  null dgram receiver: ${si(nul.at(-1).packetsPerSec)} packets/s`);
  }
  const o = best(ours, 'packetsPerSec');
  const n = best(nul, 'packetsPerSec');
  const r = ratio(o.packetsPerSec, n.packetsPerSec);
  return {
    rows: [{ id: '3', name: 'UDP, 1 line/packet, blast', ours: blastFig(o, 'packetsPerSec', 'packets/s'), baseline: `null dgram ${blastFig(n, 'packetsPerSec', 'packets/s')}`, ratio: fmtRatio(r), target: '≥ 0.9× null receiver', met: r >= 0.9 }],
    details: { ours: ours.map(slim), nullReceiver: nul.map(slim) },
  };
}

async function scenario4() {
  const payload = writePayload(TMP, 's4.txt', counterLines('bench.s4', 1000));
  const pps = SUSTAINED_RATE / LPP;
  const load = { payload, lpp: LPP, packets: Math.round(pps * SUSTAINED_SECONDS), rate: pps, maxSeconds: SUSTAINED_SECONDS * 1.5 + 10 };
  const o = await oursUdp(load, counterTally('bench.s4.'));
  log(`  ours: sent ${si(o.sender.lines)} lines at ${si(o.offeredLinesPerSec)}/s, lost ${o.lostLines}, kernel drops ${o.socketDrops}`);
  const etsySeconds = Math.min(SUSTAINED_SECONDS, SIZE.etsySustainedMax);
  const e = await etsyUdp({ ...load, packets: Math.round(pps * etsySeconds), maxSeconds: etsySeconds * 1.5 + 10 }, { prefix: 'bench.s4.' });
  log(`  etsy statsd (${etsySeconds} s): lost ${e.lostLines} of ${e.sender.lines} (${pct(1 - e.receivedFraction)})`);
  const rateOk = o.offeredLinesPerSec >= SUSTAINED_RATE * 0.98;
  return {
    rows: [{
      id: '4',
      name: `UDP sustained ${si(SUSTAINED_RATE)} lines/s for ${SUSTAINED_SECONDS} s`,
      ours: `lost ${o.lostLines} of ${si(o.sender.lines)} (${pct(1 - o.receivedFraction)})`,
      baseline: `etsy statsd lost ${pct(1 - e.receivedFraction)} (${etsySeconds} s)`,
      ratio: `${fmtRatio(ratio(o.receivedFraction, e.receivedFraction))} delivered`,
      target: '0 lost',
      met: o.lostLines === 0 && rateOk,
    }],
    details: { ours: slim(o), etsy: slim(e), senderReachedRate: rateOk, etsySeconds },
  };
}

/** A skipped row with the reason. */
function skipped(id, name, target, why) {
  log(`  skipped: ${why}`);
  return { rows: [{ id, name, ours: 'skipped: not available', baseline: '—', ratio: '—', target, met: null, note: why }], details: { skipped: why } };
}

/** Starts our CLI with extra flags that may not exist yet; returns the server or a skip reason. */
async function probeFeature(extra, scheme, onSeries, feature) {
  const srv = await startOurs(extra, onSeries);
  if (!srv.ok) {
    return { why: srv.code === 2 ? `the CLI rejects ${feature} (exit 2: ${srv.message})` : `the CLI did not start (exit ${srv.code}: ${srv.message})` };
  }
  if (scheme !== undefined && srv.portOf(scheme) === undefined) {
    await stopTracked(srv.h);
    return { why: `${feature} is accepted, but no ${scheme}:// listener started (listeners: ${srv.listeners.join(', ')}): not wired into the CLI yet` };
  }
  return { srv };
}

/** Writes `chunk` `times` times on each of `connections` TCP connections, then waits until every byte is read by the server. */
async function tcpLoad(port, { connections, chunk, times, maxSeconds }) {
  const t0 = now();
  const deadline = t0 + maxSeconds * 1000;
  const socks = [];
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const s = connect({ host: '127.0.0.1', port });
      socks.push(s);
      s.on('error', () => undefined);
      await new Promise((res, rej) => {
        s.once('connect', res);
        s.once('error', rej);
      });
      for (let i = 0; i < times && now() < deadline; i++) {
        if (!s.write(chunk)) await new Promise((res) => s.once('drain', res));
      }
      await new Promise((res) => s.end(res));
    }),
  );
  const written = socks.reduce((a, s) => a + s.bytesWritten, 0);
  const doneAt = await waitFor(() => {
    const rows = tcpSockets().filter((r) => r.localPort === port || r.remotePort === port);
    return rows.every((r) => r.rxQueue === 0 && r.txQueue === 0) ? now() : undefined;
  }, 60_000, 5);
  for (const s of socks) s.destroy();
  return { seconds: ((doneAt ?? now()) - t0) / 1000, bytes: written, timedOut: doneAt === undefined };
}

async function scenario5() {
  const name = 'TCP, 4 connections, counter lines';
  const target = '≥ 2M lines/s';
  const tally = counterTally('bench.s5.');
  const p = await probeFeature(['--statsd-tcp', '127.0.0.1:0'], 'tcp', tally.onSeries, '--statsd-tcp');
  if (p.srv === undefined) return skipped('5', name, target, p.why);
  const lines = counterLines('bench.s5', 1000);
  const block = `${lines.join('\n')}\n`;
  const reps = Math.max(1, Math.floor(65536 / Buffer.byteLength(block)));
  const chunk = Buffer.from(block.repeat(reps));
  const linesPerChunk = 1000 * reps;
  const connections = 4;
  const times = Math.ceil(SIZE.s5Lines / connections / linesPerChunk);
  const c0 = cpuSeconds(p.srv.pid);
  const run = await tcpLoad(p.srv.portOf('tcp'), { connections, chunk, times, maxSeconds: SIZE.s5MaxSeconds });
  const cpu = cpuSeconds(p.srv.pid) - c0;
  await stopTracked(p.srv.h);
  const sentLines = Math.round(run.bytes / chunk.length) * linesPerChunk;
  const got = tally.result(1).lines;
  const o = { ...run, sentLines, receivedLines: got, lostLines: sentLines - got, linesPerSec: got / run.seconds, serverCpuSeconds: cpu };
  log(`  ours: ${si(o.linesPerSec)} lines/s (lost ${o.lostLines})`);
  const nul = await startNull('tcp');
  const nrun = await tcpLoad(nul.port, { connections, chunk, times, maxSeconds: SIZE.s5MaxSeconds });
  const nres = await nul.result();
  const n = { ...nrun, receivedLines: (nres.bytes / chunk.length) * linesPerChunk, linesPerSec: ((nres.bytes / chunk.length) * linesPerChunk) / nrun.seconds };
  log(`  null net receiver: ${si(n.linesPerSec)} lines/s`);
  return {
    rows: [{ id: '5', name, ours: `${si(o.linesPerSec)} lines/s`, baseline: `null net ${si(n.linesPerSec)} lines/s`, ratio: fmtRatio(ratio(o.linesPerSec, n.linesPerSec)), target, met: o.linesPerSec >= 2e6 && o.lostLines === 0 }],
    details: { ours: o, nullReceiver: n },
  };
}

/** Logplex body of `frames` frames, half Heroku router lines, half l2met app lines. */
function logplexBody(frames) {
  const ts = new Date().toISOString().replace('Z', '000+00:00');
  const out = [];
  for (let i = 0; i < frames; i++) {
    const msg =
      i % 2 === 0
        ? `<158>1 ${ts} host heroku router - at=info method=GET path="/api/items/${i}" host=bench.herokuapp.com request_id=0b7c1f9e-4a4c-4d0e-9f0a-${String(i).padStart(12, '0')} fwd="10.0.0.${i % 250}" dyno=web.${1 + (i % 4)} connect=${i % 5}ms service=${10 + (i % 90)}ms status=${i % 10 === 0 ? 404 : 200} bytes=${900 + i} protocol=https`
        : `<190>1 ${ts} host app web.${1 + (i % 4)} - count#bench.s6.hits=1 sample#bench.s6.queue=${i % 50} measure#bench.s6.latency=${10 + (i % 90)}ms source=web.${1 + (i % 4)}`;
    out.push(`${Buffer.byteLength(msg)} ${msg}`);
  }
  return Buffer.from(out.join(''));
}

/**
 * Pipelined HTTP/1.1 load on raw sockets (cheap on the client side): `connections` keep-alive
 * connections with up to `depth` requests in flight each, until `total` responses or `maxSeconds`.
 */
async function httpLoad(port, { makeHead, body, total, connections, depth, maxSeconds }) {
  const t0 = now();
  const deadline = t0 + maxSeconds * 1000;
  let issued = 0;
  let done = 0;
  let failed = 0;
  let reconnects = 0;
  const statuses = {};
  await new Promise((finishAll) => {
    let open = 0;
    const maybeFinish = () => {
      if (open === 0) finishAll();
    };
    const start = () => {
      open++;
      const s = new Socket();
      let inflight = 0;
      let buf = Buffer.alloc(0);
      let closed = false;
      const pump = () => {
        while (!closed && inflight < depth && issued < total && now() < deadline) {
          issued++;
          inflight++;
          s.write(makeHead(issued, body.length));
          s.write(body);
        }
        if (inflight === 0 && (issued >= total || now() >= deadline)) s.end();
      };
      s.on('data', (d) => {
        buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
        for (;;) {
          const he = buf.indexOf('\r\n\r\n');
          if (he < 0) break;
          const head = buf.subarray(0, he).toString('latin1');
          const status = Number(head.slice(9, 12));
          const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          const len = cl === null ? 0 : Number(cl[1]);
          if (buf.length < he + 4 + len) break;
          buf = buf.subarray(he + 4 + len);
          statuses[status] = (statuses[status] ?? 0) + 1;
          done++;
          inflight--;
        }
        pump();
      });
      s.on('error', () => undefined);
      s.on('close', () => {
        closed = true;
        failed += inflight;
        open--;
        if ((issued < total && now() < deadline) && reconnects < 100) {
          reconnects++;
          start();
        }
        maybeFinish();
      });
      s.connect(port, '127.0.0.1', () => {
        s.setNoDelay(true);
        pump();
      });
    };
    for (let i = 0; i < connections; i++) start();
  });
  return { seconds: (now() - t0) / 1000, issued, done, failed, reconnects, statuses };
}

async function scenario6() {
  const name = 'HTTP logplex, 100 frames/body, Basic auth';
  const target = '≥ 0.5× empty fastify route';
  let heroku = 0;
  let hits = 0;
  const onSeries = (o) => {
    if (o.metric === 'heroku.router.request' && o.type === 'rate') heroku += o.value * o.interval;
    else if (o.metric === 'bench.s6.hits' && o.type === 'rate') hits += o.value * o.interval;
  };
  const p = await probeFeature(['--http', '127.0.0.1:0', '--http-auth', 'bench:secret'], 'http', onSeries, '--http with --http-auth');
  if (p.srv === undefined) return skipped('6', name, target, p.why);
  const body = logplexBody(100);
  const auth = Buffer.from('bench:secret').toString('base64');
  const makeHead = (i, len) =>
    `POST /logs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic ${auth}\r\nContent-Type: application/logplex-1\r\nLogplex-Msg-Count: 100\r\nLogplex-Frame-Id: ${i.toString(16).padStart(32, '0')}\r\nLogplex-Drain-Token: d.bench\r\nContent-Length: ${len}\r\n\r\n`;
  const load = { makeHead, body, total: SIZE.s6Requests, connections: 4, depth: 2, maxSeconds: SIZE.s6MaxSeconds };
  const c0 = cpuSeconds(p.srv.pid);
  const run = await httpLoad(p.srv.portOf('http'), load);
  const cpu = cpuSeconds(p.srv.pid) - c0;
  await stopTracked(p.srv.h);
  const received = Math.round(heroku + hits);
  const o = { ...run, sentLogLines: run.done * 100, receivedLogLines: received, logLinesPerSec: received / run.seconds, serverCpuSeconds: cpu };
  log(`  ours: ${si(o.logLinesPerSec)} log lines/s (${JSON.stringify(run.statuses)}, received ${received} of ${run.issued * 100})`);
  if (!existsSync(FASTIFY_FROM)) {
    return { rows: [{ id: '6', name, ours: `${si(o.logLinesPerSec)} log lines/s`, baseline: 'skipped: fastify not found', ratio: '—', target, met: null }], details: { ours: o } };
  }
  const lines = [];
  const fh = spawnTracked(process.execPath, [join(BENCH_DIR, 'fastify-null.mjs'), FASTIFY_FROM], { onLine: (l) => lines.push(JSON.parse(l)) });
  const first = await fh.until(() => lines.find((l) => l.listening !== undefined), 15_000);
  if (first === undefined) throw new Error(`fastify baseline did not start: ${fh.stderr()}`);
  const nrun = await httpLoad(first.listening, load);
  await stopTracked(fh);
  const n = { ...nrun, logLinesPerSec: (nrun.statuses[200] ?? 0) * 100 / nrun.seconds, fastify: first.fastify };
  log(`  empty fastify route: ${si(n.logLinesPerSec)} log lines/s`);
  const r = ratio(o.logLinesPerSec, n.logLinesPerSec);
  return {
    rows: [{ id: '6', name, ours: `${si(o.logLinesPerSec)} log lines/s`, baseline: `empty fastify route ${si(n.logLinesPerSec)} log lines/s`, ratio: fmtRatio(r), target, met: r >= 0.5 && (run.statuses[200] ?? 0) === run.done }],
    details: { ours: o, fastify: n },
  };
}

/** One keep-alive connection sending GET /healthz every `everyMs`; records each round trip (a proxy for event-loop delay). */
function healthProbe(port, everyMs = 10) {
  const samples = [];
  let stop = false;
  const s = connect({ host: '127.0.0.1', port });
  s.setNoDelay(true);
  s.on('error', () => undefined);
  let sentAt = 0;
  let buf = '';
  const send = () => {
    if (stop) return;
    sentAt = now();
    s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  };
  s.on('data', (d) => {
    buf += d.toString('latin1');
    const he = buf.indexOf('\r\n\r\n');
    if (he < 0) return;
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(buf.slice(0, he));
    const len = cl === null ? 0 : Number(cl[1]);
    if (buf.length < he + 4 + len) return;
    buf = buf.slice(he + 4 + len);
    const t = now();
    samples.push({ at: performance.timeOrigin + sentAt, ms: t - sentAt });
    setTimeout(send, Math.max(0, everyMs - (t - sentAt)));
  });
  s.once('connect', send);
  return {
    samples,
    close() {
      stop = true;
      s.destroy();
    },
  };
}

async function scenario7() {
  const name = 'Flush under load: 200k contexts to a stand-in Datadog, 200k lines/s';
  const target = 'flush ≤ 2 s; loop delay ≤ 50 ms; 0 lost';
  const interval = SIZE.s7Interval;
  // The stand-in Datadog intake, in its own process.
  const ddLines = [];
  const dd = spawnTracked(process.execPath, [join(BENCH_DIR, 'fake-datadog.mjs'), 'bench.s7.c.'], { onLine: (l) => ddLines.push(JSON.parse(l)) });
  const ddUp = await dd.until(() => ddLines.find((l) => l.listening !== undefined), 10_000);
  if (ddUp === undefined) throw new Error(`stand-in Datadog did not start: ${dd.stderr()}`);
  const ddUrl = `http://127.0.0.1:${ddUp.listening}`;
  const base = ['--sink', 'datadog', '--datadog-api-key', 'bench-key', '--datadog-url', ddUrl, '--flush-interval', `${interval}s`, '--self-metrics', 'true', '--max-contexts', '300000'];
  // With the HTTP front-end, /healthz round trips show event-loop delay from outside.
  const feature = '--sink datadog with --datadog-api-key and --datadog-url';
  let p = await probeFeature([...base, '--http', '127.0.0.1:0'], undefined, undefined, feature);
  if (p.srv !== undefined && p.srv.portOf('http') === undefined) {
    await stopTracked(p.srv.h);
    p = { why: 'no http' };
  }
  if (p.srv === undefined) p = await probeFeature(base, undefined, undefined, feature);
  if (p.srv === undefined) {
    await stopTracked(dd);
    return skipped('7', name, target, p.why);
  }
  const srv = p.srv;
  const contexts = 200_000;
  const payload = writePayload(TMP, 's7.txt', mixedLines('bench.s7', contexts, 1));
  const pps = 200_000 / LPP;
  // Start just after a window boundary, so the load covers `s7Windows` whole windows plus a lead-in.
  const ms = Date.now();
  await sleep(interval * 1000 - (ms % (interval * 1000)) + 50);
  const seconds = interval * (SIZE.s7Windows + 1) - 0.3;
  const hp = srv.portOf('http');
  const probe = hp === undefined ? undefined : healthProbe(hp);
  const rxSamples = [];
  const mon = setInterval(() => {
    const r = udpSockets().get(srv.port);
    if (r !== undefined) rxSamples.push({ at: Date.now(), rx: r.rxQueue, drops: r.drops });
  }, 5);
  const tStart = Date.now();
  const d0 = udpSockets().get(srv.port)?.drops ?? 0;
  const s0 = udpSnmp();
  const sent = await runSender(SENDER, { port: srv.port, payload, lpp: LPP, packets: Math.round(pps * seconds), rate: pps, maxSeconds: seconds * 2 + 10 });
  await waitFor(() => (udpSockets().get(srv.port)?.rxQueue ?? 0) === 0 || undefined, 10_000, 5);
  clearInterval(mon);
  probe?.close();
  const socketDrops = (udpSockets().get(srv.port)?.drops ?? d0) - d0;
  const kernelDrops = rcvbufDelta(s0, udpSnmp());
  // Requests after this belong to the final partial window that SIGTERM flushes, not to a boundary.
  const stopAt = Date.now();
  const ex = await stopTracked(srv.h);
  await sleep(300);
  ddLines.length = 0;
  await stopTracked(dd, { timeoutMs: 60_000 });
  const summary = ddLines.find((l) => l.requests !== undefined);
  if (summary === undefined) throw new Error('stand-in Datadog gave no summary');
  // Flush duration per boundary: last request arriving within the window after it, minus the boundary.
  const boundaries = [];
  // The first window holds at least interval - 0.05 s of load, so every context (all are sent once a
  // second) is in it; the final partial window flushed at SIGTERM is not timed.
  for (let b = Math.ceil(tStart / 1000 / interval) * interval * 1000; b < tStart + seconds * 1000; b += interval * 1000) boundaries.push(b);
  const flushes = boundaries.map((b) => {
    const reqs = summary.requests.filter((r) => r.method === 'POST' && r.t >= b && r.t < Math.min(b + interval * 1000, stopAt));
    const last = reqs.length > 0 ? Math.max(...reqs.map((r) => r.t)) : undefined;
    const rx = rxSamples.filter((s) => s.at >= b - 100 && s.at < b + interval * 1000);
    const loop = probe?.samples.filter((s) => s.at >= b - 100 && s.at < b + interval * 1000) ?? [];
    return {
      boundary: new Date(b).toISOString(),
      requests: reqs.length,
      bytes: reqs.reduce((a, r) => a + r.bytes, 0),
      series: reqs.reduce((a, r) => a + r.series, 0),
      durationMs: last === undefined ? NaN : last - b,
      maxRxQueueBytes: Math.max(0, ...rx.map((s) => s.rx)),
      maxHealthzMs: loop.length > 0 ? Math.max(...loop.map((s) => s.ms)) : undefined,
    };
  });
  const flushMs = Math.max(...flushes.map((f) => f.durationMs));
  const selfValues = (metric) => Object.entries(summary.self).filter(([k]) => k.startsWith(`${metric}{`)).flatMap(([, v]) => v.map((x) => x.value));
  const selfFlush = selfValues('metrics_distributor.flush_duration_ms');
  // The server's own event-loop delay (perf_hooks, max per window, net of its 10 ms sampling period):
  // unlike a /healthz round trip it leaves out the probe's HTTP handling and the client's scheduling.
  const selfLoop = selfValues('metrics_distributor.event_loop_delay_max_ms');
  // Exact totals need the JSON series payloads; if none could be decoded (another encoding), only
  // the kernel's drops at the socket are known.
  const decoded = summary.counterSeries > 0;
  const receivedPackets = decoded ? summary.counterTotal / MIX_PER_PACKET.c : NaN;
  const lostLines = decoded ? sent.lines - receivedPackets * LPP : socketDrops * LPP;
  const healthzMs = probe === undefined ? undefined : Math.max(...probe.samples.map((s) => s.ms));
  const selfLoopMs = selfLoop.length > 0 ? Math.max(...selfLoop) : undefined;
  // Judged on the in-process figure when the server reports it; else on /healthz.
  const loopMs = selfLoopMs ?? healthzMs;
  const o = { sender: { ...sent, exitAt: undefined }, flushes, flushMs, selfFlushDurationMs: selfFlush, selfLoopDelayMaxMs: selfLoop, worstSelfLoopDelayMs: selfLoopMs, decodedSeries: decoded, counterTotal: summary.counterTotal, receivedLines: receivedPackets * LPP, lostLines, socketDrops, kernelDrops, worstHealthzMs: healthzMs, exit: ex, requests: summary.requests.length };
  log(`  flush ${flushMs.toFixed(0)} ms (per window ${flushes.map((f) => f.durationMs.toFixed(0)).join(', ')}), lost ${lostLines}, socket drops ${socketDrops}, loop delay worst ${selfLoopMs?.toFixed(1) ?? 'n/a'} ms in-process, /healthz worst ${healthzMs?.toFixed(1) ?? 'n/a'} ms`);
  const parts = [];
  if (selfLoopMs !== undefined) parts.push(`loop delay ${selfLoopMs.toFixed(0)} ms`);
  if (healthzMs !== undefined) parts.push(`worst /healthz ${healthzMs.toFixed(0)} ms`);
  const loopText = parts.length > 0 ? parts.join(', ') : 'loop delay not measured';
  return {
    rows: [{
      id: '7',
      name,
      ours: `flush ${flushMs.toFixed(0)} ms; ${loopText}; ${decoded ? `lost ${lostLines}` : `${lostLines} lines dropped by the kernel (payloads not decodable, exact totals unknown)`}`,
      baseline: `window ${interval} s`,
      ratio: `${fmtRatio(flushMs / (interval * 1000))} of window`,
      target,
      met: flushMs <= 2000 && lostLines === 0 && (loopMs === undefined ? null : loopMs <= 50),
    }],
    details: o,
  };
}

/** Wait between the last line and an RSS reading. */
const SETTLE_MS = 1500;

async function scenario8() {
  const rows = [];
  const details = {};
  // (a) RSS with 100,000 live contexts: mixed types, 2 tags, each context sent twice, one 1-hour window.
  const contexts = SIZE.s8Contexts;
  const payload = writePayload(TMP, 's8.txt', mixedLines('bench.s8', contexts, 2));
  const load = { payload, lpp: LPP, packets: (contexts * 2) / LPP, rate: 5000 };
  const seen = new Set();
  const srv = await startOurs(['--flush-interval', '1h'], (o) => {
    const m = /^bench\.s8\.(\w+)\.(\d+)/.exec(o.metric ?? '');
    if (m !== null) seen.add(`${m[1]}.${m[2]}`);
  });
  if (!srv.ok) throw new Error(`metrics-distributor did not start: ${srv.message}`);
  const idle = memBytes(srv.pid);
  const run = await udpLoad({ pid: srv.pid, port: srv.port }, load);
  await sleep(SETTLE_MS);
  const mem = memBytes(srv.pid);
  await stopTracked(srv.h, { timeoutMs: 30_000 });
  const ours = { idleRss: idle.rss, rss: mem.rss, hwm: mem.hwm, liveContexts: seen.size, socketDrops: run.socketDrops, bytesPerContext: (mem.rss - idle.rss) / contexts };
  log(`  ours: RSS ${mib(mem.rss)} with ${seen.size} contexts (idle ${mib(idle.rss)})`);
  const es = await startEtsy({ prefix: 'bench.s8.', flushInterval: 3_600_000 });
  const eIdle = memBytes(es.pid);
  const erun = await udpLoad({ pid: es.pid, port: es.port }, load);
  await sleep(SETTLE_MS);
  const emem = memBytes(es.pid);
  await stopTracked(es.h);
  const etsy = { idleRss: eIdle.rss, rss: emem.rss, hwm: emem.hwm, socketDrops: erun.socketDrops, bytesPerContext: (emem.rss - eIdle.rss) / contexts };
  log(`  etsy statsd: RSS ${mib(emem.rss)}`);
  rows.push({ id: '8a', name: `Memory: RSS with ${si(contexts)} live contexts (mixed, 2 tags)`, ours: `${mib(mem.rss)} (${si(seen.size)} contexts flushed)`, baseline: `etsy statsd ${mib(emem.rss)}`, ratio: fmtRatio(ratio(mem.rss, emem.rss)), target: '≤ 150 MB', met: mem.rss <= 150e6 && seen.size >= contexts });
  details.contexts = { ours, etsy };

  // (b) One heavy histogram: 1M samples in one window to one `h` context, as the RSS growth over a
  // control run that sends the same number of counter lines, and in-process with HistogramAgg.
  const n = SIZE.s8HeavySamples;
  const heavyLines = Array.from({ length: 1000 }, (_, i) => `bench.s8h.heavy:${String(100 + ((i * 7919) % 9900)).padStart(5, '0')}.${String(i % 10)}|h`);
  const ctlLines = Array.from({ length: 1000 }, (_, i) => `bench.s8h.ctl${String(i % 10)}:1|c`);
  const growth = async (lines, label) => {
    const file = writePayload(TMP, `s8-${label}.txt`, lines);
    let count = 0;
    const s = await startOurs(['--flush-interval', '1h'], (o) => {
      if (o.metric === 'bench.s8h.heavy.count') count += o.value * o.interval;
    });
    if (!s.ok) throw new Error(`metrics-distributor did not start: ${s.message}`);
    // Warm up: the context exists and its sketch is in use before the first reading.
    await udpLoad({ pid: s.pid, port: s.port }, { payload: file, lpp: LPP, packets: 5000 / LPP, rate: 5000 });
    await sleep(QUICK ? 500 : 1000);
    const m0 = memBytes(s.pid);
    const r = await udpLoad({ pid: s.pid, port: s.port }, { payload: file, lpp: LPP, packets: n / LPP, rate: 500_000 / LPP });
    await sleep(QUICK ? 500 : 1000);
    const m1 = memBytes(s.pid);
    await stopTracked(s.h);
    return { rssBefore: m0.rss, rssAfter: m1.rss, delta: m1.rss - m0.rss, count: Math.round(count), drops: r.socketDrops };
  };
  const heavy = await growth(heavyLines, 'heavy');
  // The control run only explains the RSS figure; the quick run leaves it out.
  const ctl = QUICK ? { delta: NaN, skipped: 'BENCH_QUICK' } : await growth(ctlLines, 'control');
  const rssPerHeavy = heavy.delta - ctl.delta;
  const hm = spawnTracked(process.execPath, ['--expose-gc', join(BENCH_DIR, 'hist-mem.mjs'), String(n), String(SIZE.histInstances)], { keepStdout: true });
  await hm.exited;
  const inproc = JSON.parse(hm.stdoutLines.find((l) => l.startsWith('{')) ?? '{}');
  const retained = inproc.retainedBytesPerInstance ?? NaN;
  log(`  heavy histogram: RSS growth ${kib(heavy.delta)} (control ${Number.isFinite(ctl.delta) ? kib(ctl.delta) : 'not run'}), in-process byteSize ${kib(inproc.byteSize)}, retained ${kib(retained)}`);
  rows.push({
    id: '8b',
    name: `Memory: one heavy histogram (${si(n)} samples, one window)`,
    ours: `${kib(retained)} retained (in-process, after GC)`,
    baseline: `HistogramAgg.byteSize() ${kib(inproc.byteSize)}`,
    ratio: fmtRatio(ratio(retained, inproc.byteSize)),
    target: '≤ 64 KiB',
    met: retained <= 65536 && inproc.byteSize <= 65536,
  });
  details.heavyHistogram = { server: heavy, control: ctl, rssPerHeavy, inProcess: inproc, retainedBytes: retained };
  return { rows, details };
}

// ---------------------------------------------------------------------------------------------
// Report

function table(rows) {
  const cols = [
    ['#', (r) => r.id],
    ['Scenario', (r) => r.name],
    ['Ours', (r) => r.ours],
    ['Baseline', (r) => r.baseline],
    ['Ratio', (r) => r.ratio],
    ['Target', (r) => r.target],
    ['Met', (r) => (r.met === true ? 'yes' : r.met === false ? 'no' : '—')],
  ];
  const cells = rows.map((r) => cols.map(([, f]) => String(f(r))));
  const widths = cols.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (vals) => vals.map((v, i) => v.padEnd(widths[i])).join('  ');
  return [line(cols.map(([h]) => h)), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

function markdownTable(rows) {
  const esc = (s) => String(s).replace(/\|/g, '\\|');
  const out = ['| # | Scenario | Ours | Baseline (same run) | Ratio | Target | Met |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) out.push(`| ${r.id} | ${esc(r.name)} | ${esc(r.ours)} | ${esc(r.baseline)} | ${esc(r.ratio)} | ${esc(r.target)} | ${r.met === true ? 'yes' : r.met === false ? 'no' : '—'} |`);
  return out.join('\n');
}

function resultsMarkdown(report) {
  const m = report.machine;
  const notes = [];
  notes.push(`- Load generator: ${report.sender}.`);
  notes.push(`- UDP receive buffers: ours and the null receiver ask for ${UDP_RECV_BUFFER} bytes; the kernel granted ${report.grantedRecvBuffer ?? 'n/a'} (net.core.rmem_max = ${m.rmemMax}). etsy statsd has no such option and runs with the default (${m.rmemDefault}).`);
  for (const r of report.rows) if (r.note !== undefined) notes.push(`- Scenario ${r.id} skipped: ${r.note}`);
  const d = report.details;
  const cpuNote = (x, unit = 'lines') => `${si(x.linesPerCpuSecond)} ${unit} per server CPU-second (CPU ${(x.serverCpuBusy * 100).toFixed(0)}% of the run, all threads)`;
  if (d['1']?.ours !== undefined) {
    const o = best(d['1'].ours, 'linesPerSec');
    const e = best(d['1'].etsy, 'linesPerSec');
    notes.push(`- Scenario 1: offered ${si(o.offeredLinesPerSec)} lines/s. Ours ${cpuNote(o)}; etsy statsd ${cpuNote(e)} (per CPU-second ratio ${fmtRatio(ratio(o.linesPerCpuSecond, e.linesPerCpuSecond))}). The null dgram receiver reached ${si(d['1'].nullReceiver.linesPerSec)} lines/s; ours is ${fmtRatio(d['1'].oursVsNull)} of it. Every sent line was either flushed or counted as a kernel drop (unaccounted: ${o.unaccountedLines}).`);
  }
  if (d['2']?.ours !== undefined) {
    const o = best(d['2'].ours, 'linesPerSec');
    notes.push(`- Scenario 2: ours ${cpuNote(o)}, ${fmtRatio(d['2'].oursVsNull)} of the null receiver (${si(d['2'].nullReceiver.linesPerSec)} lines/s). Received lines = 20 × (Σ\`c\` / 4), cross-checked with the \`h\`/\`ms\` \`.count\` and \`d\` counts (consistent: ${o.consistent ? 'yes' : 'NO'}).`);
  }
  if (d['3']?.ours !== undefined) {
    const o = best(d['3'].ours, 'packetsPerSec');
    const n = best(d['3'].nullReceiver, 'packetsPerSec');
    notes.push(`- Scenario 3: offered ${si(o.offeredPacketsPerSec)} packets/s. Ours ${cpuNote(o, 'packets')}; null receiver ${cpuNote(n, 'packets')} (per CPU-second ratio ${fmtRatio(ratio(o.linesPerCpuSecond, n.linesPerCpuSecond))}).`);
  }
  if (d['4']?.ours !== undefined) {
    const o = d['4'].ours;
    const e = d['4'].etsy;
    notes.push(`- Scenario 4: the sender achieved ${si(o.offeredLinesPerSec)} lines/s. Ours: ${o.lostLines} lost of ${o.sender.lines}, socket drops ${o.socketDrops}, machine-wide RcvbufErrors delta ${o.kernelRcvbufErrors}, peak receive queue ${mib(o.maxRxQueueBytes)}, server CPU ${(o.serverCpuBusy * 100).toFixed(0)}% of the run. etsy statsd (${d['4'].etsySeconds} s, default receive buffer): ${e.lostLines} lost of ${e.sender.lines}, socket drops ${e.socketDrops}.`);
  }
  if (d['5']?.ours !== undefined) notes.push(`- Scenario 5: ${si(d['5'].ours.sentLines)} lines written on 4 connections, ${d['5'].ours.lostLines} lost; server CPU ${d['5'].ours.serverCpuSeconds.toFixed(1)} s over ${d['5'].ours.seconds.toFixed(1)} s. The null receiver is bound by the Node client writing 64 KiB blocks; the target is absolute.`);
  if (d['6']?.ours !== undefined) notes.push(`- Scenario 6: ours answered ${JSON.stringify(d['6'].ours.statuses)} to ${d['6'].ours.issued} requests and flushed ${d['6'].ours.receivedLogLines} of ${d['6'].ours.sentLogLines} log lines (server CPU ${d['6'].ours.serverCpuSeconds.toFixed(1)} s over ${d['6'].ours.seconds.toFixed(1)} s)${d['6'].fastify !== undefined ? `; the empty fastify ${d['6'].fastify.fastify} route answered ${JSON.stringify(d['6'].fastify.statuses)} in ${d['6'].fastify.seconds.toFixed(1)} s` : ''}.`);
  if (d['7'] !== undefined && d['7'].flushes !== undefined) {
    const f7 = d['7'];
    notes.push(`- Scenario 7: flush duration = arrival of the window's last payload at the stand-in minus the window boundary (per window: ${f7.flushes.map((f) => `${f.durationMs.toFixed(0)} ms`).join(', ')}; ${f7.flushes.map((f) => si(f.series)).join(', ')} series); in-process flush_duration_ms self-metric: ${f7.selfFlushDurationMs.length > 0 ? f7.selfFlushDurationMs.map((x) => x.toFixed(0)).join(', ') + ' ms' : 'not found in the payloads'}. Sent ${f7.sender.lines} lines; socket drops ${f7.socketDrops} datagrams (${f7.socketDrops * LPP} lines); peak receive queue per window ${f7.flushes.map((f) => mib(f.maxRxQueueBytes)).join(', ')} of the ${mib(report.grantedRecvBuffer)} buffer.${f7.worstSelfLoopDelayMs !== undefined ? ` Event-loop delay (judged) is the server's own metrics_distributor.event_loop_delay_max_ms (perf_hooks, max per window, net of its 10 ms sampling period): ${f7.selfLoopDelayMaxMs.map((x) => x.toFixed(0)).join(', ')} ms.` : ''}${f7.worstHealthzMs !== undefined ? ` The worst GET /healthz round trip (every 10 ms on one keep-alive connection, so it adds HTTP handling and the probe's own scheduling) was ${f7.worstHealthzMs.toFixed(0)} ms.` : ''}${f7.worstSelfLoopDelayMs === undefined && f7.worstHealthzMs === undefined ? ' Event-loop delay could not be measured.' : ''}`);
  }
  if (d['8']?.contexts !== undefined) notes.push(`- Scenario 8a: RSS read from /proc/<pid>/status 1.5 s after the last line, in one open 1-hour window; idle RSS ${mib(d['8'].contexts.ours.idleRss)} (etsy statsd ${mib(d['8'].contexts.etsy.idleRss)}), so about ${si(d['8'].contexts.ours.bytesPerContext)} bytes per context (etsy statsd ${si(d['8'].contexts.etsy.bytesPerContext)}; it keeps \`h\` and \`d\` lines as plain counters).`);
  if (d['8']?.heavyHistogram !== undefined) {
    const hh = d['8'].heavyHistogram;
    notes.push(`- Scenario 8b: the server's RSS grew ${kib(hh.server.delta)} over 1M \`h\` samples to one context, ${Number.isFinite(hh.control.delta) ? `and ${kib(hh.control.delta)} over 1M counter lines (control)` : '(no control run in a quick run)'}: V8 heap growth from parsing dominates, so one histogram cannot be resolved from RSS. The judged figure is in-process, after a full GC: the array buffers retained per HistogramAgg fed 1M samples (${kib(hh.inProcess.arrayBufferBytesPerInstance)}, exact, over ${hh.inProcess.instances} instances) plus its JS objects on the V8 heap (${kib(hh.inProcess.heapBytesPerInstance)}, over 2,000 instances in the same sketch mode).`);
  }
  if (d['9']?.workers1 !== undefined) {
    const o1 = best(d['9'].workers1, 'linesPerSec');
    const o2 = best(d['9'].workers2, 'linesPerSec');
    notes.push(`- Scenario 9: the C sender takes one of the ${m.nproc} cores, so both workers and the primary share what is left. --workers 1: ${cpuNote(o1)}, ${o1.lostLines} lines lost. --workers ${d['9'].workers}: ${cpuNote(o2)} (primary and workers), ${o2.lostLines} lines lost.`);
  }
  return `# Benchmark results

Generated by \`bench/run.mjs\` on ${report.date}${report.quick ? ' (BENCH_QUICK=1: shortened run)' : ''}. Every figure is measured in the
same run as its baseline; compare ratios, not absolute numbers, across machines.

**Machine:** ${m.nproc} CPUs (nproc), ${m.cpu}, Node ${m.node}, Linux ${m.kernel ?? 'n/a'}.

**Commands:**

\`\`\`sh
npx -y pnpm@10.34.9 install --frozen-lockfile
npx -y pnpm@10.34.9 bench                  # full run, a few minutes
BENCH_QUICK=1 npx -y pnpm@10.34.9 bench    # shortened, under a minute
\`\`\`

This run: \`${['node bench/run.mjs', ...report.args].join(' ')}\`${report.quick ? ' with BENCH_QUICK=1' : ''}${process.env.BENCH_SERVER_ARGS ? ` and BENCH_SERVER_ARGS="${process.env.BENCH_SERVER_ARGS}"` : ''} (sustained ${si(SUSTAINED_RATE)} lines/s for ${SUSTAINED_SECONDS} s), ${report.totalSeconds.toFixed(0)} s in all.

${markdownTable(report.rows)}

Notes:

${notes.join('\n')}

How each figure is measured and how loss is counted: [README.md](README.md). Raw figures: \`bench/results/latest.json\` (not committed).
`;
}

// ---------------------------------------------------------------------------------------------
// Main

const SCENARIOS = [
  ['1', 'UDP counters vs etsy statsd', scenario1],
  ['2', 'UDP mixed DogStatsD', scenario2],
  ['3', 'UDP one line per packet vs null receiver', scenario3],
  ['4', 'UDP sustained load', scenario4],
  ['5', 'TCP, 4 connections', scenario5],
  ['6', 'HTTP logplex vs empty fastify route', scenario6],
  ['7', 'flush under load', scenario7],
  ['8', 'memory', scenario8],
  ['9', 'UDP counters, --workers 2 vs 1', scenarioWorkers],
];

async function main() {
  const t0 = now();
  if (process.env.BENCH_CLI === undefined && !existsSync(CLI_DIST)) {
    console.error(`bench: ${CLI_DIST} is missing; build first (npx -y pnpm@10.34.9 build, or pnpm bench from the repo root).`);
    process.exit(1);
  }
  if (!existsSync(ETSY_MAIN)) {
    console.error('bench: etsy statsd is not installed (bench/node_modules/statsd); run the install first.');
    process.exit(1);
  }
  SENDER = buildSender();
  log(`load generator: ${SENDER.note}`);
  const m = machine();
  log(`machine: ${m.nproc} CPUs, ${m.cpu}, Node ${m.node}${QUICK ? ', BENCH_QUICK=1' : ''}`);

  // The receive buffer the kernel grants for our request, from a null receiver.
  const probe = await startNull('udp');
  const granted = probe.recvBufferBytes;
  await probe.result();

  const rows = [];
  const details = {};
  for (const [id, title, fn] of SCENARIOS) {
    if (ONLY !== undefined && !ONLY.includes(id)) continue;
    log(`scenario ${id}: ${title}`);
    const ts = now();
    try {
      const r = await fn();
      rows.push(...r.rows);
      details[id] = r.details;
    } catch (err) {
      log(`  FAILED: ${err.stack ?? err}`);
      rows.push({ id, name: title, ours: `error: ${String(err.message ?? err).split('\n')[0].slice(0, 120)}`, baseline: '—', ratio: '—', target: '—', met: false });
      details[id] = { error: String(err.stack ?? err) };
    }
    log(`  (${((now() - ts) / 1000).toFixed(1)} s)`);
  }

  const report = {
    date: new Date().toISOString(),
    quick: QUICK,
    args: process.argv.slice(2),
    sustained: { seconds: SUSTAINED_SECONDS, linesPerSec: SUSTAINED_RATE },
    serverArgs: OUR_BASE,
    machine: m,
    sender: SENDER.note,
    senderKind: SENDER.kind,
    grantedRecvBuffer: granted,
    totalSeconds: (now() - t0) / 1000,
    rows,
    details,
  };
  mkdirSync(join(BENCH_DIR, 'results'), { recursive: true });
  writeFileSync(join(BENCH_DIR, 'results', 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  if (ONLY === undefined) writeFileSync(join(BENCH_DIR, 'RESULTS.md'), resultsMarkdown(report));
  else log('--only given: RESULTS.md left as it was');

  console.log('');
  console.log(`metrics-distributor benchmark — ${report.date} — ${m.nproc} CPUs, ${m.cpu}, Node ${m.node}${QUICK ? ' — BENCH_QUICK=1' : ''}`);
  console.log(`load generator: ${SENDER.note}`);
  console.log('');
  console.log(table(rows));
  for (const r of rows) if (r.note !== undefined) console.log(`\n${r.id}: ${r.note}`);
  console.log(`\nwrote bench/results/latest.json${ONLY === undefined ? ' and bench/RESULTS.md' : ''} (${report.totalSeconds.toFixed(0)} s)`);
}

try {
  await main();
} finally {
  rmSync(TMP, { recursive: true, force: true });
}
