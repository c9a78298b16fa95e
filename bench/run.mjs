#!/usr/bin/env node
// The benchmark suite: metrics-distributor against etsy statsd and null Node receivers, same run,
// same machine. Every figure in the table is a ratio against a baseline measured moments before.
//
//   node run.mjs [--sustained-seconds N] [--sustained-rate LINES_PER_S] [--only 1,3,8]
//   (or BENCH_SUSTAINED_SECONDS, BENCH_SUSTAINED_RATE, BENCH_ONLY)
//   BENCH_QUICK=1 node run.mjs      shorter everything (about 4 minutes)
//
// Prints a table, writes results/latest.json and regenerates RESULTS.md. Each scenario is one file in
// scenarios/, the helpers they share are in lib/; see README.md for what each scenario measures and
// how loss is counted.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, CLI_DIST, ETSY_MAIN, machine, now } from './harness.mjs';
import { OUR_BASE, ONLY, QUICK, SUSTAINED_RATE, SUSTAINED_SECONDS, TMP, log, sender } from './lib/options.mjs';
import { startNull } from './lib/servers.mjs';
import { resultsMarkdown, table } from './lib/report.mjs';
import { scenario1 } from './scenarios/1-udp-counters.mjs';
import { scenario2 } from './scenarios/2-udp-mixed.mjs';
import { scenario3 } from './scenarios/3-udp-one-line.mjs';
import { scenario4 } from './scenarios/4-udp-sustained.mjs';
import { scenario5 } from './scenarios/5-tcp.mjs';
import { scenario6 } from './scenarios/6-http-logplex.mjs';
import { scenario7 } from './scenarios/7-flush-under-load.mjs';
import { scenario8 } from './scenarios/8-memory.mjs';
import { scenarioWorkers } from './scenarios/9-workers.mjs';
import { scenarioPlainCounters } from './scenarios/p1-udp-plain-counters.mjs';
import { scenarioPlainMixed } from './scenarios/p2-udp-plain-mixed.mjs';
import { scenarioLossOnset } from './scenarios/p3-loss-onset.mjs';
import { scenarioGap } from './scenarios/p4-gap.mjs';
import { scenarioTransform } from './scenarios/10-transform.mjs';
import { scenarioAdmin } from './scenarios/11-admin.mjs';
import { scenarioPrometheus } from './scenarios/12-sinks-prometheus.mjs';
import { scenarioSinksOtlpGraphite } from './scenarios/13-sinks-otlp-graphite.mjs';
import { scenarioDataDir } from './scenarios/14-data-dir.mjs';

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
  // Issue 16: the plain sendmmsg sender and collectd (ids P1–P4, so `--only P1,P3` selects them).
  ['P1', 'UDP counters, plain sender, vs etsy statsd and collectd', scenarioPlainCounters],
  ['P2', 'UDP mixed DogStatsD, plain sender', scenarioPlainMixed],
  ['P3', 'UDP loss onset, paced plain sender', scenarioLossOnset],
  ['P4', 'why scenario 1 and the plain sender differ', scenarioGap],
  ['10', 'UDP counters with 50 mappings + 100 filters vs without', scenarioTransform],
  ['11', 'admin listener polled, with and without a tap, vs --admin off', scenarioAdmin],
  ['12', 'Prometheus sink: 200k-context window, scrape and remote write', scenarioPrometheus],
  ['13', '200k-context window exported to OTLP and to Graphite', scenarioSinksOtlpGraphite],
  ['14', 'scenarios 1 and 7 with --data-dir vs without', scenarioDataDir],
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
  const SENDER = sender();
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
