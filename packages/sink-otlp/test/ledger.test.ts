/**
 * With `--data-dir`, the sink reports every point of a window to its ledger exactly once (delivered,
 * lost or kept), and a replay sends only what the receiver did not acknowledge. Unit cases use a
 * recording ledger; the last case goes through core's real SinkQueue and data directory.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { SinkQueue, type BatchDelivery, type BatchItemKind, type MetricBatch } from '@metrics-distributor/core';
import { OtlpSink, type OtlpSinkOptions } from '../src/index.js';
import { startCollector, testContext, until, type Received, type Reply } from './collector.js';
import { metricsOf, partialSuccessBody } from './decode.js';
import { series, sketch, windowOf } from './helpers.js';

/** A ledger that records what the sink reports; `done` holds items delivered "before a restart". */
class RecordingLedger implements BatchDelivery {
  readonly batchId = 'test-1';
  readonly delivered_: Record<BatchItemKind, number[]> = { series: [], sketches: [], events: [], serviceChecks: [] };
  readonly lost_: Record<BatchItemKind, number> = { series: 0, sketches: 0, events: 0, serviceChecks: 0 };
  readonly kept_: Record<BatchItemKind, number> = { series: 0, sketches: 0, events: 0, serviceChecks: 0 };
  constructor(
    readonly replay = false,
    private readonly before: Partial<Record<BatchItemKind, number[]>> = {},
  ) {}
  done(kind: BatchItemKind, i: number): boolean {
    return this.before[kind]?.includes(i) === true;
  }
  delivered(kind: BatchItemKind, indices: ArrayLike<number>): void {
    this.delivered_[kind].push(...Array.from(indices));
  }
  lost(kind: BatchItemKind, n: number): void {
    this.lost_[kind] += n;
  }
  kept(kind: BatchItemKind, n: number): void {
    this.kept_[kind] += n;
  }
  /** Items reported, all kinds and outcomes together. */
  reported(): number {
    const kinds: BatchItemKind[] = ['series', 'sketches', 'events', 'serviceChecks'];
    return kinds.reduce((n, k) => n + this.delivered_[k].length + this.lost_[k] + this.kept_[k], 0);
  }
  sortedDelivered(kind: BatchItemKind): number[] {
    return [...this.delivered_[kind]].sort((a, b) => a - b);
  }
}

/** Seven series, two sketches and an event: 10 items, in requests of 3 points. */
function window(): MetricBatch {
  const b = windowOf(
    Array.from({ length: 7 }, (_, i) => series(`s${i}`, 'count', i + 1)),
    [sketch('d0', [1, 2, 3]), sketch('d1', [4, 5])],
  );
  return { ...b, events: [{ title: 'deploy', text: 'v2', timestampS: b.windowStartMs / 1000, priority: 'normal', alertType: 'info', tags: [], host: 'web-1' }] };
}

async function setup(t: Test, reply: (r: Received, index: number) => Reply, opts: Partial<OtlpSinkOptions> = {}) {
  const col = await startCollector(reply);
  t.teardown(col.close);
  const context = testContext();
  const sink = new OtlpSink({ endpoint: col.endpoint, retryBaseMs: 20, retryMaxMs: 40, maxPointsPerRequest: 3, ...opts }, context);
  t.teardown(() => sink.shutdown(Date.now() + 200));
  const names = () => col.accepted.flatMap((r) => metricsOf(r.request).map((m) => m.metric.name)).sort();
  return { col, sink, stats: context.stats, names };
}

t.test('every point delivered: each item of every kind reported delivered once', async (t) => {
  const { sink, names } = await setup(t, () => ({ status: 200 }));
  const ledger = new RecordingLedger();
  t.same(await sink.export(window(), ledger), { code: 'success' });
  t.same(ledger.sortedDelivered('series'), [0, 1, 2, 3, 4, 5, 6]);
  t.same(ledger.sortedDelivered('sketches'), [0, 1]);
  t.same(ledger.sortedDelivered('events'), [0], 'an event has nothing to send: settled at once');
  t.equal(ledger.reported(), 10, 'nothing reported twice');
  t.same(names(), ['d0', 'd1', 's0', 's1', 's2', 's3', 's4', 's5', 's6']);
});

t.test('a request refused for good: its points lost, the others delivered', async (t) => {
  const { sink } = await setup(t, (_r, i) => (i === 1 ? { status: 400, body: 'no' } : { status: 200 }));
  const ledger = new RecordingLedger();
  t.equal((await sink.export(window(), ledger)).code, 'failure');
  t.equal(ledger.lost_.series, 3, 'the second request: series 3, 4, 5');
  t.same(ledger.sortedDelivered('series'), [0, 1, 2, 6]);
  t.same(ledger.sortedDelivered('sketches'), [0, 1]);
  t.equal(ledger.reported(), 10);
});

t.test('a partial success: the whole request is done (the answer does not say which points), the refused counted as dropped', async (t) => {
  const { sink, stats } = await setup(t, () => ({ status: 200, body: partialSuccessBody(1, 'bad point') }));
  const ledger = new RecordingLedger();
  await sink.export(window(), ledger);
  t.equal(stats.dropped('partial_success'), 3, 'one point of each of the 3 requests');
  t.same(ledger.sortedDelivered('series'), [0, 1, 2, 3, 4, 5, 6], 'no accepted point can be sent again by a later export');
  t.same(ledger.sortedDelivered('sketches'), [0, 1]);
  t.equal(ledger.lost_.series + ledger.lost_.sketches, 0);
  t.equal(ledger.reported(), 10);
});

t.test('a point that cannot be sent (non-finite) is dropped, counted once, and recorded done', async (t) => {
  const { sink, stats } = await setup(t, () => ({ status: 200 }));
  const b = window();
  const bad = { ...b, series: b.series.map((s, i) => (i === 2 ? { ...s, type: 'gauge' as const, value: Number.NaN } : s)) };
  const ledger = new RecordingLedger();
  await sink.export(bad, ledger);
  t.equal(stats.dropped('invalid_value'), 1);
  t.same(ledger.sortedDelivered('series'), [0, 1, 2, 3, 4, 5, 6], 'so a later export does not drop and count it again');
  t.equal(ledger.reported(), 10);
});

t.test('a replay sends only the items not delivered before', async (t) => {
  const { sink, col, names } = await setup(t, () => ({ status: 200 }));
  const ledger = new RecordingLedger(true, { series: [0, 1, 2, 5], sketches: [1], events: [0] });
  t.same(await sink.export(window(), ledger), { code: 'success' });
  t.same(names(), ['d0', 's3', 's4', 's6'], 'nothing delivered earlier is sent again');
  t.same(ledger.sortedDelivered('series'), [3, 4, 6]);
  t.same(ledger.sortedDelivered('sketches'), [0]);
  t.equal(col.accepted.length, 2, '4 points in requests of 3');
});

t.test('413 split into halves: each half reports its own points', async (t) => {
  const { sink } = await setup(t, (r) => (r.points > 1 ? { status: 413 } : { status: 200 }));
  const ledger = new RecordingLedger();
  t.same(await sink.export(window(), ledger), { code: 'success' });
  t.same(ledger.sortedDelivered('series'), [0, 1, 2, 3, 4, 5, 6]);
  t.same(ledger.sortedDelivered('sketches'), [0, 1]);
  t.equal(ledger.reported(), 10);
});

t.test('receiver down at shutdown: the points are kept (the window stays on disk), not counted lost', async (t) => {
  const { sink, stats } = await setup(t, () => ({ status: 503 }));
  const ledger = new RecordingLedger();
  t.same(await sink.export(window(), ledger), { code: 'success' }, 'parked for retry');
  await sink.shutdown(Date.now() + 200);
  t.equal(ledger.kept_.series + ledger.kept_.sketches, 9);
  t.equal(ledger.lost_.series + ledger.lost_.sketches, 0);
  t.equal(stats.dropped('shutdown_unsent'), 0, 'not a loss: the next start sends them');
  t.equal(ledger.reported(), 10);
  // A window exported after shutdown has started is kept too.
  const late = new RecordingLedger();
  await sink.export(window(), late);
  t.equal(late.kept_.series + late.kept_.sketches, 9);
});

t.test('through the disk buffer: down, shutdown, restart with the receiver up: every point once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'md-otlp-'));
  let up = false;
  const col = await startCollector(() => ({ status: up ? 200 : 503 }));
  t.teardown(col.close);
  const open = (): { sink: OtlpSink; queue: SinkQueue } => {
    const context = testContext();
    const sink = new OtlpSink({ endpoint: col.endpoint, retryBaseMs: 20, retryMaxMs: 40, maxPointsPerRequest: 3 }, context);
    return { sink, queue: new SinkQueue(sink, context, { disk: { dir, maxBytes: 1 << 20 } }) };
  };
  const first = open();
  await first.queue.opened();
  const w1 = window();
  const w2 = { ...window(), windowStartMs: w1.windowStartMs - 10_000 };
  await first.queue.push(w2);
  await first.queue.push(w1);
  await until(() => col.received.length >= 6);
  await first.queue.shutdown(Date.now() + 300);
  t.equal(col.accepted.length, 0, 'nothing accepted while down');
  up = true;
  const second = open();
  await second.queue.opened();
  await until(() => col.accepted.reduce((n, r) => n + r.points, 0) >= 18);
  await new Promise((r) => setTimeout(r, 200));
  const points = col.accepted.flatMap((r) => metricsOf(r.request).map((m) => m.metric.name));
  t.equal(points.length, 18, 'two windows of 9 points, each once');
  await second.queue.shutdown(Date.now() + 1000);
  // A third start finds nothing left to send.
  const before = col.received.length;
  const third = open();
  await third.queue.opened();
  await new Promise((r) => setTimeout(r, 200));
  t.equal(col.received.length, before, 'settled windows are not replayed');
  await third.queue.shutdown(Date.now() + 500);
});
