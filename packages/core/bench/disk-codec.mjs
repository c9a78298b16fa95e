// The disk buffer's window record, JSON lines (version 1) against binary (version 2): bytes, CPU of
// encoding and decoding a 200k-series window, and the longest event-loop gap meanwhile. CPU time, not
// wall time, because the figures are taken on shared machines.
// Then the disk buffer's whole write of scenario 7's window, longest loop turn in main-thread CPU
// (Linux: /proc schedstat) and GC pauses (skip it with --no-write).
// Run after a build: node --expose-gc packages/core/bench/disk-codec.mjs [series] [--no-write]   (default 200000)
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { decodeBatch, encodeBatch } from '../dist/disk/codec.js';
import { decodeJsonBatch, encodeJsonBatch } from '../dist/disk/codec-json.js';

const N = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 200_000);
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

// The disk buffer's whole write of bench scenario 7's window (200,000 mixed contexts through the real
// aggregator: ~410k series and 30k sketches, a name of their own each): encode, CRC, writev and
// fdatasync, as `--data-dir` does before the sink sees a window. What counts for the event loop is the
// longest synchronous stretch, measured here as main-thread CPU (schedstat) between two ticks of a 1 ms
// timer, so other processes' load barely moves it; the GC pauses meanwhile are wall time.
if (!process.argv.includes('--no-write')) {
  const { mkdtempSync, openSync, readSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { PerformanceObserver } = await import('node:perf_hooks');
  const { Aggregator, ComponentContext, ComponentStats, silentLogger } = await import('../dist/index.js');
  const { DiskBuffer } = await import('../dist/disk/disk-buffer.js');
  const { mixedLines } = await import('../../../bench/lib/payloads.mjs');
  const schedFd = openSync(`/proc/self/task/${process.pid}/schedstat`, 'r');
  const schedBuf = Buffer.alloc(128);
  const threadMs = () => Number(schedBuf.toString('latin1', 0, readSync(schedFd, schedBuf, 0, 128, 0)).split(' ')[0]) / 1e6;
  const agg = new Aggregator({ flushIntervalMs: 5000, hostname: 'bench', maxContexts: 300_000, logger: silentLogger() });
  const lines = mixedLines('bench.s7', 200_000, 1);
  for (let i = 0; i < lines.length; i += 20) agg.ingestStatsd(Buffer.from(lines.slice(i, i + 20).join('\n')));
  lines.length = 0;
  const window = await agg.closeWindowAsync();
  const dir = mkdtempSync(join(tmpdir(), 'md-disk-codec-'));
  const ctx = new ComponentContext('sink', 'sink-bench', silentLogger(), new ComponentStats('sink-bench'));
  const opened = await DiskBuffer.open({ dir, maxBytes: 1 << 30 }, ctx, () => true);
  if (opened === undefined) throw new Error('data directory did not open');
  const buf = opened.buffer;
  const gcs = [];
  const obs = new PerformanceObserver((l) => gcs.push(...l.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  const kindName = { 1: 'scavenge', 2: 'minor-mc', 4: 'mark-compact', 8: 'incremental', 16: 'weak' };
  console.log(`\ndisk write of scenario 7's window: ${window.series.length} series + ${window.sketches.length} sketches`);
  console.log('run | thread CPU ms | process CPU ms | worst turn thread ms (wall) | GC pauses > 1 ms: count, max ms, by kind');
  for (let run = 0; run < 5; run++) {
    global.gc?.();
    await new Promise((r) => setTimeout(r, 50));
    gcs.length = 0;
    let worst = { thread: 0, wall: 0 };
    let last;
    const tick = setInterval(() => {
      const now = { thread: threadMs(), wall: performance.now() };
      if (last !== undefined && now.thread - last.thread > worst.thread) worst = { thread: now.thread - last.thread, wall: now.wall - last.wall };
      last = now;
    }, 1);
    const t0 = threadMs();
    const c0 = process.cpuUsage();
    const w = await buf.add(window);
    const t1 = threadMs();
    const cpu = cpuMs(c0);
    clearInterval(tick);
    if (w === undefined) throw new Error('window not written');
    await buf.settle(w);
    await new Promise((r) => setTimeout(r, 20));
    const big = gcs.filter((g) => g.duration > 1);
    const kinds = {};
    for (const g of big) kinds[kindName[g.detail?.kind] ?? g.detail?.kind] = (kinds[kindName[g.detail?.kind] ?? g.detail?.kind] ?? 0) + 1;
    console.log(`${run} | ${(t1 - t0).toFixed(0)} | ${cpu.toFixed(0)} | ${worst.thread.toFixed(1)} (${worst.wall.toFixed(1)}) | ${big.length}, ${Math.max(0, ...big.map((g) => g.duration)).toFixed(1)}, ${JSON.stringify(kinds)}`);
  }
  obs.disconnect();
  await buf.close();
  await agg.close(Date.now() + 1000);
  rmSync(dir, { recursive: true, force: true });
}
