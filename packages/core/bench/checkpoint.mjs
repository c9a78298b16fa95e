// Cost of --checkpoint-open-window: CPU per ingested line with checkpoints on vs off, and the loop
// delay of one checkpoint, at 10k and 200k contexts. Ingestion runs in loop turns (as sockets feed
// it), so the checkpoint's slices interleave with it as they do in the server.
// Run: node bench/checkpoint.mjs after a build. Prints figures; asserts nothing.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Aggregator, Checkpointer, componentContext, silentLogger } from '@metrics-distributor/core';

const LINES_PER_PACKET = 20;
const PACKETS_PER_TURN = 25;
const CHECKPOINT_EVERY_MS = 1000;

/** One packet per 20 contexts: every context once per pass; a sixth of them histograms and sets. */
function packets(contexts) {
  const out = [];
  for (let p = 0; p < contexts / LINES_PER_PACKET; p++) {
    const lines = [];
    for (let l = 0; l < LINES_PER_PACKET; l++) {
      const n = p * LINES_PER_PACKET + l;
      const kind = n % 6 === 0 ? `${n % 997}|h` : n % 6 === 1 ? `u${n % 50}|s` : `1|c`;
      lines.push(`app.m${n % 500}.x:${kind}|#shard:${Math.floor(n / 500)}`);
    }
    out.push(Buffer.from(lines.join('\n')));
  }
  return out;
}

const turn = () => new Promise((r) => setImmediate(r));

async function run(contexts, passes, checkpointing) {
  const dir = await mkdtemp(join(tmpdir(), 'md-bench-ckpt-'));
  // A window longer than the run: the checkpoints see the whole open window grow.
  const agg = new Aggregator({ hostname: 'bench', selfMetrics: false, flushIntervalMs: 3_600_000 });
  const root = { logger: silentLogger(), stats: agg.stats };
  const rx = agg.target(componentContext(root, 'embedded'));
  const cp = new Checkpointer(agg, componentContext(root, 'checkpoint'), { dir, intervalMs: CHECKPOINT_EVERY_MS });
  const pkts = packets(contexts);
  for (const p of pkts) rx.statsd(p); // every context exists before measuring
  if (checkpointing) cp.start();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let pass = 0; pass < passes; pass++) {
    for (let i = 0; i < pkts.length; i += PACKETS_PER_TURN) {
      for (let j = i; j < Math.min(i + PACKETS_PER_TURN, pkts.length); j++) rx.statsd(pkts[j]);
      await turn();
    }
  }
  const cpu = process.cpuUsage(c0);
  const wallMs = performance.now() - t0;
  await cp.close();
  const checkpoints = agg.stats.component('checkpoint').counter('checkpoints');
  // One checkpoint alone, while ingestion goes on, for its loop delay.
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let ingesting = true;
  const feeder = (async () => {
    for (let i = 0; ingesting; i = (i + PACKETS_PER_TURN) % pkts.length) {
      for (let j = i; j < Math.min(i + PACKETS_PER_TURN, pkts.length); j++) rx.statsd(pkts[j]);
      await turn();
    }
  })();
  const one0 = performance.now();
  await cp.checkpoint();
  const oneMs = performance.now() - one0;
  ingesting = false;
  await feeder;
  h.disable();
  const size = (await stat(join(dir, `window-${agg.currentWindowStart}.ckpt`))).size;
  await rm(dir, { recursive: true, force: true });
  const lines = passes * contexts;
  return { lines, cpuNsPerLine: ((cpu.user + cpu.system) * 1000) / lines, wallMs, checkpoints, longestSliceMs: cp.lastLongestSliceMs, loopDelayMaxMs: h.max / 1e6, loopDelayP99Ms: h.percentile(99) / 1e6, oneMs, size };
}

for (const [contexts, passes] of [[10_000, 100], [200_000, 8]]) {
  const off = await run(contexts, passes, false);
  const on = await run(contexts, passes, true);
  console.log(
    `${String(contexts).padStart(7)} contexts: CPU ${off.cpuNsPerLine.toFixed(0)} ns/line off, ${on.cpuNsPerLine.toFixed(0)} ns/line with a checkpoint every ${CHECKPOINT_EVERY_MS} ms (${on.checkpoints} checkpoints in ${(on.wallMs / 1000).toFixed(1)} s; +${(((on.cpuNsPerLine - off.cpuNsPerLine) / off.cpuNsPerLine) * 100).toFixed(1)}%)` +
      `; one checkpoint: ${on.oneMs.toFixed(0)} ms wall, ${(on.size / 1e6).toFixed(1)} MB, longest slice ${on.longestSliceMs.toFixed(1)} ms, loop delay max ${on.loopDelayMaxMs.toFixed(1)} ms p99 ${on.loopDelayP99Ms.toFixed(1)} ms`,
  );
}
