// With `--data-dir`: a window leaves the disk only once its lines were written to carbon; with carbon
// away at shutdown it stays on disk and the next start writes it. Against a stand-in carbon on port 0.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SinkQueue, type BatchDelivery, type BatchItemKind } from '@metrics-distributor/core';
import { GraphiteSink } from '../src/index.js';
import { StandIn, batch, point, testContext, until } from './helpers.js';

const FAST = { retryBaseMs: 50, retryMaxMs: 200, connectTimeoutMs: 1000 };

/** A window of `n` gauges `g<w>_<i>` and one event, starting now-ish. */
function window(w: number, n: number): ReturnType<typeof batch> {
  const start = (Math.floor(Date.now() / 10_000) - 10 + w) * 10_000;
  return batch(start, Array.from({ length: n }, (_, i) => point(start, `g${w}_${i}`, 'gauge', i)), {
    events: [{ title: 'deploy', text: 'v2', timestampS: start / 1000, priority: 'normal', alertType: 'info', tags: [] }],
  });
}

/** Records what the sink reports, by outcome. */
function recorder(): BatchDelivery & { delivered_: Record<string, number>; kept_: Record<string, number>; lost_: number } {
  const delivered_: Record<string, number> = {};
  const kept_: Record<string, number> = {};
  const r = {
    batchId: 'b',
    replay: false,
    delivered_,
    kept_,
    lost_: 0,
    done: () => false,
    delivered: (kind: BatchItemKind, idx: ArrayLike<number>) => void (delivered_[kind] = (delivered_[kind] ?? 0) + idx.length),
    lost: (_k: BatchItemKind, n: number) => void (r.lost_ += n),
    kept: (kind: BatchItemKind, n: number) => void (kept_[kind] = (kept_[kind] ?? 0) + n),
  };
  return r;
}

t.test('lines written: the whole window is settled as delivered, once, after the last write', async (t) => {
  const carbon = await new StandIn().start();
  t.teardown(() => carbon.stop());
  const ctx = testContext();
  const sink = new GraphiteSink({ port: carbon.port, maxPayloadBytes: 256, ...FAST }, ctx);
  t.teardown(() => sink.shutdown(Date.now() + 500));
  const ledger = recorder();
  const sentAtSettle: number[] = [];
  const delivered = ledger.delivered.bind(ledger);
  ledger.delivered = (kind, idx) => {
    sentAtSettle.push(ctx.stats.sent);
    delivered(kind, idx);
  };
  // The event has no Graphite form (dropped, counted): the export says so, and it still settles.
  t.equal((await sink.export(window(1, 30), ledger)).code, 'failure');
  t.same(ledger.delivered_, { series: 30, events: 1 });
  t.same(ledger.kept_, {});
  t.same(sentAtSettle, [30, 30], 'settled only once every payload (several of 256 bytes) was written');
  t.ok(ctx.stats.packets > 1, `${ctx.stats.packets} payloads`);
});

t.test('carbon away at shutdown: the window is kept on disk, not counted lost', async (t) => {
  const carbon = await new StandIn().start();
  await carbon.stop();
  const ctx = testContext();
  const sink = new GraphiteSink({ port: carbon.port, ...FAST }, ctx);
  const ledger = recorder();
  await sink.export(window(1, 10), ledger);
  t.ok(sink.retryBufferBytes > 0, 'parked for retry');
  t.same(ledger.delivered_, {}, 'nothing settled while carbon is away');
  await sink.shutdown(Date.now() + 300);
  t.same(ledger.kept_, { series: 10, events: 1 });
  t.equal(ctx.stats.dropped('shutdown_unsent'), 0, 'not a loss: the next start writes it');
});

t.test('every payload dropped (expired while carbon is away): the window is settled as lost, not delivered', async (t) => {
  const carbon = await new StandIn().start();
  await carbon.stop();
  const ctx = testContext();
  // The test windows are about 90 s old: with a 1 s age limit their payloads expire at the first retry.
  const sink = new GraphiteSink({ port: carbon.port, ...FAST, retryMaxAgeMs: 1000 }, ctx);
  t.teardown(() => sink.shutdown(Date.now() + 300));
  const ledger = recorder();
  await sink.export(window(1, 10), ledger);
  await until(() => (ledger.lost_ > 0 ? true : undefined), 5000, 'the expiry');
  t.equal(ledger.lost_, 11, 'ten series and the event');
  t.same(ledger.delivered_, {}, 'nothing was written: no sign that carbon takes lines again');
  t.ok(ctx.stats.dropped('expired') > 0, 'counted expired');
});

t.test('through the disk buffer: carbon away, shutdown, restart with carbon back: every line arrives', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'md-graphite-'));
  const carbon = await new StandIn().start();
  await carbon.stop();
  t.teardown(() => carbon.stop());
  const open = () => {
    const ctx = testContext();
    const sink = new GraphiteSink({ port: carbon.port, ...FAST }, ctx);
    return new SinkQueue(sink, ctx, { disk: { dir, maxBytes: 1 << 20 } });
  };
  const q1 = open();
  await q1.opened();
  await q1.push(window(1, 20));
  await q1.push(window(2, 20));
  await new Promise((r) => setTimeout(r, 200));
  await q1.shutdown(Date.now() + 300);
  await carbon.start();
  const q2 = open();
  await q2.opened();
  await until(() => (carbon.lines.length >= 40 ? true : undefined), 10_000, 'both windows');
  await new Promise((r) => setTimeout(r, 300));
  const names = carbon.lines.map((l) => l.split(' ')[0]);
  t.equal(names.length, 40, 'each line once');
  t.equal(new Set(names).size, 40);
  await q2.shutdown(Date.now() + 1000);
  const before = carbon.lines.length;
  const q3 = open();
  await q3.opened();
  await new Promise((r) => setTimeout(r, 300));
  t.equal(carbon.lines.length, before, 'settled windows are not written again');
  await q3.shutdown(Date.now() + 500);
});
