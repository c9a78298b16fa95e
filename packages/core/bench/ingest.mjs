// In-process ingest throughput: parse + aggregate pre-built packets, no sockets. Prints lines/s.
// Run: pnpm --filter @metrics-distributor/core bench   (or: node bench/ingest.mjs after a build)
// INGEST_ROUNDS (default 25) and INGEST_ONLY (a scenario name's start) serve instruction counts under
// valgrind --tool=callgrind: two runs with different rounds give instructions per line by difference,
// a figure the machine's load does not move.
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

const scenarios = {
  'counters, 1000 names': packets((n) => `app.counter.${n % 1000}:1|c`),
  'mixed DogStatsD, 2 tags': packets((n) => {
    const types = ['c', 'g', 'ms|@0.5', 'h', 's', 'd'];
    const t = types[n % types.length];
    const v = t === 's' ? `u${n % 5000}` : String(n % 997);
    return `app.mixed.${n % 500}:${v}|${t}|#env:prod,shard:${n % 8}`;
  }),
};

for (const [name, pkts] of Object.entries(scenarios)) {
  if (process.env.INGEST_ONLY !== undefined && !name.startsWith(process.env.INGEST_ONLY)) continue;
  const agg = new Aggregator({ hostname: 'bench', selfMetrics: false });
  // A front-end's target, as the UDP front-end is given.
  const rx = agg.target(componentContext({ logger: silentLogger(), stats: agg.stats }, 'embedded'));
  // Warm up the JIT and the context tables.
  for (let i = 0; i < 3; i++) for (const p of pkts) rx.statsd(p);
  const rounds = Number(process.env.INGEST_ROUNDS ?? 25);
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let i = 0; i < rounds; i++) for (const p of pkts) rx.statsd(p);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  // Per CPU-second as well: on a shared machine wall time counts the other processes' load.
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  const lines = rounds * PACKETS * LINES_PER_PACKET;
  const f0 = process.hrtime.bigint();
  const batch = agg.closeWindow();
  const flushMs = Number(process.hrtime.bigint() - f0) / 1e6;
  console.log(`${name.padEnd(26)} ${(lines / secs / 1e6).toFixed(2)} M lines/s (${(lines / cpuSecs / 1e6).toFixed(2)} M per CPU-s)   flush ${flushMs.toFixed(1)} ms for ${batch.series.length + batch.sketches.length} series`);
}
