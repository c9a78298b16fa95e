// Export cost of the Graphite sink: a window of N contexts (70% counters, 20% gauges, 10% timers as
// the aggregator's five histogram series) written to a local line receiver that reads and discards
// (carbon up), then to a closed port (carbon away: everything parks in, or falls out of, the retry
// buffer). Reports time, lines, bytes, the worst event-loop delay seen meanwhile and RSS, per size.
// Usage: node bench/export.mjs [contexts...]   (default 10000 200000)
import { createServer } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ComponentContext, ComponentStats, silentLogger } from '@metrics-distributor/core';
import { GraphiteSink } from '../dist/index.js';

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
if (sizes.length === 0) sizes.push(10_000, 200_000);

function makeBatch(n) {
  const start = Math.floor(Date.now() / 10_000) * 10_000;
  const ts = start / 1000;
  const tagSets = [];
  for (let i = 0; i < 1000; i++) tagSets.push(['env:prod', `svc:svc-${i % 50}`, `shard:${i}`]);
  const series = [];
  const suffixes = ['.max', '.median', '.avg', '.count', '.95percentile'];
  for (let i = 0; i < n; i++) {
    const tags = tagSets[i % 1000];
    const host = `host-${Math.floor(i / 1000)}`;
    const r = i % 10;
    if (r < 7) series.push({ metric: `app.requests.c${i % 97}`, type: 'rate', timestamp: ts, value: (i % 13) / 10, interval: 10, tags, host });
    else if (r < 9) series.push({ metric: `app.queue.g${i % 89}`, type: 'gauge', timestamp: ts, value: i, interval: 10, tags, host });
    else for (const s of suffixes) series.push({ metric: `app.latency.t${i % 23}${s}`, type: s === '.count' ? 'rate' : 'gauge', timestamp: ts, value: 1 + (i % 7), interval: 10, tags, host });
  }
  return { windowStartMs: start, intervalMs: 10_000, series, sketches: [], events: [], serviceChecks: [] };
}

const server = createServer((s) => s.resume());
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const upPort = server.address().port;

for (const n of sizes) {
  for (const [mode, port] of [['up', upPort], ['away', 1]]) {
    const batch = makeBatch(n);
    const ctx = new ComponentContext('sink', 'sink-graphite', silentLogger(), new ComponentStats('sink-graphite'));
    const sink = new GraphiteSink({ port, retryBaseMs: 60_000, hostTag: true }, ctx);
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const t0 = performance.now();
    const result = await sink.export(batch);
    const ms = performance.now() - t0;
    h.disable();
    let dropped = 0;
    for (const v of ctx.stats.dropReasons().values()) dropped += v;
    console.log(
      `contexts=${n} carbon=${mode} result=${result.code} export_ms=${ms.toFixed(0)} lines=${ctx.stats.received} sent=${ctx.stats.sent} bytes=${ctx.stats.bytes} ` +
        `retry_buffer_bytes=${sink.retryBufferBytes} dropped=${dropped} max_loop_delay_ms=${(h.max / 1e6).toFixed(1)} rss_mib=${(process.memoryUsage().rss / 2 ** 20).toFixed(0)}`,
    );
    await sink.shutdown(Date.now() + 100);
  }
}
server.close();
