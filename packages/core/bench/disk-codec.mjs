// The disk buffer's window record, JSON lines (version 1) against binary (version 2): bytes, CPU of
// encoding and decoding a 200k-series window, and the longest event-loop gap meanwhile. CPU time, not
// wall time, because the figures are taken on shared machines.
// Run after a build: node packages/core/bench/disk-codec.mjs [series]   (default 200000)
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { decodeBatch, encodeBatch } from '../dist/disk/codec.js';
import { decodeJsonBatch, encodeJsonBatch } from '../dist/disk/codec-json.js';

const N = Number(process.argv[2] ?? 200_000);
const START_MS = 1_700_000_000_000;
const ts = START_MS / 1000;
// As scenario 7's contexts: 2000 names over 100 hosts, a shared tag, a shard and one tag per context.
const types = ['rate', 'gauge', 'count'];
const batch = {
  windowStartMs: START_MS,
  intervalMs: 10_000,
  series: Array.from({ length: N }, (_, i) => ({
    metric: `bench.app.metric.${i % 2000}`,
    type: types[i % 3],
    timestamp: ts,
    value: (i % 997) / 7,
    interval: 10,
    tags: ['env:production', `shard:${i % 64}`, `ctx:${i}`],
    host: `host-${i % 100}`,
  })),
  sketches: Array.from({ length: N / 100 }, (_, i) => ({
    metric: `bench.dist.${i % 50}`,
    timestamp: ts,
    interval: 10,
    tags: ['env:production', `ctx:${i}`],
    host: `host-${i % 100}`,
    sketch: { count: 40, min: 1, max: 900, sum: 9000, avg: 225, keys: Array.from({ length: 20 }, (_, k) => 1338 + k * 17), counts: Array.from({ length: 20 }, () => 2) },
  })),
  events: [],
  serviceChecks: [],
};

const cpuMs = (from) => {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1000;
};

async function measure(fn) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  global.gc?.();
  h.enable();
  const c0 = process.cpuUsage();
  const out = await fn();
  const cpu = cpuMs(c0);
  h.disable();
  return { out, cpu, maxGapMs: h.max / 1e6 };
}

const codecs = {
  'json (v1)': { enc: encodeJsonBatch, dec: decodeJsonBatch },
  'binary (v2)': { enc: encodeBatch, dec: decodeBatch },
};
console.log(`window: ${N} series + ${batch.sketches.length} sketches; load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('codec        | bytes       | B/series | encode CPU ms | decode CPU ms | max loop gap enc/dec ms');
for (const [name, c] of Object.entries(codecs)) {
  const rows = [];
  for (let run = 0; run < 3; run++) {
    const e = await measure(() => c.enc(batch));
    const data = Buffer.concat(e.out);
    const d = await measure(() => c.dec(data));
    if (d.out?.series.length !== N) throw new Error(`${name}: decoded ${d.out?.series.length} series`);
    rows.push({ bytes: data.length, enc: e.cpu, dec: d.cpu, gapE: e.maxGapMs, gapD: d.maxGapMs });
  }
  // The median run of three, each column on its own.
  const med = (k) => rows.map((r) => r[k]).sort((a, b) => a - b)[1];
  console.log(
    `${name.padEnd(12)} | ${String(med('bytes')).padStart(11)} | ${(med('bytes') / N).toFixed(1).padStart(8)} | ${med('enc').toFixed(0).padStart(13)} | ${med('dec').toFixed(0).padStart(13)} | ${med('gapE').toFixed(1)} / ${med('gapD').toFixed(1)}`,
  );
}
