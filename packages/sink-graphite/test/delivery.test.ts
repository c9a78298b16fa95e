// Delivery against a stand-in carbon (a line-recording TCP server on port 0): reconnects, backoff,
// the retry buffer's bound, a carbon that stops reading. Counts are lines.
import t from 'tap';
import type { ComponentContext } from '@metrics-distributor/core';
import { GraphiteSink, type GraphiteSinkOptions } from '../src/index.js';
import { LineEncoder } from '../src/lines.js';
import { resolveOptions } from '../src/options.js';
import { StandIn, batch, point, testContext, until } from './helpers.js';

/** A window of `n` gauges `g<w>_<i>` with value i, starting now-ish (so far from the age limit). */
function window(w: number, n: number): ReturnType<typeof batch> {
  const start = (Math.floor(Date.now() / 10_000) - 10 + w) * 10_000;
  return batch(start, Array.from({ length: n }, (_, i) => point(start, `g${w}_${i}`, 'gauge', i)));
}

function linesOf(b: ReturnType<typeof batch>, opts: GraphiteSinkOptions = {}): string[] {
  const out: string[] = [];
  for (const p of new LineEncoder(resolveOptions(opts)).payloads(b, { lose: () => undefined })) if (p !== null) out.push(...p.body.toString().slice(0, -1).split('\n'));
  return out;
}

function dropped(ctx: ComponentContext<'sink'>): number {
  let n = 0;
  for (const v of ctx.stats.dropReasons().values()) n += v;
  return n;
}

const FAST = { retryBaseMs: 50, retryMaxMs: 200, connectTimeoutMs: 1000 };

t.test('one persistent connection; lines counted as sent once written', async (t) => {
  const carbon = await new StandIn().start();
  t.teardown(() => carbon.stop());
  const ctx = testContext();
  const sink = new GraphiteSink({ port: carbon.port, ...FAST }, ctx);
  const w1 = window(1, 50);
  const w2 = window(2, 50);
  t.same(await sink.export(w1), { code: 'success' });
  t.same(await sink.export(w2), { code: 'success' });
  await until(() => (carbon.lines.length >= 100 ? true : undefined));
  t.same(carbon.lines, [...linesOf(w1), ...linesOf(w2)]);
  t.equal(carbon.connections, 1, 'both windows over one connection');
  t.equal(ctx.stats.sent, 100);
  t.equal(ctx.stats.received, 100);
  t.equal(ctx.stats.counter('connects'), 1);
  await sink.shutdown(Date.now() + 2000);
  t.equal(dropped(ctx), 0);
});

t.test('carbon down, then back: the window waits in the retry buffer and arrives once', async (t) => {
  const carbon = await new StandIn().start();
  await carbon.stop();
  t.teardown(() => carbon.stop());
  const ctx = testContext();
  const sink = new GraphiteSink({ port: carbon.port, ...FAST }, ctx);
  const w1 = window(1, 20);
  t.same(await sink.export(w1), { code: 'success' }, 'parked for retry, not lost');
  t.ok(sink.retryBufferBytes > 0, 'held in the retry buffer');
  t.equal(ctx.stats.sent, 0);
  // Refused probes back off and keep the payload.
  await new Promise((r) => setTimeout(r, 400));
  t.ok(sink.retryBufferBytes > 0);
  await carbon.start();
  await until(() => (carbon.lines.length >= 20 ? true : undefined), 10_000, 'the retried window');
  await new Promise((r) => setTimeout(r, 300));
  t.same(carbon.lines, linesOf(w1), 'every line once');
  t.equal(ctx.stats.sent, 20);
  t.equal(sink.retryBufferBytes, 0);
  t.equal(dropped(ctx), 0);
  await sink.shutdown(Date.now() + 2000);
});

t.test('connection reset between windows: reconnects, nothing re-sent', async (t) => {
  const carbon = await new StandIn().start();
  t.teardown(() => carbon.stop());
  const ctx = testContext();
  const sink = new GraphiteSink({ port: carbon.port, ...FAST }, ctx);
  const w1 = window(1, 10);
  const w2 = window(2, 10);
  await sink.export(w1);
  await until(() => (carbon.lines.length >= 10 ? true : undefined));
  await carbon.stop();
  await until(() => (ctx.stats.counter('disconnects') === 1 ? true : undefined), 5000, 'the client to see the reset');
  await sink.export(w2);
  await carbon.start();
  await until(() => (carbon.lines.length >= 20 ? true : undefined), 10_000, 'the second window');
  await new Promise((r) => setTimeout(r, 300));
  t.same(carbon.lines, [...linesOf(w1), ...linesOf(w2)], 'each line exactly once');
  t.equal(ctx.stats.counter('connects'), 2);
  t.equal(dropped(ctx), 0);
  await sink.shutdown(Date.now() + 2000);
});

t.test('retry buffer full: the oldest windows are dropped and counted, the newest arrive', async (t) => {
  const carbon = await new StandIn().start();
  await carbon.stop();
  t.teardown(() => carbon.stop());
  const windows = [1, 2, 3, 4].map((w) => window(w, 10));
  const bytes = Buffer.byteLength(linesOf(windows[0]!).join('\n') + '\n');
  const ctx = testContext();
  // Room for two windows' payloads (all four are the same size).
  const sink = new GraphiteSink({ port: carbon.port, ...FAST, retryBufferBytes: 2 * bytes }, ctx);
  for (const w of windows) t.same(await sink.export(w), { code: 'success' });
  t.equal(ctx.stats.dropped('retry_buffer_full'), 20, 'two windows of 10 lines');
  t.equal(sink.retryBufferBytes, 2 * bytes);
  await carbon.start();
  await until(() => (carbon.lines.length >= 20 ? true : undefined), 10_000, 'the kept windows');
  await new Promise((r) => setTimeout(r, 300));
  t.same([...carbon.lines].sort(), [...linesOf(windows[2]!), ...linesOf(windows[3]!)].sort());
  t.equal(ctx.stats.sent + dropped(ctx), ctx.stats.received, 'every line sent or counted');
  await sink.shutdown(Date.now() + 2000);
});

t.test('a carbon that stops reading: write timeout, bounded retry buffer, every line accounted for', async (t) => {
  const carbon = await new StandIn().start({ paused: true });
  t.teardown(() => carbon.stop());
  const ctx = testContext();
  const bound = 256 * 1024;
  const sink = new GraphiteSink({ port: carbon.port, ...FAST, writeTimeoutMs: 300, retryBufferBytes: bound }, ctx);
  let maxHeld = 0;
  const sampler = setInterval(() => (maxHeld = Math.max(maxHeld, sink.retryBufferBytes)), 5);
  // About 3.5 MB a window: more than the kernel's socket buffers take in before writes stall.
  for (let w = 1; w <= 5; w++) {
    const started = Date.now();
    await sink.export(window(w, 100_000));
    t.ok(Date.now() - started < 15_000, `window ${w} export returned`);
  }
  clearInterval(sampler);
  t.ok(maxHeld <= bound, `retry buffer stayed within ${bound} bytes (max ${maxHeld})`);
  t.ok(ctx.stats.counter('disconnects') >= 1 || carbon.connections > 1, 'the stalled connection was dropped');
  t.ok(ctx.stats.dropped('retry_buffer_full') > 0, 'what did not fit was counted');
  await sink.shutdown(Date.now() + 500);
  t.equal(ctx.stats.sent + dropped(ctx), ctx.stats.received, 'every line written or counted as dropped');
});

t.test('shutdown with carbon away: returns by the deadline, what is buffered is counted as shutdown_unsent', async (t) => {
  const carbon = await new StandIn().start();
  await carbon.stop();
  const ctx = testContext();
  const sink = new GraphiteSink({ port: carbon.port, ...FAST }, ctx);
  await sink.export(window(1, 10));
  await sink.export(window(2, 10));
  const started = Date.now();
  await sink.shutdown(Date.now() + 500);
  t.ok(Date.now() - started < 2000, `shutdown took ${Date.now() - started} ms`);
  t.equal(ctx.stats.sent, 0);
  t.equal(ctx.stats.dropped('shutdown_unsent'), 20, 'both windows counted as not sent');
  t.match(await sink.export(window(3, 5)), { code: 'failure', error: { code: 'MD_ERR_SINK_EXPORT' } }, 'a window after shutdown is refused');
  t.equal(ctx.stats.dropped('shutdown_unsent'), 25, 'and counted');
});
