// Remote-write cost: one window of N contexts (2/3 counters, 1/3 distributions as histograms) exported with
// remote write to a null receiver in this process; prints the CPU of export + encode + send.
// Usage: node bench/remote-write.mjs [contexts]   (default 20000)
import { createServer } from 'node:http';
import { AgentSketch, ComponentContext, ComponentStats, silentLogger } from '@metrics-distributor/core';
import { PrometheusSink } from '../dist/index.js';
const srv = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(204).end()); });
await new Promise((r) => srv.listen(0, '127.0.0.1', r));
const n = Number(process.argv[2] ?? 20000);
const tagSets = Array.from({ length: 1000 }, (_, i) => ['env:prod', `shard:${i}`]);
const ts = Math.floor(Date.now() / 10000) * 10;
const series = [], sketches = [];
for (let i = 0; i < n; i++) {
  const c = { timestamp: ts, interval: 10, tags: tagSets[i % 1000], host: `h${Math.floor(i / 1000)}` };
  if (i % 3 === 0) { const s = new AgentSketch(); s.insert(0.01 * (i % 50)); sketches.push({ metric: `d${i % 30}`, ...c, sketch: s.toData() }); }
  else series.push({ metric: `c${i % 30}`, type: 'rate', value: 1, ...c });
}
const context = new ComponentContext('sink', 'sink-prometheus', silentLogger(), new ComponentStats('sink-prometheus'));
const sink = new PrometheusSink({ scrape: false, maxSeries: n * 2, remoteWrite: { url: `http://127.0.0.1:${srv.address().port}/w` } }, { context });
const c0 = process.cpuUsage();
await sink.export({ windowStartMs: ts * 1000, intervalMs: 10000, series, sketches, events: [], serviceChecks: [] });
const c = process.cpuUsage(c0);
console.log(`${n} contexts, ${context.stats.counter('remote_write_samples')} samples, ${context.stats.counter('remote_write_requests')} requests: ${((c.user + c.system) / 1000).toFixed(0)} ms cpu`);
await sink.shutdown(Date.now() + 100); srv.close();
