// One big window through the OTLP sink in this process, against a null OTLP receiver in a child
// process, to see where the export's time goes without a CLI or UDP in the way. Run after a build:
//   node bench/export-window.mjs [--contexts 200000] [--protocol http/protobuf|http/json] [--runs 3]
// Add --cpu-prof or --trace-gc before the script to profile. Prints, per run, the process's CPU time
// during the export, its wall time, the longest event-loop delay seen (monitorEventLoopDelay, 1 ms
// resolution), the slices the sink cut its work into (longest, median, p99, and the CPU time of the
// longest and p99, from the sink's `slicer.onSlice`) and the collections during the export.
// `--skip-export` does everything but the export: under `valgrind --tool=callgrind`, the difference
// of two runs is the export's instruction count.
// OTLP_SINK_DIST=<dir> takes the sink from another build (an older one, to compare).
import { spawn } from 'node:child_process';
import { PerformanceObserver, constants as perf, monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Aggregator, ComponentContext, ComponentStats, silentLogger } from '@metrics-distributor/core';
const dist = process.env.OTLP_SINK_DIST ?? new URL('../dist', import.meta.url).pathname;
const { OtlpSink } = await import(`${dist}/index.js`);

// Every slice's length, besides the longest the sink reports: on a loaded machine the longest is
// mostly the process waiting for a CPU, the distribution says what the slices themselves take (and
// their CPU time what they cost). A build whose slicer has no `onSlice` leaves these lists empty.
const slices = [];
const sliceCpus = [];
let gcs = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push({ ms: e.duration, major: e.detail?.kind === perf.NODE_PERFORMANCE_GC_MAJOR });
}).observe({ entryTypes: ['gc'] });
const pct = (list, q) => list.length === 0 ? 0 : [...list].sort((a, b) => a - b)[Math.min(list.length - 1, Math.floor(q * list.length))];
const r1 = (v) => Math.round(v * 10) / 10;

const { values: args } = parseArgs({
  options: {
    contexts: { type: 'string', default: '200000' },
    protocol: { type: 'string', default: 'http/protobuf' },
    histogram: { type: 'string', default: 'exponential' },
    runs: { type: 'string', default: '3' },
    'skip-export': { type: 'boolean', default: false },
  },
});
const contexts = Number(args.contexts);

// The bench's mixed load (bench/lib/payloads.mjs): per 20 contexts c×4, g×4, ms×3, h×3, s×3, d×3, two tags.
const MIX = ['c', 'g', 'ms', 'h', 's', 'd', 'c', 'g', 'ms', 'h', 's', 'd', 'c', 'g', 'ms', 'h', 's', 'd', 'c', 'g'];
function line(k) {
  const t = MIX[k % 20];
  const v = String(100 + ((k * 7) % 900));
  const value = t === 's' ? `m${String((k * 31) % 1000).padStart(3, '0')}|s` : t === 'ms' ? `${v}|ms|@0.5` : t === 'c' ? '1|c' : `${v}|${t}`;
  return `bench.otlp.${t}.${String(k).padStart(6, '0')}:${value}|#env:bench,shard:${k % 8}`;
}

const receiver = spawn(process.execPath, ['-e', `
  const s = require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/x-protobuf' }); res.end(); }); });
  s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve) => receiver.stdout.once('data', (d) => resolve(Number(String(d)))));

for (let run = 0; run < Number(args.runs); run++) {
  const agg = new Aggregator({ flushIntervalMs: 10_000, maxContexts: contexts + 1000 });
  for (let k = 0; k < contexts; k += 20) {
    const lines = [];
    for (let j = k; j < Math.min(contexts, k + 20); j++) lines.push(line(j));
    agg.ingestStatsd(Buffer.from(lines.join('\n')));
  }
  const batch = agg.closeWindow();
  const stats = new ComponentStats('sink-otlp');
  const sink = new OtlpSink({ endpoint: `http://127.0.0.1:${port}`, protocol: args.protocol, histogram: args.histogram }, new ComponentContext('sink', 'sink-otlp', silentLogger(), stats));
  if (sink.slicer !== undefined) {
    sink.slicer.onSlice = (s) => {
      slices.push(s.wallMs);
      sliceCpus.push(s.cpuMs);
    };
  }
  globalThis.gc?.();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  await new Promise((r) => setTimeout(r, 50));
  loop.enable();
  slices.length = 0;
  sliceCpus.length = 0;
  gcs = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const res = args['skip-export'] ? { code: 'skipped' } : await sink.export(batch);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  loop.disable();
  const exportGcs = gcs;
  await sink.shutdown(Date.now() + 5000);
  const g = stats.gaugeValues();
  console.log(JSON.stringify({
    run,
    result: res.code,
    items: batch.series.length + batch.sketches.length,
    sent: stats.sent,
    requests: stats.packets,
    bytes: stats.bytes,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    wallMs: Math.round(wallMs),
    loopDelayMaxMs: Math.round(loop.max / 1e5) / 10,
    sliceMaxMs: g.get('export_slice_max_ms'),
    slices: slices.length,
    sliceP50Ms: r1(pct(slices, 0.5)),
    sliceP99Ms: r1(pct(slices, 0.99)),
    sliceCpuMaxMs: r1(Math.max(0, ...sliceCpus)),
    sliceCpuP99Ms: r1(pct(sliceCpus, 0.99)),
    gcCount: exportGcs.length,
    gcMajor: exportGcs.filter((e) => e.major).length,
    gcTotalMs: r1(exportGcs.reduce((n, e) => n + e.ms, 0)),
    gcMaxMs: r1(Math.max(0, ...exportGcs.map((e) => e.ms))),
    gcP50Ms: r1(pct(exportGcs.map((e) => e.ms), 0.5)),
  }));
}
receiver.kill();
