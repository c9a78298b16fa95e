// Export and scrape cost of the Prometheus sink: a window of N contexts (70% counters, 20% gauges,
// 10% distributions of 20 values) exported into the state, then rendered in both formats. Reports
// time, bytes and the worst event-loop delay seen meanwhile (a 1 ms timer), per size. Scrapes are
// real HTTP requests to the sink's listener from the same process.
// Usage: node bench/scrape.mjs [contexts...]   (default 10000 200000)
import { AgentSketch, ComponentContext, ComponentStats, silentLogger } from '@metrics-distributor/core';
import { PrometheusSink } from '../dist/index.js';
import { measure, scrape } from './common.mjs';

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
if (sizes.length === 0) sizes.push(10_000, 200_000);

function makeBatch(n, windowNo) {
  const series = [];
  const sketches = [];
  const ts = 1_700_000_000 + windowNo * 10;
  const tagSets = [];
  for (let i = 0; i < 1000; i++) tagSets.push(['env:prod', `svc:svc-${i % 50}`, `shard:${i}`]);
  for (let i = 0; i < n; i++) {
    const tags = tagSets[i % 1000];
    const host = `host-${Math.floor(i / 1000)}`;
    const r = i % 10;
    if (r < 7) series.push({ metric: `app.requests.c${i % 97}`, type: 'rate', timestamp: ts, value: (i % 13) / 10, interval: 10, tags, host });
    else if (r < 9) series.push({ metric: `app.queue.g${i % 89}`, type: 'gauge', timestamp: ts, value: i, interval: 10, tags, host });
    else {
      const s = new AgentSketch();
      for (let k = 0; k < 20; k++) s.insert(0.001 * (1 + ((i * 7 + k * 13) % 997)));
      sketches.push({ metric: `app.latency.d${i % 23}`, timestamp: ts, interval: 10, tags, host, sketch: s.toData() });
    }
  }
  return { windowStartMs: ts * 1000, intervalMs: 10_000, series, sketches, events: [], serviceChecks: [] };
}

for (const n of sizes) {
  const context = new ComponentContext('sink', 'sink-prometheus', silentLogger(), new ComponentStats('sink-prometheus'));
  const sink = new PrometheusSink({ listenPort: 0, maxSeries: n + 10 }, { context });
  await sink.start();
  const b1 = makeBatch(n, 0);
  const b2 = makeBatch(n, 1);
  const first = await measure(() => sink.export(b1));
  const second = await measure(() => sink.export(b2));
  const port = sink.boundPort;
  const text = await measure(() => scrape(port, {}));
  const om = await measure(() => scrape(port, { accept: 'application/openmetrics-text;version=1.0.0' }));
  const gz = await measure(() => scrape(port, { 'accept-encoding': 'gzip' }));
  const mb = (bytes) => (bytes / 1048576).toFixed(1);
  const f = (m) => `${m.ms.toFixed(0)} ms wall / ${m.cpuMs.toFixed(0)} ms cpu, loop delay max ${m.maxDelayMs.toFixed(1)} ms`;
  console.log(`${n} contexts -> ${sink.seriesCount} series`);
  console.log(`  export, first window (creates series): ${f(first)}`);
  console.log(`  export, next window: ${f(second)}; ${(second.cpuMs / (n / 10_000)).toFixed(1)} ms cpu per 10k`);
  console.log(`  scrape text 0.0.4: ${mb(text.r)} MiB, ${f(text)}`);
  console.log(`  scrape OpenMetrics: ${mb(om.r)} MiB, ${f(om)}`);
  console.log(`  scrape text gzip: ${mb(gz.r)} MiB, ${f(gz)} (compression on the libuv pool is not in the cpu figure of the loop)`);
  await sink.shutdown(Date.now());
}
