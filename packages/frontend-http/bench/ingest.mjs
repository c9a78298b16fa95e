// In-process /logs ingest throughput: logplex bodies parsed and aggregated, no sockets, no fastify.
// The path scenario 6 of the repository bench measures, without the HTTP part. Prints lines/s.
// Run: pnpm --filter @metrics-distributor/frontend-http bench   (or: node bench/ingest.mjs after a build)
import { readFileSync } from 'node:fs';
import { Aggregator, ComponentNames, componentContext, createRootLogger } from '@metrics-distributor/core';
// Internal on purpose: the bench times the ingest path alone, which the package does not export.
import { LogIngest } from '../dist/ingest.js';

const FRAMES = 100;
const BODIES = Number(process.env['BENCH_BODIES'] ?? 4000);
const ROUNDS = 5;

/** A fixture's one frame, framed again `FRAMES` times (its bytes end without a separator). */
function repeated(file) {
  const one = readFileSync(new URL(`../test/fixtures/logdrains/${file}`, import.meta.url), 'latin1');
  const msg = one.slice(one.indexOf(' ') + 1).replace(/\n$/, '');
  return Buffer.from(`${Buffer.byteLength(msg, 'latin1')} ${msg}`.repeat(FRAMES), 'latin1');
}

/** Scenario 6's body: half router lines, half l2met app lines, four dynos. */
function mixed() {
  const ts = new Date().toISOString().replace('Z', '000+00:00');
  const out = [];
  for (let i = 0; i < FRAMES; i++) {
    const msg =
      i % 2 === 0
        ? `<158>1 ${ts} host heroku router - at=info method=GET path="/api/items/${i}" host=bench.herokuapp.com request_id=0b7c1f9e-4a4c-4d0e-9f0a-${String(i).padStart(12, '0')} fwd="10.0.0.${i % 250}" dyno=web.${1 + (i % 4)} connect=${i % 5}ms service=${10 + (i % 90)}ms status=${i % 10 === 0 ? 404 : 200} bytes=${900 + i} protocol=https`
        : `<190>1 ${ts} host app web.${1 + (i % 4)} - count#bench.s6.hits=1 sample#bench.s6.queue=${i % 50} measure#bench.s6.latency=${10 + (i % 90)}ms source=web.${1 + (i % 4)}`;
    out.push(`${Buffer.byteLength(msg)} ${msg}`);
  }
  return Buffer.from(out.join(''));
}

const scenarios = { 'router fixture (dd_router_1msg)': repeated('dd_router_1msg.logplex'), 'scenario 6 body (router + l2met)': mixed() };
const logger = createRootLogger({ level: 'warn' });

for (const [name, body] of Object.entries(scenarios)) {
  const rates = [];
  for (let r = 0; r < ROUNDS; r++) {
    const agg = new Aggregator({ hostname: 'bench', selfMetrics: false, logger });
    const context = componentContext({ logger, stats: agg.stats }, 'http', ComponentNames.http);
    const ingest = new LogIngest(agg.target(context), context, 10 * 1024);
    for (let i = 0; i < 1000; i++) ingest.ingest(body, 'logplex', 'shop');
    // CPU time, not wall time: the machine may be shared.
    const c0 = process.cpuUsage();
    for (let i = 0; i < BODIES; i++) ingest.ingest(body, 'logplex', 'shop');
    const c = process.cpuUsage(c0);
    rates.push((BODIES * FRAMES) / ((c.user + c.system) / 1e6));
    agg.closeWindow();
  }
  rates.sort((a, b) => a - b);
  console.log(`${name}: ${(rates[ROUNDS >> 1] / 1e6).toFixed(3)} M lines/s (median of ${ROUNDS}, CPU time)`);
}
