import t from 'tap';
import type { ExportResult, Sink } from '../src/contracts.js';
import { SUCCESS } from '../src/contracts.js';
import { MdError } from '../src/errors.js';
import { ComponentContext } from '../src/component.js';
import { createRootLogger, silentLogger } from '../src/logger.js';
import type { MetricBatch } from '../src/model.js';
import { SinkQueue } from '../src/sink-queue.js';
import { ComponentStats } from '../src/stats.js';

const batch = (n: number): MetricBatch => ({ windowStartMs: n, intervalMs: 10_000, series: [], sketches: [], events: [], serviceChecks: [] });

/** A sink whose every export waits until the test releases it. */
class GateSink implements Sink {
  readonly name = 'gate';
  seen: number[] = [];
  results: ExportResult[] = [];
  private release: (() => void)[] = [];
  shutdownCalled = false;
  export(b: MetricBatch): Promise<ExportResult> {
    this.seen.push(b.windowStartMs);
    return new Promise((resolve) => this.release.push(() => resolve(this.results.shift() ?? SUCCESS)));
  }
  open(): void {
    const r = this.release;
    this.release = [];
    for (const fn of r) fn();
  }
  shutdown(): Promise<void> {
    this.shutdownCalled = true;
    return Promise.resolve();
  }
}

const tick = () => new Promise((r) => setImmediate(r));

t.test('push never waits; overflow drops the oldest waiting batch and counts it', async (t) => {
  const sink = new GateSink();
  const stats = new ComponentStats('sink-gate');
  const q = new SinkQueue(sink, new ComponentContext('sink', stats.component, silentLogger(), stats), { maxBatches: 2 });
  for (let i = 1; i <= 5; i++) q.push(batch(i));
  t.equal(q.depth, 2);
  t.equal(stats.dropped('queue_full'), 3);
  // batch 1 is mid-export; 2, 3, 4 were dropped as the oldest waiting ones.
  for (let i = 0; i < 3; i++) {
    sink.open();
    await tick();
  }
  t.same(sink.seen, [1, 5]);
  t.equal(stats.sent, 2);
});

t.test('retryable results are retried with backoff; failures are counted and dropped', async (t) => {
  const sink = new GateSink();
  const stats = new ComponentStats('sink-gate');
  const q = new SinkQueue(sink, new ComponentContext('sink', stats.component, silentLogger(), stats), { retryBaseMs: 5, maxRetryDelayMs: 10 });
  sink.results.push({ code: 'retryable', error: new MdError('MD_ERR_SINK_EXPORT') });
  sink.results.push({ code: 'failure', error: new MdError('MD_ERR_SINK_EXPORT') });
  q.push(batch(1));
  q.push(batch(2));
  for (let i = 0; i < 20 && stats.sent + stats.failed < 2; i++) {
    sink.open();
    await new Promise((r) => setTimeout(r, 10));
  }
  t.same(sink.seen, [1, 1, 2], 'batch 1 retried once, then batch 2');
  t.equal(stats.failed, 1);
  t.equal(stats.sent, 1);
});

t.test('a sink that throws counts as failure and the loop goes on', async (t) => {
  const stats = new ComponentStats('sink-x');
  let calls = 0;
  const sink: Sink = {
    name: 'x',
    export: () => {
      calls++;
      return calls === 1 ? Promise.reject(new Error('boom')) : Promise.resolve(SUCCESS);
    },
    shutdown: () => Promise.resolve(),
  };
  const q = new SinkQueue(sink, new ComponentContext('sink', stats.component, silentLogger(), stats));
  q.push(batch(1));
  q.push(batch(2));
  await q.shutdown(Date.now() + 1000);
  t.equal(stats.failed, 1);
  t.equal(stats.sent, 1);
});

t.test('shutdown waits until the deadline, then counts what is left as lost', async (t) => {
  const sink = new GateSink();
  const stats = new ComponentStats('sink-gate');
  const q = new SinkQueue(sink, new ComponentContext('sink', stats.component, silentLogger(), stats));
  q.push(batch(1));
  q.push(batch(2));
  const started = Date.now();
  await q.shutdown(Date.now() + 100);
  t.ok(Date.now() - started >= 90, 'waited for the deadline');
  t.equal(stats.dropped('shutdown'), 2);
  t.ok(sink.shutdownCalled);
  q.push(batch(3));
  t.equal(stats.dropped('closed'), 1, 'pushes after shutdown are counted');
});

t.test('built from a component context: drops go through its one drop call, logged once per reason', async (t) => {
  const sink = new GateSink();
  const stats = new ComponentStats('sink-gate');
  const lines: Record<string, unknown>[] = [];
  const logger = createRootLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
  const q = new SinkQueue(sink, new ComponentContext('sink', 'sink-gate', logger, stats), { maxBatches: 1 });
  for (let i = 1; i <= 4; i++) q.push(batch(i));
  t.equal(stats.dropped('queue_full'), 3, 'the head is mid-export: each later window displaced the one before');
  const full = lines.filter((l) => l['msg'] === 'Sink queue full; dropped the oldest window.');
  t.equal(full.length, 1, 'rate-limited');
  t.equal((full[0]!['err'] as { code: string }).code, 'MD_ERR_SINK_QUEUE_FULL');
  sink.open();
  await q.shutdown(Date.now() + 50);
  q.push(batch(5));
  t.equal(stats.dropped('closed'), 1);
});

t.test('a retryable result waits for the shared breaker, Retry-After included', async (t) => {
  const sink = new GateSink();
  const stats = new ComponentStats('sink-gate');
  const q = new SinkQueue(sink, new ComponentContext('sink', stats.component, silentLogger(), stats), { retryBaseMs: 5, maxRetryDelayMs: 10 });
  sink.results.push({ code: 'retryable', error: new MdError('MD_ERR_SINK_EXPORT'), retryAfterMs: 300 });
  q.push(batch(1));
  sink.open();
  await new Promise((r) => setTimeout(r, 150));
  sink.open();
  t.same(sink.seen, [1], 'not retried before Retry-After');
  await new Promise((r) => setTimeout(r, 300));
  sink.open();
  await tick();
  t.same(sink.seen, [1, 1]);
  await q.shutdown(Date.now() + 100);
});
