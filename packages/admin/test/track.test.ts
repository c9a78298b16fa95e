import t from 'tap';
import { MdError, SUCCESS, type BatchDelivery, type ExportResult, type MetricBatch, type Sink } from '@metrics-distributor/core';
import { TrackedSink } from '../src/index.js';

const BATCH = {} as MetricBatch;

t.test('TrackedSink records last success and last error, and passes results through', async (t) => {
  let next: ExportResult | Error = SUCCESS;
  let shutdownAt = 0;
  const inner: Sink = {
    name: 'datadog',
    export: () => (next instanceof Error ? Promise.reject(next) : Promise.resolve(next)),
    shutdown: (d) => {
      shutdownAt = d;
      return Promise.resolve();
    },
  };
  let now = 1000;
  const s = new TrackedSink(inner, () => now);
  t.equal(s.name, 'datadog');
  t.equal(s.lastSuccessMs, undefined);
  t.equal(await s.export(BATCH), SUCCESS);
  t.equal(s.lastSuccessMs, 1000);
  now = 2000;
  next = { code: 'retryable', error: new MdError('MD_ERR_SINK_TIMEOUT', 'no answer in 10 s') };
  t.equal((await s.export(BATCH)).code, 'retryable');
  t.same(s.lastError, { code: 'MD_ERR_SINK_TIMEOUT', message: 'retryable: no answer in 10 s', atMs: 2000 });
  t.equal(s.lastSuccessMs, 1000);
  now = 3000;
  next = new Error('x'.repeat(1000));
  await t.rejects(s.export(BATCH), { message: /^x+$/ });
  t.equal(s.lastError!.code, 'MD_ERR_SINK_EXPORT');
  t.equal(s.lastError!.message.length, 300, 'messages are clipped');
  t.equal(s.lastError!.atMs, 3000);
  await s.shutdown(42);
  t.equal(shutdownAt, 42);
});

t.test('the wrapper passes the data directory ledger through and says whether the sink tracks delivery', async (t) => {
  const seen: unknown[] = [];
  const inner: Sink = {
    name: 'ledgered',
    tracksDelivery: true,
    export: (_batch, delivery) => {
      seen.push(delivery);
      return Promise.resolve({ code: 'success' });
    },
    shutdown: () => Promise.resolve(),
  };
  const tracked = new TrackedSink(inner);
  t.equal(tracked.tracksDelivery, true);
  const ledger = { batchId: 'b1' } as unknown as BatchDelivery;
  await tracked.export({ windowStartMs: 0, intervalMs: 10_000, series: [], sketches: [], events: [], serviceChecks: [] }, ledger);
  t.equal(seen[0], ledger, 'the same ledger object reaches the sink');
});
