// In-process ingest throughput: parse + aggregate pre-built packets, no sockets. Prints lines/s.
// Run: pnpm --filter @metrics-distributor/core bench   (or: node bench/ingest.mjs after a build)
// INGEST_ROUNDS (default 25) and INGEST_ONLY (a scenario name's start) serve instruction counts under
// valgrind --tool=callgrind: two runs with different rounds give instructions per line by difference,
// a figure the machine's load does not move.
// P1 and P2 are the packets of bench scenarios P1 and P2 (bench/lib/payloads.mjs), 20 lines each, as
// the plain sender sends them; with INGEST_WINDOW_LINES (default 0: never) the window is closed every
// that many lines, as the server's 1 s flush does at that rate, and the closes are timed apart.
import { rmSync } from 'node:fs';
import { Aggregator, componentContext, silentLogger } from '@metrics-distributor/core';

const LINES_PER_PACKET = 20;
const PACKETS = 2000;

function packets(make) {
  const out = [];
  let n = 0;
  for (let p = 0; p < PACKETS; p++) {
    const lines = [];
    for (let l = 0; l < LINES_PER_PACKET; l++) lines.push(make(n++));
    out.push(Buffer.from(lines.join('\n')));
  }
  return out;
}

/** The bench's own payload lines, cut into packets as its sender does, repeated up to PACKETS packets. */
function payloadPackets(lines) {
  const once = [];
  for (let i = 0; i + LINES_PER_PACKET <= lines.length; i += LINES_PER_PACKET) once.push(Buffer.from(lines.slice(i, i + LINES_PER_PACKET).join('\n')));
  const out = [];
  while (out.length < PACKETS) out.push(...once);
  return out.slice(0, Math.max(PACKETS, once.length));
}

// options.mjs (imported by payloads.mjs) makes a scratch directory on import; this bench needs none.
const { TMP } = await import('../../../bench/lib/options.mjs');
rmSync(TMP, { recursive: true, force: true });
const { counterLines, mixedLines } = await import('../../../bench/lib/payloads.mjs');

const scenarios = {
  'counters, 1000 names': packets((n) => `app.counter.${n % 1000}:1|c`),
  'mixed DogStatsD, 2 tags': packets((n) => {
    const types = ['c', 'g', 'ms|@0.5', 'h', 's', 'd'];
    const t = types[n % types.length];
    const v = t === 's' ? `u${n % 5000}` : String(n % 997);
    return `app.mixed.${n % 500}:${v}|${t}|#env:prod,shard:${n % 8}`;
  }),
  'P1 counters (bench P1)': payloadPackets(counterLines('bench.p1', 1000)),
  'P2 mixed (bench P2)': payloadPackets(mixedLines('bench.p2', 1000, 20)),
};

const windowLines = Number(process.env.INGEST_WINDOW_LINES ?? 0);

for (const [name, pkts] of Object.entries(scenarios)) {
  if (process.env.INGEST_ONLY !== undefined && !name.startsWith(process.env.INGEST_ONLY)) continue;
  const agg = new Aggregator({ hostname: 'bench', selfMetrics: false });
  // A front-end's target, as the UDP front-end is given.
  const rx = agg.target(componentContext({ logger: silentLogger(), stats: agg.stats }, 'embedded'));
  let sinceClose = 0;
  let closeCpuUs = 0;
  let closes = 0;
  const feed = (p) => {
    rx.statsd(p);
    if (windowLines > 0 && (sinceClose += LINES_PER_PACKET) >= windowLines) {
      const c = process.cpuUsage();
      agg.closeWindow();
      const d = process.cpuUsage(c);
      closeCpuUs += d.user + d.system;
      closes++;
      sinceClose = 0;
    }
  };
  // Warm up the JIT and the context tables.
  for (let i = 0; i < 3; i++) for (const p of pkts) feed(p);
  closeCpuUs = 0;
  closes = 0;
  const rounds = Number(process.env.INGEST_ROUNDS ?? 25);
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let i = 0; i < rounds; i++) for (const p of pkts) feed(p);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  // Per CPU-second as well: on a shared machine wall time counts the other processes' load.
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  const lines = rounds * pkts.length * LINES_PER_PACKET;
  const f0 = process.hrtime.bigint();
  const batch = agg.closeWindow();
  const flushMs = Number(process.hrtime.bigint() - f0) / 1e6;
  const closeNote = closes > 0 ? `; ${closes} window closes took ${(closeCpuUs / 1000).toFixed(0)} ms CPU, ingest alone ${(lines / (cpuSecs - closeCpuUs / 1e6) / 1e6).toFixed(2)} M per CPU-s` : '';
  console.log(`${name.padEnd(26)} ${(lines / secs / 1e6).toFixed(2)} M lines/s (${(lines / cpuSecs / 1e6).toFixed(2)} M per CPU-s)   flush ${flushMs.toFixed(1)} ms for ${batch.series.length + batch.sketches.length} series${closeNote}`);
}
