import t from 'tap';
import type { BatchDelivery, BatchItemKind } from '@metrics-distributor/core';
import { batch, gauge, makeSink, startFakeDatadog } from './fake-datadog.js';

/** A BatchDelivery that records what the sink reports; items in `done` count as delivered by an earlier run. */
function ledger(done: Set<number>) {
  const delivered: number[] = [];
  const tally = { lost: 0, kept: 0 };
  const d: BatchDelivery = {
    batchId: '1-8',
    replay: done.size > 0,
    done: (kind: BatchItemKind, i: number) => kind === 'series' && done.has(i),
    delivered: (kind, idx) => {
      if (kind === 'series') delivered.push(...Array.from(idx));
    },
    lost: (_k, n) => (tally.lost += n),
    kept: (_k, n) => (tally.kept += n),
  };
  return { d, delivered, tally };
}

t.test('a replayed window skips the items delivered before, and reports each delivered item by its index', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const { sink } = makeSink(fake, { limits: { series: { maxItems: 7 } } });
  const series = Array.from({ length: 40 }, (_, i) => gauge(`m.${i}`));
  const done = new Set(Array.from({ length: 40 }, (_, i) => i).filter((i) => i % 3 === 0));
  const { d, delivered, tally } = ledger(done);
  t.same(await sink.export(batch({ series }), d), { code: 'success' });
  const want = series.map((_, i) => i).filter((i) => !done.has(i));
  t.same(fake.series().map((s) => s['metric']).sort(), want.map((i) => `m.${i}`).sort(), 'only the items not delivered before were sent');
  t.same([...delivered].sort((a, b) => a - b), want, 'every sent item reported delivered, by its index in the window');
  t.same(tally, { lost: 0, kept: 0 });
  await sink.shutdown(Date.now() + 1000);
});

t.test('with the window on disk, a payload evicted from the memory retry buffer is kept, not counted as lost', async (t) => {
  const fake = await startFakeDatadog(() => ({ status: 503 }));
  t.teardown(() => fake.close());
  const { sink, registry } = makeSink(fake, { retryBufferBytes: 1, retryBaseMs: 60_000 });
  const { d, delivered, tally } = ledger(new Set());
  await sink.export(batch({ series: [gauge('a'), gauge('b')] }), d);
  t.same(delivered, []);
  t.equal(tally.kept, 2, 'both items kept for a later export from disk');
  t.equal(registry.component('sink-datadog').dropped('retry_buffer_full'), 0, 'and no loss counted');
  await sink.shutdown(Date.now() + 200);
});
