/**
 * A 200,000-context window must not hold the event loop: export, the scrape's render and remote
 * write's encode all give it turns. Each test counts a chain of setImmediate callbacks running
 * meanwhile; one synchronous pass would leave that count at zero or one. No timings are asserted.
 */
import t from 'tap';
import type { MetricBatch, Series } from '@metrics-distributor/core';
import { makeSink } from './helpers.js';
import { standIn } from './rw-helpers.js';

const N = 200_000;
const WINDOW = Math.floor(Date.now() / 10_000) * 10_000;

/** N contexts: counters and gauges over 1000 interned tag lists and 200 hosts, as core hands them over. */
function bigWindow(n = N): MetricBatch {
  const tagSets = Array.from({ length: 1000 }, (_, i) => ['env:prod', `shard:${i}`]);
  const series: Series[] = [];
  for (let i = 0; i < n; i++) {
    const common = { timestamp: WINDOW / 1000, interval: 10, tags: tagSets[i % 1000]!, host: `host-${Math.floor(i / 1000)}` };
    series.push(i % 2 === 0 ? { metric: `app.c${i % 50}`, type: 'rate', value: 0.1, ...common } : { metric: `app.g${i % 50}`, type: 'gauge', value: i, ...common });
  }
  return { windowStartMs: WINDOW, intervalMs: 10_000, series, sketches: [], events: [], serviceChecks: [] };
}

/** Runs `work` while counting event-loop turns (a self-rescheduling setImmediate). */
async function turnsDuring(work: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  let running = true;
  const spin = (): void => {
    if (!running) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  // The first turn has not run yet: anything counted is a turn the work gave up.
  await work();
  running = false;
  return turns;
}

t.test('exporting a 200k-context window yields to the event loop, and so does scraping it', async (t) => {
  const { sink } = makeSink({ maxSeries: N });
  const b = bigWindow();
  const first = await turnsDuring(() => sink.export(b));
  t.equal(sink.seriesCount, N);
  t.ok(first > 20, `export of new series gave ${first} turns`);
  const second = await turnsDuring(() => sink.export(b));
  t.ok(second > 20, `export of existing series gave ${second} turns`);
  let text = '';
  const render = await turnsDuring(async () => (text = await sink.renderText('text')));
  t.ok(render > 20, `render gave ${render} turns`);
  t.match(text, /^app_c0_total\{host="host-0",env="prod",shard="0"\} 2$/m, 'and rendered the two windows');
});

t.test('remote write of a 50k-context window yields between requests and splits by samples', async (t) => {
  const srv = await standIn();
  t.teardown(srv.close);
  // A quarter of the size keeps the test in seconds: each request is a real HTTP round trip.
  const n = N / 4;
  const { sink, context } = makeSink({ scrape: false, maxSeries: n, remoteWrite: { url: srv.url, maxSamplesPerRequest: 5000 } });
  const turns = await turnsDuring(() => sink.export(bigWindow(n)));
  t.equal(srv.seen.length, n / 5000, 'one request per 5000 samples');
  t.equal(context.stats.counter('remote_write_samples'), n);
  t.ok(turns > 20, `export + remote write gave ${turns} turns`);
});
