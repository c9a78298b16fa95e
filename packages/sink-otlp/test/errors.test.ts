import t, { type Test } from 'tap';
import { OtlpSink, type OtlpSinkOptions } from '../src/index.js';
import { startCollector, testContext, until, type Reply } from './collector.js';
import { metricsOf, partialSuccessBody } from './decode.js';
import { series, sketch, windowOf } from './helpers.js';

/** Five points: four sums and a gauge. */
const FIVE = windowOf([series('a', 'count', 1), series('b', 'count', 2), series('c', 'count', 3), series('d', 'count', 4), series('e', 'gauge', 5)]);

async function setup(t: Test, reply: (index: number, points: number) => Reply, opts: Partial<OtlpSinkOptions> = {}) {
  const col = await startCollector((r, i) => reply(i, r.points));
  t.teardown(col.close);
  const context = testContext();
  const sink = new OtlpSink({ endpoint: col.endpoint, retryBaseMs: 20, retryMaxMs: 40, ...opts }, context);
  t.teardown(() => sink.shutdown(Date.now() + 500));
  const delivered = () => col.accepted.reduce((n, r) => n + r.points, 0);
  return { col, context, sink, stats: context.stats, delivered };
}

t.test('429 with Retry-After: waited out, then everything delivered, nothing dropped', async (t) => {
  const { col, sink, stats, delivered } = await setup(t, (i) => (i === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
  t.same(await sink.export(FIVE), { code: 'success' }, 'parked for retry is not a failure');
  // The receiver has the request before the sink has read the answer: wait for both.
  await until(() => delivered() === 5 && stats.sent === 5, 5000);
  t.equal(col.received.length, 2, 'one retry');
  t.ok(col.received[1]!.atMs - col.received[0]!.atMs >= 950, `retry after Retry-After (${col.received[1]!.atMs - col.received[0]!.atMs} ms)`);
  t.equal(stats.dropped(), 0, 'no drop');
  t.equal(stats.sent, 5);
  t.same(sink.buffered, { bytes: 0, payloads: 0 });
});

for (const status of [502, 503, 504]) {
  t.test(`${status}: retried with backoff, nothing lost`, async (t) => {
    const { col, sink, stats, delivered } = await setup(t, (i) => (i < 2 ? { status } : { status: 200 }));
    t.same(await sink.export(FIVE), { code: 'success' });
    await until(() => delivered() === 5 && stats.sent === 5);
    t.equal(col.received.length, 3, 'two failures, one success');
    t.equal(stats.dropped(), 0);
  });
}

for (const [status, reason] of [
  [400, 'bad_request'],
  [401, 'forbidden'],
  [403, 'forbidden'],
  [404, 'rejected'],
  [500, 'rejected'],
] as const) {
  t.test(`${status}: dropped for good as ${reason}, counted, not retried`, async (t) => {
    const { col, sink, stats } = await setup(t, () => ({ status, body: 'nope' }));
    const res = await sink.export(FIVE);
    t.equal(res.code, 'failure');
    t.equal(stats.dropped(reason), 5, `dropped{reason:${reason}} = 5 points`);
    t.equal(stats.failed, 5);
    await new Promise((r) => setTimeout(r, 100));
    t.equal(col.received.length, 1, 'no retry');
  });
}

t.test('413: split in halves until it fits, nothing lost; one point alone still refused is dropped', async (t) => {
  const { col, sink, stats, delivered } = await setup(t, (_i, points) => (points > 2 ? { status: 413 } : { status: 200 }));
  t.same(await sink.export(FIVE), { code: 'success' });
  t.equal(delivered(), 5, 'every point delivered');
  t.same(col.accepted.map((r) => r.points).sort(), [1, 2, 2], '5 → 3 + 2 → (2 + 1) + 2');
  t.equal(stats.dropped(), 0);

  const one = await setup(t, () => ({ status: 413 }));
  const res = await one.sink.export(windowOf([series('huge', 'gauge', 1)]));
  t.equal(res.code, 'failure');
  t.equal(one.stats.dropped('payload_too_large'), 1);
});

t.test('partial success (protobuf answer): rejected points counted, the rest sent', async (t) => {
  const { sink, stats } = await setup(t, () => ({ status: 200, body: partialSuccessBody(2, 'metric a: bad name') }));
  const res = await sink.export(FIVE);
  t.equal(res.code, 'failure', 'the export says some points were lost');
  t.equal(stats.dropped('partial_success'), 2);
  t.equal(stats.sent, 3);
  t.equal(stats.failed, 2);
});

t.test('partial success (JSON answer), and a warning with nothing rejected', async (t) => {
  const json = await setup(t, () => ({ status: 200, body: JSON.stringify({ partialSuccess: { rejectedDataPoints: '1', errorMessage: 'x' } }) }), { protocol: 'http/json' });
  t.equal((await json.sink.export(FIVE)).code, 'failure');
  t.equal(json.stats.dropped('partial_success'), 1);
  t.equal(json.stats.sent, 4);

  const warn = await setup(t, () => ({ status: 200, body: partialSuccessBody(0, 'deprecated attribute') }));
  t.same(await warn.sink.export(FIVE), { code: 'success' });
  t.equal(warn.stats.dropped(), 0);
  t.equal(warn.stats.sent, 5);
});

t.test('maxPointsPerRequest: a window in several requests', async (t) => {
  const { col, sink, delivered } = await setup(t, () => ({ status: 200 }), { maxPointsPerRequest: 2 });
  t.same(await sink.export(FIVE), { code: 'success' });
  t.equal(delivered(), 5);
  t.same(col.received.map((r) => r.points).sort(), [1, 2, 2]);

  const mixed = await setup(t, () => ({ status: 200 }), { maxPointsPerRequest: 2 });
  const batch = windowOf([series('s1', 'count', 1), series('s2', 'count', 2), series('s3', 'gauge', 3)], [sketch('d1', [1]), sketch('d2', [2, 3])]);
  t.same(await mixed.sink.export(batch), { code: 'success' });
  const names = mixed.col.accepted.flatMap((r) => metricsOf(r.request).map((m) => m.metric.name)).sort();
  t.same(names, ['d1', 'd2', 's1', 's2', 's3'], 'every series and sketch exactly once across requests');
});

t.test('the receiver goes away and comes back: buffered, then delivered on the same port', async (t) => {
  const first = await startCollector();
  const port = first.port;
  await first.close();
  const context = testContext();
  const sink = new OtlpSink({ endpoint: `http://127.0.0.1:${port}`, retryBaseMs: 50, retryMaxMs: 100 }, context);
  t.teardown(() => sink.shutdown(Date.now() + 500));
  t.same(await sink.export(FIVE), { code: 'success' });
  t.equal(sink.buffered.payloads, 1, 'held for retry');
  const back = await startCollector(undefined, port);
  t.teardown(back.close);
  await until(() => back.accepted.reduce((n, r) => n + r.points, 0) === 5 && context.stats.sent === 5);
  t.equal(context.stats.dropped(), 0);
  t.same(sink.buffered, { bytes: 0, payloads: 0 });
});

t.test('no answer within timeoutMs: retried, delivered, nothing lost', async (t) => {
  const { col, sink, stats, delivered } = await setup(t, (i) => (i === 0 ? { status: 0 } : { status: 200 }), { timeoutMs: 200 });
  const t0 = Date.now();
  t.same(await sink.export(FIVE), { code: 'success' });
  t.ok(Date.now() - t0 >= 190, 'the first request waited for its timeout');
  await until(() => delivered() === 5 && stats.sent === 5);
  t.equal(col.received.length, 2);
  t.equal(stats.dropped(), 0);
});

t.test('shutdown with the receiver still down: what is left is counted as shutdown_unsent', async (t) => {
  const { sink, stats } = await setup(t, () => ({ status: 503 }));
  await sink.export(FIVE);
  await sink.shutdown(Date.now() + 200);
  t.equal(stats.dropped('shutdown_unsent'), 5);
  const late = await sink.export(FIVE);
  t.equal(late.code, 'failure', 'after shutdown, nothing is accepted');
  t.equal(stats.dropped('shutdown_unsent'), 10);
});

t.test('options are validated with MD_ERR_CONFIG_INVALID', async (t) => {
  const ctx = testContext();
  const bads: OtlpSinkOptions[] = [
    { endpoint: 'not a url' },
    { endpoint: 'ftp://x' },
    { endpoint: 'http://x', headers: { 'content-type': 'text/plain' } },
    { endpoint: 'http://x', headers: { 'bad name': '1' } },
    { endpoint: 'http://x', explicitBounds: [5, 1] },
    { endpoint: 'http://x', exponentialScale: 9 },
  ];
  for (const bad of bads) {
    t.throws(() => new OtlpSink(bad, ctx), { code: 'MD_ERR_CONFIG_INVALID' }, JSON.stringify(bad));
  }
});
