// One window shaped like bench scenario 12 (every context its own metric name; per 20 contexts c×4,
// g×4, ms×3, h×3, s×3, d×3; two tags from 8 interned tag lists) exported with remote write to a null
// receiver in a child process (so its CPU is not counted), then scraped. Prints the CPU of the export
// (export + encode + snappy + send), requests, bytes, the worst event-loop delay and the longest
// synchronous slice the sink reports; CPU figures do not depend on the machine's load, wall times do.
// Usage: node bench/window.mjs [contexts] [windows]   (default 200000 1). NO_SCRAPE=1 skips the scrapes,
// NO_RW=1 the remote write (the state update alone), SINK_DIST=path loads another build (before/after).
import { spawn } from 'node:child_process';
import { AgentSketch, ComponentContext, ComponentStats, silentLogger } from '@metrics-distributor/core';
import { measure, scrape } from './common.mjs';
const { PrometheusSink } = await import(process.env.SINK_DIST ?? '../dist/index.js');

const n = Number(process.argv[2] ?? 200_000);
const windows = Number(process.argv[3] ?? 1);
const scrapeToo = process.env.NO_SCRAPE === undefined;
const MIX = ['c', 'g', 'ms', 'h', 's', 'd', 'c', 'g', 'ms', 'h', 's', 'd', 'c', 'g', 'ms', 'h', 's', 'd', 'c', 'g'];

const receiver = spawn(process.execPath, ['-e', `
  const http = require('node:http'); let requests = 0, bytes = 0;
  const s = http.createServer((q, r) => { q.on('data', (c) => (bytes += c.length)); q.on('end', () => { requests++; r.writeHead(204).end(); }); });
  s.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: s.address().port })));
  process.on('SIGTERM', () => { console.log(JSON.stringify({ requests, bytes })); process.exit(0); });
`], { stdio: ['ignore', 'pipe', 'inherit'] });
const lines = [];
receiver.stdout.setEncoding('utf8');
receiver.stdout.on('data', (d) => lines.push(...d.split('\n').filter(Boolean)));
while (lines.length === 0) await new Promise((r) => setTimeout(r, 20));
const port = JSON.parse(lines.shift()).port;

// As in the server, a context's name and tag list are the same (interned, flat) strings every window.
const tagSets = Array.from({ length: 8 }, (_, i) => ['env:bench', `shard:${i}`]);
const width = String(n - 1).length;
const names = JSON.parse(JSON.stringify(Array.from({ length: n }, (_, k) => `bench.s12.${MIX[k % 20]}.${String(k).padStart(width, '0')}`)));

function makeBatch(windowNo) {
  const ts = Math.floor(Date.now() / 10_000) * 10 + windowNo * 10;
  const series = [], sketches = [], histogramSketches = [];
  for (let k = 0; k < n; k++) {
    const t = MIX[k % 20];
    const v = 100 + ((k * 7 + windowNo) % 900);
    const c = { metric: names[k], timestamp: ts, interval: 10, tags: tagSets[k % 8], host: '' };
    if (t === 'c') series.push({ ...c, type: 'rate', value: 0.1 });
    else if (t === 'g' || t === 's') series.push({ ...c, type: 'gauge', value: t === 's' ? 1 : v });
    else {
      const s = new AgentSketch();
      s.insert(v);
      if (t === 'ms') s.insert(v); // @0.5: counted twice
      if (t === 'd') sketches.push({ ...c, sketch: s.toData() });
      else histogramSketches.push({ ...c, sourceType: t, sketch: s.toData() });
    }
  }
  return { windowStartMs: ts * 1000, intervalMs: 10_000, series, sketches, histogramSketches, events: [], serviceChecks: [] };
}

async function step(label, fn) {
  const m = await measure(fn);
  const g = context.stats.gaugeValues();
  const fig = (of) => `${g.get(`prometheus_${of}_longest_slice_ms`)?.toFixed(1) ?? '-'} ms (${g.get(`prometheus_${of}_longest_slice_cpu_ms`)?.toFixed(1) ?? '-'} ms cpu)`;
  const slices = `longest slice: export ${fig('export')}, scrape ${fig('scrape')}`;
  console.log(`${label}: ${m.cpuMs.toFixed(0)} ms cpu, ${m.ms.toFixed(0)} ms wall, loop delay max ${m.maxDelayMs.toFixed(1)} ms, ${slices}${m.r === undefined ? '' : `, ${m.r}`}`);
}

const context = new ComponentContext('sink', 'sink-prometheus', silentLogger(), new ComponentStats('sink-prometheus'));
// NO_RW=1: the state update alone, for the breakdown.
const rw = process.env.NO_RW === undefined ? { remoteWrite: { url: `http://127.0.0.1:${port}/api/v1/write` } } : {};
const sink = new PrometheusSink({ listenPort: 0, maxSeries: 2 * n, ...rw }, { context });
await sink.start();
for (let wn = 0; wn < windows; wn++) {
  const b = makeBatch(wn);
  const r0 = context.stats.counter('remote_write_requests');
  await step(`window ${wn} export + remote write of ${n} contexts`, async () => {
    await sink.export(b);
    return `${context.stats.counter('remote_write_requests') - r0} requests, ${context.stats.counter('remote_write_samples')} samples so far`;
  });
}
if (scrapeToo) {
  await step('scrape text', async () => `${((await scrape(sink.boundPort, {})) / 1048576).toFixed(1)} MiB`);
  await step('scrape OpenMetrics', async () => `${((await scrape(sink.boundPort, { accept: 'application/openmetrics-text;version=1.0.0' })) / 1048576).toFixed(1)} MiB`);
}
await sink.shutdown(Date.now() + 1000);
receiver.kill('SIGTERM');
await new Promise((r) => receiver.on('exit', r));
console.log(`receiver: ${lines.join(' ')}; load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
