import t, { type Test } from 'tap';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SinkQueue,
  type BatchDelivery,
  type BatchItemKind,
  type HistogramSketchSeries,
  type MetricBatch,
  type ServiceCheck,
  type StatsdEvent,
} from '@metrics-distributor/core';
import { batch, dist, makeSink, point, sketchOf, testContext } from './helpers.js';
import { standIn, type WireSeries } from './rw-helpers.js';
import { PrometheusSink } from '../src/index.js';

/** A recent window: the retry path drops data older than its age limit (1 h). */
const W = Math.floor(Date.now() / 10_000) * 10_000 - 60_000;
const KINDS: readonly BatchItemKind[] = ['series', 'sketches', 'events', 'serviceChecks'];

/** A BatchDelivery that records every call; `done` answers from `doneBefore`. */
class FakeLedger implements BatchDelivery {
  readonly batchId = 'test-window';
  readonly calls: { op: 'delivered' | 'lost' | 'kept'; kind: BatchItemKind; n: number; indices?: number[] }[] = [];
  constructor(
    private readonly b: MetricBatch,
    private readonly doneBefore: Partial<Record<BatchItemKind, number[]>> = {},
    readonly replay = Object.keys(doneBefore).length > 0,
  ) {}
  done(kind: BatchItemKind, i: number): boolean {
    return this.doneBefore[kind]?.includes(i) === true;
  }
  delivered(kind: BatchItemKind, indices: ArrayLike<number>): void {
    this.calls.push({ op: 'delivered', kind, n: indices.length, indices: Array.from(indices) });
  }
  lost(kind: BatchItemKind, n: number): void {
    this.calls.push({ op: 'lost', kind, n });
  }
  kept(kind: BatchItemKind, n: number): void {
    this.calls.push({ op: 'kept', kind, n });
  }
  count(kind: BatchItemKind): number {
    return kind === 'series' ? this.b.series.length : kind === 'sketches' ? this.b.sketches.length : kind === 'events' ? this.b.events.length : this.b.serviceChecks.length;
  }
  /** Indices reported delivered, sorted (duplicates kept, so a double report shows). */
  deliveredOf(kind: BatchItemKind): number[] {
    return this.calls.filter((c) => c.op === 'delivered' && c.kind === kind).flatMap((c) => c.indices!).sort((a, b) => a - b);
  }
  sum(op: 'lost' | 'kept', kind: BatchItemKind): number {
    return this.calls.filter((c) => c.op === op && c.kind === kind).reduce((a, c) => a + c.n, 0);
  }
  /** Items reported, all kinds, against the items not done before. */
  reported(): number {
    return this.calls.reduce((a, c) => a + c.n, 0);
  }
  expected(): number {
    return KINDS.reduce((a, k) => a + this.count(k) - (this.doneBefore[k]?.length ?? 0), 0);
  }
}

/** Every item not done before reported exactly once: no index twice, none done before, counts add up. */
function exactlyOnce(t: Test, l: FakeLedger): void {
  for (const kind of KINDS) {
    const d = l.deliveredOf(kind);
    t.equal(new Set(d).size, d.length, `${kind}: no index delivered twice`);
    t.notOk(
      d.some((i) => l.done(kind, i)),
      `${kind}: nothing done before is reported again`,
    );
    t.equal(d.length + l.sum('lost', kind) + l.sum('kept', kind), l.count(kind) - doneCount(l, kind), `${kind}: each item reported once`);
  }
}

function doneCount(l: FakeLedger, kind: BatchItemKind): number {
  let n = 0;
  for (let i = 0; i < l.count(kind); i++) if (l.done(kind, i)) n++;
  return n;
}

const until = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
};

const event = (title: string): StatsdEvent => ({ title, text: 'x', timestampS: W / 1000, priority: 'normal', alertType: 'info', tags: [] });
const check = (name: string): ServiceCheck => ({ name, status: 0, timestampS: W / 1000, tags: [] });
const nameOf = (s: WireSeries): string => s.labels.find(([k]) => k === '__name__')![1];
const rw = (url: string, extra = {}) => ({ scrape: false, remoteWrite: { url, retryBaseMs: 20, retryMaxMs: 40, ...extra } });
const at = (b: MetricBatch, ms: number): MetricBatch => ({ ...b, windowStartMs: ms });

t.test('tracksDelivery: true with remote write, false for scrape alone', async (t) => {
  t.equal(makeSink().sink.tracksDelivery, false);
  t.equal(makeSink(rw('http://127.0.0.1:9/api/v1/write')).sink.tracksDelivery, true);
});

t.test('all delivered: each item reported once, events and checks at once, a histogram cut across requests only once both parts are in', async (t) => {
  const srv = await standIn();
  t.teardown(srv.close);
  const { sink } = makeSink({ ...rw(srv.url, { maxSamplesPerRequest: 3 }), buckets: [1, 10] });
  t.teardown(() => sink.shutdown(Date.now() + 500));
  const b = at(
    {
      ...batch([point('a', 'count', 1), point('g', 'gauge', 2), point('idle', 'count', 0), point('b', 'count', 3)], [dist('d', [0.5, 5, 50])]),
      events: [event('e1'), event('e2')],
      serviceChecks: [check('c1')],
    },
    W,
  );
  const l = new FakeLedger(b);
  t.equal((await sink.export(b, l)).code, 'success');
  await until(() => l.reported() === l.expected());
  exactlyOnce(t, l);
  t.same(l.deliveredOf('series'), [0, 1, 2, 3]);
  t.same(l.deliveredOf('sketches'), [0]);
  t.same(l.deliveredOf('events'), [0, 1]);
  t.same(l.deliveredOf('serviceChecks'), [0]);
  // a, g, b: 3 samples; d: 5 samples cut 3 + 2 across two requests.
  t.equal(srv.seen.length, 3);
  // Events, checks and the idle counter need nothing from the receiver: reported before any request.
  // Request 1 (a, g, b) reports those three; request 2 (d's first 3 samples) nothing; request 3 the sketch.
  t.same(
    l.calls.map((c) => [c.kind, c.indices]),
    [
      ['events', [0, 1]],
      ['serviceChecks', [0]],
      ['series', [2]],
      ['series', [0, 1, 3]],
      ['sketches', [0]],
    ],
  );
});

t.test('a 400 on one request: its items lost (once), the others delivered', async (t) => {
  const srv = await standIn((n) => ({ status: n === 1 ? 400 : 204 }));
  t.teardown(srv.close);
  const { sink } = makeSink(rw(srv.url, { maxSamplesPerRequest: 1 }));
  t.teardown(() => sink.shutdown(Date.now() + 500));
  const b = at(batch([point('a', 'count', 1), point('b', 'count', 2), point('c', 'count', 3)]), W);
  const l = new FakeLedger(b);
  t.equal((await sink.export(b, l)).code, 'failure');
  await until(() => l.reported() === l.expected());
  exactlyOnce(t, l);
  t.same(l.deliveredOf('series'), [0, 2]);
  t.equal(l.sum('lost', 'series'), 1);
  t.equal(l.sum('kept', 'series'), 0);
});

t.test('a histogram whose second part is refused is lost once; its first part does not make it delivered', async (t) => {
  const srv = await standIn((n) => ({ status: n === 1 ? 400 : 204 }));
  t.teardown(srv.close);
  const { sink } = makeSink({ ...rw(srv.url, { maxSamplesPerRequest: 3 }), buckets: [1, 10] });
  t.teardown(() => sink.shutdown(Date.now() + 500));
  const b = at(batch([], [dist('d', [0.5, 5, 50])]), W);
  const l = new FakeLedger(b);
  await sink.export(b, l);
  await until(() => l.reported() === l.expected());
  exactlyOnce(t, l);
  t.equal(srv.seen.length, 2);
  t.same(l.deliveredOf('sketches'), []);
  t.equal(l.sum('lost', 'sketches'), 1);
});

t.test('a 413 splits the request: items are reported once, after both halves', async (t) => {
  const srv = await standIn((n) => ({ status: n === 0 ? 413 : 204 }));
  t.teardown(srv.close);
  const { sink } = makeSink({ ...rw(srv.url), buckets: [1, 10] });
  t.teardown(() => sink.shutdown(Date.now() + 500));
  // One request of 1 + 5 + 1 samples; the halves (4 and 3) cut the histogram.
  const b = at(batch([point('a', 'count', 1), point('z', 'gauge', 1)], [dist('d', [0.5, 5, 50])]), W);
  const l = new FakeLedger(b);
  t.equal((await sink.export(b, l)).code, 'success');
  await until(() => l.reported() === l.expected());
  exactlyOnce(t, l);
  t.equal(srv.seen.length, 3, 'refused once, then two halves');
  t.same(l.deliveredOf('series'), [0, 1]);
  t.same(l.deliveredOf('sketches'), [0]);
});

t.test('503 then shutdown: the items are kept (the window stays on disk), not counted as lost', async (t) => {
  const srv = await standIn(() => ({ status: 503 }));
  t.teardown(srv.close);
  const { sink, context } = makeSink(rw(srv.url, { maxSamplesPerRequest: 1 }));
  const b = at({ ...batch([point('a', 'count', 1), point('b', 'gauge', 2)], [dist('d', [1])]), events: [event('e')] }, W);
  const l = new FakeLedger(b);
  t.equal((await sink.export(b, l)).code, 'success', 'parked for retry');
  t.equal(l.sum('kept', 'series') + l.sum('lost', 'series') + l.deliveredOf('series').length, 0, 'nothing reported while retrying');
  await sink.shutdown(Date.now() + 150);
  await until(() => l.reported() === l.expected());
  exactlyOnce(t, l);
  t.equal(l.sum('kept', 'series'), 2);
  t.equal(l.sum('kept', 'sketches'), 1);
  t.same(l.deliveredOf('events'), [0]);
  t.equal(context.stats.dropped('shutdown_unsent'), 0, 'not a loss: the next start replays it');
  // A window handed over after shutdown is kept too (what is not done yet).
  const b2 = at(batch([point('a', 'count', 1), point('b', 'count', 1)]), W + 10_000);
  const l2 = new FakeLedger(b2, { series: [0] });
  t.equal((await sink.export(b2, l2)).code, 'failure');
  exactlyOnce(t, l2);
  t.equal(l2.sum('kept', 'series'), 1);
  t.equal(context.stats.dropped('closed'), 0);
});

t.test('evicted from the retry buffer: lost, not kept (re-exporting it in this process would add its deltas twice)', async (t) => {
  const srv = await standIn(() => ({ status: 503 }));
  t.teardown(srv.close);
  const { sink, context } = makeSink(rw(srv.url, { retryBufferBytes: 1 }));
  t.teardown(() => sink.shutdown(Date.now()));
  const b = at(batch([point('a', 'count', 1)]), W);
  const l = new FakeLedger(b);
  t.equal((await sink.export(b, l)).code, 'success');
  await until(() => l.reported() === l.expected());
  exactlyOnce(t, l);
  t.equal(l.sum('lost', 'series'), 1);
  t.equal(l.sum('kept', 'series'), 0);
  t.equal(context.stats.dropped('retry_buffer_full'), 1);
});

t.test('a replay skips done items entirely: none of their samples is sent, and counters count only the undelivered windows', async (t) => {
  const srv = await standIn();
  t.teardown(srv.close);
  const { sink } = makeSink({ ...rw(srv.url), buckets: [1, 10] });
  t.teardown(() => sink.shutdown(Date.now() + 500));
  // Window 1: `a` and `d` were delivered before the crash, `b` was not; window 2 was not delivered at all.
  const w1 = at({ ...batch([point('a', 'count', 3), point('b', 'count', 5)], [dist('d', [5])]), events: [event('e1'), event('e2')] }, W);
  const l1 = new FakeLedger(w1, { series: [0], sketches: [0], events: [1] });
  await sink.export(w1, l1);
  await until(() => l1.reported() === l1.expected());
  exactlyOnce(t, l1);
  t.same(l1.deliveredOf('series'), [1]);
  t.same(l1.deliveredOf('events'), [0]);
  t.same(
    srv.seen.flatMap((r) => r.series.map(nameOf)),
    ['b_total'],
    'only the undelivered item is sent',
  );
  const w2 = at(batch([point('a', 'count', 4), point('b', 'count', 1)], [dist('d', [5])]), W + 10_000);
  const l2 = new FakeLedger(w2, {}, true);
  await sink.export(w2, l2);
  const w3 = at(batch([point('a', 'count', 10)]), W + 20_000);
  await sink.export(w3, new FakeLedger(w3));
  const acc = srv.accepted();
  // `a`'s 3 of window 1 reached Prometheus before the crash: after the reset it counts 4, then 14.
  t.same(acc.get('__name__=a_total'), [4, 14]);
  t.same(acc.get('__name__=b_total'), [5, 6]);
  t.same(acc.get('__name__=d_count'), [1], 'the delivered sketch was not applied either');
  t.same(
    srv.seen.map((r) => r.series[0]!.timestampMs),
    [W, W + 10_000, W + 20_000],
    'each window with its own timestamp',
  );
});

/** A context's histogram as core emits it with `histogramSketches`: its aggregate series back to back, and its sketch. */
function histContext(metric: string, host: string, tags: string[], values: number[], withSketch = true): { series: ReturnType<typeof point>[]; sketch: HistogramSketchSeries | undefined } {
  const extra = { host, tags, aggregateOf: 'ms' as const };
  return {
    series: [point(`${metric}.max`, 'gauge', Math.max(...values), extra), point(`${metric}.count`, 'rate', values.length / 10, extra), point(`${metric}.95percentile`, 'gauge', Math.max(...values), extra)],
    sketch: withSketch ? { metric, sourceType: 'ms', timestamp: W / 1000, interval: 10, host, tags, sketch: sketchOf(values) } : undefined,
  };
}

t.test('histogram sketches are recorded on their aggregate series items; a replay skips those whose items are done', async (t) => {
  const srv = await standIn();
  t.teardown(srv.close);
  const { sink } = makeSink({ ...rw(srv.url, { maxSamplesPerRequest: 4 }), buckets: [0.1, 1] });
  t.teardown(() => sink.shutdown(Date.now() + 500));
  const x = histContext('lat', 'h1', ['env:a'], [50, 500]);
  const empty = histContext('lat', 'h1', ['env:b'], [1], false); // aggregates but no sketch (an empty histogram)
  const y = histContext('lat', 'h2', ['env:a'], [5]);
  const make = (ms: number): MetricBatch => ({
    ...batch([point('c', 'count', 1), ...x.series, ...empty.series, point('g', 'gauge', 1), ...y.series]),
    histogramSketches: [x.sketch!, y.sketch!],
    windowStartMs: ms,
  });
  const b = make(W);
  const l = new FakeLedger(b);
  t.equal((await sink.export(b, l)).code, 'success');
  await until(() => l.reported() === l.expected());
  exactlyOnce(t, l);
  t.same(l.deliveredOf('series'), Array.from({ length: 11 }, (_, i) => i));
  // The empty histogram's aggregates need nothing from the receiver: in the first call, with nothing else.
  t.same(l.calls[0], { op: 'delivered', kind: 'series', n: 3, indices: [4, 5, 6] });
  const sent = srv.seen.flatMap((r) => r.series.map(nameOf));
  t.notOk(
    sent.some((n) => n.startsWith('lat_max') || n.startsWith('lat_count_') || n.includes('percentile')),
    'aggregate gauges are not sent',
  );
  t.equal(sent.filter((n) => n === 'lat_count').length, 2, 'both histograms sent');

  // Replay: x's aggregate items (1..3) done, y's (8..10) not.
  const before = srv.seen.length;
  const r = make(W + 10_000);
  const lr = new FakeLedger(r, { series: [0, 1, 2, 3] });
  await sink.export(r, lr);
  await until(() => lr.reported() === lr.expected());
  exactlyOnce(t, lr);
  const replayed = srv.seen.slice(before).flatMap((q) => q.series);
  const hostOf = (s: WireSeries) => s.labels.find(([k]) => k === 'host')?.[1];
  t.notOk(
    replayed.some((s) => nameOf(s).startsWith('lat') && hostOf(s) === 'h1'),
    'no sample of the done histogram',
  );
  t.ok(
    replayed.some((s) => nameOf(s) === 'lat_count' && hostOf(s) === 'h2'),
    'the other histogram is sent',
  );
  t.notOk(
    replayed.some((s) => nameOf(s) === 'c_total'),
    'nor of the done counter',
  );
});

t.test('histogram sketches without aggregate items (aggregates configured empty) are sent, not recorded, and the window still completes', async (t) => {
  const srv = await standIn();
  t.teardown(srv.close);
  const { sink } = makeSink(rw(srv.url));
  t.teardown(() => sink.shutdown(Date.now() + 500));
  const x = histContext('lat', 'h1', [], [50]);
  const b: MetricBatch = { ...batch([point('c', 'count', 1)]), histogramSketches: [x.sketch!], windowStartMs: W };
  const l = new FakeLedger(b);
  await sink.export(b, l);
  await until(() => l.reported() === l.expected());
  exactlyOnce(t, l);
  t.ok(srv.seen.flatMap((r) => r.series.map(nameOf)).includes('lat_count'));
});

t.test('through SinkQueue with a data directory: after a crash each undelivered item arrives once, a delivered window never again', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'md-prom-ledger-'));
  // First run: the receiver takes the first request only, then is down.
  const down = await standIn((n) => ({ status: n === 0 ? 204 : 503 }));
  t.teardown(down.close);
  const opts = (url: string) => ({ scrape: false, remoteWrite: { url, maxSamplesPerRequest: 1, retryBaseMs: 60_000, retryMaxMs: 60_000 } });
  const sink1 = new PrometheusSink(opts(down.url), { context: testContext() });
  const q1 = new SinkQueue(sink1, testContext(), { disk: { dir, maxBytes: 1 << 20 } });
  // Window 1: `a` goes in the first (accepted) request, `b` in the second (refused: parked).
  q1.push(at(batch([point('a', 'count', 10), point('b', 'count', 1)]), W));
  await until(() => down.seen.length === 2);
  // Window 2: the receiver is known down, both requests are parked.
  q1.push(at(batch([point('a', 'count', 2), point('b', 'count', 2)]), W + 10_000));
  await until(() => sink1['remote']!.bufferedPayloads === 3);
  t.equal(sink1['remote']!.bufferedPayloads, 3, 'parked in the memory retry buffer, which a crash loses');
  // The delivered record of `a` is written off the event loop: give it a moment, then "crash" (no shutdown).
  await new Promise((r) => setTimeout(r, 100));

  const up = await standIn();
  t.teardown(up.close);
  const sink2 = new PrometheusSink(opts(up.url), { context: testContext() });
  const q2 = new SinkQueue(sink2, testContext(), { disk: { dir, maxBytes: 1 << 20 } });
  await q2.opened();
  await until(() => up.seen.length === 3);
  await new Promise((r) => setTimeout(r, 100));
  const got = up.seen.flatMap((r) => r.series.map((s) => `${nameOf(s)}@${s.timestampMs - W}=${s.value}`));
  t.same(got.sort(), ['a_total@10000=2', 'b_total@0=1', 'b_total@10000=3'], 'each undelivered item once, with its window timestamp; `a` of window 1 not again');
  await q2.shutdown(Date.now() + 1000);
  await sink2.shutdown(Date.now() + 500);

  // A third start finds nothing left to send.
  const again = await standIn();
  t.teardown(again.close);
  const sink3 = new PrometheusSink(opts(again.url), { context: testContext() });
  const q3 = new SinkQueue(sink3, testContext(), { disk: { dir, maxBytes: 1 << 20 } });
  await q3.opened();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(again.seen.length, 0, 'every window settled');
  t.equal(q3.depth, 0);
  await q3.shutdown(Date.now() + 500);
  await sink3.shutdown(Date.now() + 200);
  // The abandoned first run: shut down last, so nothing it does can reach the directory's assertions.
  await sink1.shutdown(Date.now());
  await q1.shutdown(Date.now());
});
