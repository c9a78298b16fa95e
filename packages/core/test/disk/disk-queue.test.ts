import t from 'tap';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComponentContext } from '../../src/component.js';
import { SUCCESS, type BatchDelivery, type ExportResult, type Sink } from '../../src/contracts.js';
import { decodeBatch, encodeBatch } from '../../src/disk/codec.js';
import { silentLogger } from '../../src/logger.js';
import type { MetricBatch, Series } from '../../src/model.js';
import { SinkQueue } from '../../src/sink-queue.js';
import { ComponentStats } from '../../src/stats.js';

const series = (i: number, ts: number): Series => ({ metric: `m${i}`, type: 'gauge', timestamp: ts, value: i, interval: 10, tags: [`i:${i}`], host: 'h' });
const batch = (startMs: number, n = 10): MetricBatch => ({
  windowStartMs: startMs,
  intervalMs: 10_000,
  series: Array.from({ length: n }, (_, i) => series(i, startMs / 1000)),
  sketches: [],
  events: [],
  serviceChecks: [],
});
const ctx = (): ComponentContext<'sink'> => new ComponentContext('sink', 'sink-test', silentLogger(), new ComponentStats('sink-test'));
const tmp = (): Promise<string> => mkdtemp(join(tmpdir(), 'md-disk-'));
const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
};

/** Delivers the first `deliverFirst` series of each window, and lets go of the rest as kept (its memory buffer "evicted" them). */
class PartialSink implements Sink {
  readonly name = 'test';
  readonly tracksDelivery = true;
  readonly got: { startMs: number; metrics: string[]; delivery: BatchDelivery | undefined }[] = [];
  constructor(private readonly deliverFirst: number) {}
  export(b: MetricBatch, d?: BatchDelivery): Promise<ExportResult> {
    const idx: number[] = [];
    b.series.forEach((_, i) => {
      if (d?.done('series', i) !== true) idx.push(i);
    });
    this.got.push({ startMs: b.windowStartMs, metrics: idx.map((i) => b.series[i]!.metric), delivery: d });
    const now = idx.slice(0, this.deliverFirst);
    d?.delivered('series', now);
    d?.kept('series', idx.length - now.length);
    return Promise.resolve(SUCCESS);
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

t.test('the codec round-trips a window, timestamps and all', async (t) => {
  const b = batch(1_700_000_000_000, 1000);
  t.same(await decodeBatch(Buffer.concat(await encodeBatch(b))), b);
});

t.test('after a crash, a window is replayed once with its original timestamps, without the items already delivered', async (t) => {
  const dir = await tmp();
  const first = new PartialSink(4);
  const q1 = new SinkQueue(first, ctx(), { disk: { dir, maxBytes: 1 << 20 } });
  q1.push(batch(1_000_000));
  q1.push(batch(2_000_000));
  await until(() => first.got.length === 2);
  t.same(first.got[0]!.metrics, ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
  // No shutdown: the process "died". A new queue on the same directory replays.
  await new Promise((r) => setTimeout(r, 50));
  const second = new PartialSink(100);
  const c2 = ctx();
  const q2 = new SinkQueue(second, c2, { disk: { dir, maxBytes: 1 << 20 } });
  await q2.opened();
  await until(() => second.got.length === 2);
  t.same(second.got.map((g) => g.startMs), [1_000_000, 2_000_000], 'oldest first, original window starts');
  t.same(second.got[0]!.metrics, ['m4', 'm5', 'm6', 'm7', 'm8', 'm9'], 'the delivered items were skipped');
  t.equal(second.got[0]!.delivery?.replay, true);
  t.equal(c2.stats.counter('replayed'), 2);
  // Everything settled: a third start finds nothing, and the settled segments are gone.
  await q2.shutdown(Date.now() + 1000);
  const third = new PartialSink(100);
  const q3 = new SinkQueue(third, ctx(), { disk: { dir, maxBytes: 1 << 20 } });
  await q3.opened();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(third.got.length, 0, 'nothing replayed twice');
  await q3.shutdown(Date.now() + 1000);
  t.ok((await readdir(dir)).length <= 1, 'settled segments removed');
});

t.test('a sink without per-item tracking: the window leaves the disk once export() resolves', async (t) => {
  const dir = await tmp();
  const seen: number[] = [];
  let fail = true;
  const sink: Sink = {
    name: 'plain',
    export: (b) => {
      seen.push(b.windowStartMs);
      const down = fail; // decided when called: the test flips it right after the first call
      return new Promise((r) => setTimeout(() => r(down ? { code: 'retryable', error: new Error('down') as never } : SUCCESS), 5));
    },
    shutdown: () => Promise.resolve(),
  };
  const q1 = new SinkQueue(sink, ctx(), { disk: { dir, maxBytes: 1 << 20 }, retryBaseMs: 10_000 });
  q1.push(batch(5_000));
  await until(() => seen.length === 1);
  fail = false;
  const q2 = new SinkQueue(sink, ctx(), { disk: { dir, maxBytes: 1 << 20 } });
  await q2.opened();
  await until(() => seen.length === 2);
  t.same(seen, [5_000, 5_000], 'the undelivered window came back after the "crash"');
  await q2.shutdown(Date.now() + 1000);
  const q3 = new SinkQueue(sink, ctx(), { disk: { dir, maxBytes: 1 << 20 } });
  await q3.opened();
  await new Promise((r) => setTimeout(r, 30));
  t.equal(seen.length, 2, 'a delivered window is not replayed');
  await q3.shutdown(Date.now() + 1000);
  await q1.shutdown(Date.now());
});

t.test('past the bound the oldest windows are dropped and counted (disk_full)', async (t) => {
  const dir = await tmp();
  const sink = new PartialSink(0); // delivers nothing: everything stays on disk
  const c = ctx();
  // A 20-series binary window is ~0.5 KiB: 30 of them overflow 4 KiB.
  const q = new SinkQueue(sink, c, { disk: { dir, maxBytes: 4 * 1024 } });
  for (let i = 0; i < 30; i++) q.push(batch(i * 10_000, 20));
  await until(() => c.stats.dropped('disk_full') > 0 && sink.got.length >= 1, 5000);
  await new Promise((r) => setTimeout(r, 200));
  t.ok(c.stats.dropped('disk_full') > 0, `dropped ${c.stats.dropped('disk_full')} items`);
  t.equal(c.stats.dropped('disk_full') % 20, 0, 'whole windows');
  await q.shutdown(Date.now() + 500);
  const q2 = new SinkQueue(new PartialSink(100), ctx(), { disk: { dir, maxBytes: 4 * 1024 } });
  await q2.opened();
  t.ok(q2.depth > 0 && q2.depth < 30, `a bounded number of windows left (${q2.depth})`);
  t.equal(q2.depth + c.stats.dropped('disk_full') / 20, 30, 'each window either on disk or counted');
  await q2.shutdown(Date.now() + 500);
});

t.test('an unusable data directory is logged and survived: windows go through memory, counted', async (t) => {
  const base = await tmp();
  const file = join(base, 'not-a-dir');
  await writeFile(file, 'x');
  const sink = new PartialSink(100);
  const c = ctx();
  const q = new SinkQueue(sink, c, { disk: { dir: join(file, 'sink-test'), maxBytes: 1 << 20 } });
  await q.opened();
  q.push(batch(1_000));
  await until(() => sink.got.length === 1);
  t.equal(sink.got.length, 1, 'still delivered');
  t.equal(sink.got[0]!.delivery, undefined, 'from memory');
  t.equal(c.stats.counter('disk_errors'), 1);
  t.equal(c.stats.counter('disk_fallback'), 1);
  await q.shutdown(Date.now() + 500);
});
