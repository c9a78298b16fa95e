/**
 * A 200,000-context window must not hold the event loop: export, the scrape's render and remote
 * write's encode all give it turns. Each test counts a chain of setImmediate callbacks running
 * meanwhile; one synchronous pass would leave that count at zero or one. No timings are asserted.
 */
import t from 'tap';
import { request } from 'node:http';
import type { HistogramSketchSeries, MetricBatch, Series, SketchSeries } from '@metrics-distributor/core';
import { encodeTimeSeries, parseLabels } from '../src/index.js';
import { makeSink, sketchOf } from './helpers.js';
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

/**
 * A window of every kind: counters, gauges, distributions, ms timers and h histograms, over tag lists
 * with an upper-case label (sorts before `__name__`), an escaped value and a renamed `le` tag.
 */
function mixedWindow(n: number, windowNo = 0): MetricBatch {
  const tagSets = [['env:prod', 'Zone:eu'], ['path:/a"b\\c', 'shard:1'], [], ['le:x', 'quantile:y', 'ünï:cödé']];
  const start = WINDOW + windowNo * 10_000;
  const series: Series[] = [];
  const sketches: SketchSeries[] = [];
  const histogramSketches: HistogramSketchSeries[] = [];
  for (let i = 0; i < n; i++) {
    const c = { timestamp: start / 1000, interval: 10, tags: tagSets[i % 4]!, host: i % 3 === 0 ? '' : `h${i % 7}` };
    const r = i % 5;
    if (r === 0) series.push({ metric: `c.${i % 400}`, type: 'rate', value: 0.1 * (1 + (i % 9)), ...c });
    else if (r === 1) series.push({ metric: `g.${i % 400}`, type: 'gauge', value: i * 1.5 - 7, ...c });
    else {
      const sketch = sketchOf(Array.from({ length: 1 + (i % 4) }, (_, k) => 0.001 * ((i * 13 + k * 7) % 20_000)));
      if (r === 2) sketches.push({ metric: `d.${i % 400}`, sketch, ...c });
      else histogramSketches.push({ metric: `t${r}.${i % 400}`, sourceType: r === 3 ? 'ms' : 'h', sketch, ...c });
    }
  }
  return { windowStartMs: start, intervalMs: 10_000, series, sketches, histogramSketches, events: [], serviceChecks: [] };
}

/** Samples of a text exposition by `name` and sorted label pairs. */
function expositionSamples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.lastIndexOf(' ');
    const name = brace < 0 ? line.slice(0, space) : line.slice(0, brace);
    const labels = brace < 0 ? [] : parseLabels(line.slice(brace + 1, line.lastIndexOf('}')));
    out.set(sampleKey([['__name__', name], ...labels]), Number(line.slice(space + 1)));
  }
  return out;
}

function sampleKey(labels: readonly (readonly [string, string])[]): string {
  return JSON.stringify([...labels].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

t.test('remote write of a window spanning many slices and requests: exact request sizes, the plain encoder\'s bytes, the exposition\'s samples', async (t) => {
  const srv = await standIn();
  t.teardown(srv.close);
  const n = 12_000;
  // 997 cuts histograms (14 samples) across requests.
  const { sink, context } = makeSink({ maxSeries: n, remoteWrite: { url: srv.url, maxSamplesPerRequest: 997 } });
  const first = mixedWindow(n, 0);
  await sink.export(first);
  const before = srv.seen.length;
  const turns = await turnsDuring(() => sink.export(mixedWindow(n, 1)));
  t.ok(turns > 20, `export + remote write gave ${turns} turns`);
  const longest = context.stats.gaugeValues().get('prometheus_export_longest_slice_ms');
  t.ok(longest !== undefined && longest > 0, `the longest slice is reported (${longest} ms)`);
  const reqs = srv.seen.slice(before);
  const total = reqs.reduce((a, r) => a + r.series.length, 0);
  t.ok(reqs.length > 10, `${reqs.length} requests`);
  t.same(reqs.slice(0, -1).map((r) => r.series.length), reqs.slice(0, -1).map(() => 997), 'every request but the last holds exactly the limit');
  t.ok(reqs.at(-1)!.series.length <= 997 && reqs.at(-1)!.series.length > 0);
  let sameBytes = 0;
  for (const r of reqs) if (Buffer.concat(r.series.map((s) => encodeTimeSeries(s.labels, s.value, s.timestampMs))).equals(r.raw)) sameBytes++;
  t.equal(sameBytes, reqs.length, 'each body is byte for byte what the plain one-sample encoder gives for its samples, in order');
  const exposed = expositionSamples(await sink.renderText('text'));
  t.equal(total, exposed.size, 'as many samples as the exposition has (every series was updated)');
  let same = 0;
  const diffs: string[] = [];
  for (const r of reqs) {
    for (const s of r.series) {
      const key = sampleKey(s.labels);
      if (exposed.get(key) === s.value && s.timestampMs === first.windowStartMs + 10_000) same++;
      else if (diffs.length < 3) diffs.push(`${key}: ${s.value} vs ${exposed.get(key)}`);
    }
  }
  t.equal(same, total, `every sample has the exposition's value and the window's timestamp ${diffs.join('; ')}`);
});

/** One GET of the sink's exposition over HTTP. */
function get(port: number, accept?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', headers: accept === undefined ? {} : { accept }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('a scrape rendered in many slices and streamed in chunks is the one-go render, byte for byte, in both formats', async (t) => {
  const n = 30_000;
  // A turn every 500 series at least, however fast the machine renders.
  const sliced = makeSink({ maxSeries: n, renderYieldEvery: 500 });
  const oneGo = makeSink({ maxSeries: n, renderYieldEvery: 0 });
  for (const w of [0, 1]) {
    await sliced.sink.export(mixedWindow(n, w));
    await oneGo.sink.export(mixedWindow(n, w));
  }
  await sliced.sink.start();
  t.teardown(() => sliced.sink.shutdown(Date.now() + 1000));
  const port = sliced.sink.boundPort!;
  for (const [format, accept] of [['text', undefined], ['openmetrics', 'application/openmetrics-text; version=1.0.0']] as const) {
    const whole = await oneGo.sink.renderText(format);
    let body = '';
    const turns = await turnsDuring(async () => (body = await get(port, accept)));
    const series = sliced.sink.seriesCount;
    t.ok(turns >= Math.floor(series / 500), `${format}: the scrape of ${series} series gave ${turns} turns`);
    t.ok(whole.length > 1_000_000, `${format}: ${whole.length} characters, many chunks`);
    t.ok(body === whole, `${format}: the streamed scrape equals the one-go render`);
    const longest = sliced.context.stats.gaugeValues().get('prometheus_scrape_longest_slice_ms');
    t.ok(longest !== undefined && longest > 0, `${format}: the longest slice is reported (${longest} ms)`);
  }
});
