import t from 'tap';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { classify } from '../src/status-table.js';
import { API_KEY, TS, batch, eventually, gauge, makeSink, sleep, startFakeDatadog, type Received } from './fake-datadog.js';

const seriesPosts = (reqs: Received[]) => reqs.filter((r) => r.path === '/api/v2/series');
const countOf = (r: Received) => (r.json as { series: unknown[] }).series.length;

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

t.test('2xx: 200, 202 and 204 are all success', async (t) => {
  for (const status of [200, 202, 204]) {
    const fake = await startFakeDatadog(() => ({ status, body: status === 204 ? '' : '{}' }));
    const { sink, stats } = makeSink(fake);
    t.same(await sink.export(batch({ series: [gauge('a')] })), { code: 'success' }, String(status));
    t.equal(stats.packets, 1);
    t.equal(stats.dropped(), 0);
    await sink.shutdown(Date.now() + 1000);
    await fake.close();
  }
});

t.test('400: dropped, counted, body logged truncated, not retried', async (t) => {
  const fake = await startFakeDatadog(() => ({ status: 400, body: `bad payload: ${'x'.repeat(3000)}` }));
  t.teardown(() => fake.close());
  const { sink, stats, registry, log } = makeSink(fake);
  const res = await sink.export(batch({ series: [gauge('a'), gauge('b')] }));
  t.equal(res.code, 'failure');
  t.match(res.code === 'failure' ? res.error.message : '', /2 item\(s\).*bad_request/);
  t.equal(stats.dropped('bad_request'), 2);
  t.equal(registry.component('sink-datadog-series').failed, 2);
  t.equal(registry.component('sink-datadog-http-4xx').received, 1);
  const line = log.lines().find((l) => l['status'] === 400)!;
  t.ok(line, 'logged');
  t.match(line['body'], /^bad payload: x+$/);
  t.ok(String(line['body']).length <= 500, 'body truncated');
  await sleep(150);
  t.equal(fake.requests.length, 1, 'never retried');
  t.equal(stats.gaugeValues().get('retry_buffer_payloads'), 0);
  await sink.shutdown(Date.now() + 1000);
});

t.test('403: dropped, counted, one loud rate-limited "invalid API key" line, key never logged', async (t) => {
  const fake = await startFakeDatadog(() => ({ status: 403, body: '{"errors":["Forbidden"]}' }));
  t.teardown(() => fake.close());
  const { sink, stats, log } = makeSink(fake);
  for (let i = 0; i < 3; i++) t.equal((await sink.export(batch({ series: [gauge(`m${i}`)] }))).code, 'failure');
  t.equal(fake.requests.length, 3);
  t.equal(stats.dropped('forbidden'), 3);
  const lines = log.lines().filter((l) => String(l['msg']).includes('invalid API key'));
  t.equal(lines.length, 1, 'rate-limited to one line');
  t.equal(lines[0]!['level'], 50, 'error level');
  t.equal(lines[0]!['key'], '***9f3e', 'at most the last 4 characters');
  t.notOk(log.text().includes(API_KEY));
  t.notOk(log.text().includes(API_KEY.slice(0, 8)));
  await sink.shutdown(Date.now() + 1000);
});

t.test('413: split in half and re-sent recursively; a single item still too large is dropped', async (t) => {
  const fake = await startFakeDatadog((r) => (r.path === '/api/v2/series' && (countOf(r) > 2 || JSON.stringify(r.json).includes('huge')) ? { status: 413 } : undefined));
  t.teardown(() => fake.close());
  const { sink, stats, log } = makeSink(fake);
  const names = Array.from({ length: 8 }, (_, i) => `s${i}`);
  t.same(await sink.export(batch({ series: names.map((n) => gauge(n)) })), { code: 'success' });
  t.same(seriesPosts(fake.requests).map(countOf), [8, 4, 2, 2, 4, 2, 2], '8 → 4+4 → 2+2+2+2');
  t.same(fake.series().map((s) => s['metric']), names, 'each delivered exactly once, in order');

  const res = await sink.export(batch({ series: [gauge('ok'), gauge('huge')] }));
  t.equal(res.code, 'failure');
  t.same(fake.series().map((s) => s['metric']).slice(8), ['ok']);
  t.equal(stats.dropped('payload_too_large'), 1);
  const line = log.lines().find((l) => (l['err'] as { code?: string } | undefined)?.code === 'MD_ERR_SINK_PAYLOAD_TOO_LARGE');
  t.match(line, { level: 50, limit: '413 from Datadog', item: /huge/ }, 'the log names the item Datadog refused');
  await sink.shutdown(Date.now() + 1000);
});

for (const status of [408, 429, 500, 503, 404]) {
  t.test(`${status}: retried with backoff, then delivered once`, async (t) => {
    const fake = await startFakeDatadog((r) => (r.n < 2 ? { status } : undefined));
    t.teardown(() => fake.close());
    const { sink, stats, registry } = makeSink(fake);
    t.same(await sink.export(batch({ series: [gauge('a')] })), { code: 'success' }, 'parked for retry, not lost');
    await eventually(() => registry.component('sink-datadog-series').sent === 1, 5000, 'delivery');
    t.equal(fake.requests.length, 3);
    t.same(fake.series().map((s) => s['metric']), ['a']);
    t.equal(registry.component('sink-datadog-retry').received, 2, 'two retries');
    t.equal(registry.component('sink-datadog-retry').sent, 1);
    t.equal(registry.component(`sink-datadog-http-${Math.floor(status / 100)}xx`).received, 2);
    t.equal(stats.dropped(), 0);
    t.equal(stats.gaugeValues().get('retry_buffer_bytes'), 0);
    await sink.shutdown(Date.now() + 1000);
  });
}

for (const [name, headers] of [
  ['Retry-After', { 'retry-after': '1' } as Record<string, string>],
  ['X-RateLimit-Reset', { 'x-ratelimit-reset': '1' } as Record<string, string>],
] as const) {
  t.test(`429 honours ${name}`, async (t) => {
    const fake = await startFakeDatadog((r) => (r.n === 0 ? { status: 429, headers } : undefined));
    t.teardown(() => fake.close());
    const { sink } = makeSink(fake); // base 20 ms: without the header the retry would come within 20 ms
    await sink.export(batch({ series: [gauge('a')] }));
    await fake.waitFor(() => fake.accepted('/api/v2/series').length === 1, 5000);
    const gap = fake.requests[1]!.at - fake.requests[0]!.at;
    t.ok(gap >= 950 && gap < 2500, `retried after ${gap} ms`);
    await sink.shutdown(Date.now() + 1000);
  });
}

t.test("a 429's Retry-After or X-RateLimit-Reset is the wait, capped at 10 minutes", async (t) => {
  const wait = (headers: Record<string, string>) => {
    const out = classify({ status: 429, headers, body: '' }, { endpoint: '/api/v2/series', maskedKey: '***' });
    return out.kind === 'retryable' ? out.retryAfterMs : -1;
  };
  t.equal(wait({ 'retry-after': '3' }), 3000);
  t.equal(wait({ 'x-ratelimit-reset': '2' }), 2000, "Datadog's own header");
  t.equal(wait({ 'retry-after': '999999' }), 600_000, 'capped at 10 minutes');
  t.equal(wait({}), undefined);
});

t.test('a request timeout is retried', async (t) => {
  const fake = await startFakeDatadog((r) => (r.n === 0 ? { delayMs: 1500 } : undefined));
  t.teardown(() => fake.close());
  const { sink, registry, log } = makeSink(fake, { timeoutMs: 200 });
  const started = Date.now();
  t.same(await sink.export(batch({ series: [gauge('a')] })), { code: 'success' });
  t.ok(Date.now() - started < 1000, 'the export did not wait for the slow answer');
  await fake.waitFor(() => fake.accepted('/api/v2/series').length === 1, 5000);
  t.equal(registry.component('sink-datadog-http-error').received, 1);
  t.ok(log.lines().some((l) => (l['err'] as { code?: string } | undefined)?.code === 'MD_ERR_SINK_TIMEOUT'), 'logged as a timeout');
  await sink.shutdown(Date.now() + 1000);
});

t.test('a reset connection is retried', async (t) => {
  const fake = await startFakeDatadog((r) => (r.n === 0 ? { reset: true } : undefined));
  t.teardown(() => fake.close());
  const { sink, registry } = makeSink(fake);
  t.same(await sink.export(batch({ series: [gauge('a')] })), { code: 'success' });
  await fake.waitFor(() => fake.accepted('/api/v2/series').length === 1, 5000);
  t.equal(registry.component('sink-datadog-http-error').received, 1);
  t.same(fake.series().map((s) => s['metric']), ['a']);
  await sink.shutdown(Date.now() + 1000);
});

t.test('a refused connection is parked, retried, and lost only at the shutdown deadline, counted', async (t) => {
  const { sink, stats, log } = makeSink({ url: `http://127.0.0.1:${await closedPort()}` });
  t.same(await sink.export(batch({ series: [gauge('a'), gauge('b')] })), { code: 'success' });
  t.equal(stats.gaugeValues().get('retry_buffer_payloads'), 1);
  t.ok(stats.gaugeValues().get('retry_buffer_bytes')! > 0);
  await sink.shutdown(Date.now() + 300);
  t.equal(stats.dropped('shutdown_unsent'), 2);
  t.equal(stats.gaugeValues().get('retry_buffer_bytes'), 0);
  t.ok(log.lines().some((l) => String(l['msg']).includes('2 item(s) undelivered')));
});

t.test('backoff: one probe per round, jittered doubling to the max; concurrent failures do not escalate', async (t) => {
  const fake = await startFakeDatadog((r) => (r.n < 8 ? { status: 500 } : undefined));
  t.teardown(() => fake.close());
  const { sink } = makeSink(fake, { retryBaseMs: 100, retryMaxMs: 400 });
  const events = Array.from({ length: 5 }, (_, i) => ({ title: `e${i}`, text: 'x', timestampS: TS, host: 'h', priority: 'normal' as const, alertType: 'info' as const, tags: [] }));
  t.same(await sink.export(batch({ events })), { code: 'success' });
  // On a loaded machine the first probe may already be out by now; the first five are the five tries.
  t.ok(fake.requests.length >= 5, 'five events, five concurrent requests, all failed');
  t.equal(new Set(fake.requests.slice(0, 5).map((r) => (r.json as { title: string }).title)).size, 5, 'one first try per event');
  await fake.waitFor(() => fake.accepted('/api/v1/events').length === 5, 5000, 'all events');
  await sleep(50);
  const at = fake.requests.map((r) => r.at);
  // Requests 5, 6, 7 are lone probes (500); 8 is the probe that succeeds, then the other 4 follow at once.
  const gaps = [at[5]! - at[4]!, at[6]! - at[5]!, at[7]! - at[6]!, at[8]! - at[7]!];
  const ranges: [number, number][] = [
    [50, 100],
    [100, 200],
    [200, 400],
    [400, 400],
  ];
  // The lower bounds tell doubling from a fixed delay; the upper ones only catch a wrong scale, with room
  // for a loaded CI machine (a 250 ms allowance failed about one run in four at load 4-7).
  for (const [i, g] of gaps.entries()) t.ok(g >= ranges[i]![0] - 5 && g <= ranges[i]![1] + 1000, `gap ${i + 1}: ${g} ms in [${ranges[i]!.join(', ')}]`);
  t.equal(fake.requests.length, 13, 'no request besides 5 first tries, 4 probes and the final 4');
  t.same(fake.accepted('/api/v1/events').map((r) => (r.json as { title: string }).title).sort(), ['e0', 'e1', 'e2', 'e3', 'e4']);
  await sink.shutdown(Date.now() + 1000);
});

t.test('retry buffer: bounded by bytes, the oldest dropped and counted; the newest delivered at shutdown', async (t) => {
  let up = false;
  const fake = await startFakeDatadog(() => (up ? undefined : { status: 503 }));
  t.teardown(() => fake.close());
  const bound = 2000;
  // A 60 s backoff: nothing is retried during the test until shutdown, which ignores the backoff.
  const { sink, stats, registry } = makeSink(fake, { retryBufferBytes: bound, retryBaseMs: 60_000, retryMaxMs: 60_000 });
  const total = 12;
  for (let i = 0; i < total; i++) {
    t.same(await sink.export(batch({ series: [gauge(`m.${String(i).padStart(2, '0')}`, [`pad:${'p'.repeat(200)}`])] })), { code: 'success' });
    t.ok(stats.gaugeValues().get('retry_buffer_bytes')! <= bound, `buffer ${stats.gaugeValues().get('retry_buffer_bytes')} ≤ ${bound}`);
  }
  t.equal(fake.requests.length, 1, 'only the first payload was tried: the rest waited out the backoff');
  const kept = stats.gaugeValues().get('retry_buffer_payloads')!;
  const dropped = stats.dropped('retry_buffer_full');
  t.ok(kept >= 1 && dropped >= 1, `${kept} kept, ${dropped} dropped`);
  t.equal(kept + dropped, total, 'every payload either kept or counted');
  t.equal(registry.component('sink-datadog-series').failed, dropped);

  up = true;
  const started = Date.now();
  await sink.shutdown(Date.now() + 3000);
  t.ok(Date.now() - started < 1000, 'shutdown retried at once, not after the backoff');
  const expected = Array.from({ length: kept }, (_, i) => `m.${String(total - kept + i).padStart(2, '0')}`);
  t.same(fake.series().map((s) => s['metric']).sort(), expected, 'the newest payloads survived');
  t.equal(stats.dropped('shutdown_unsent'), 0);
});

t.test('shutdown against a failing intake: retries until the deadline, then counts and logs the loss', async (t) => {
  const fake = await startFakeDatadog(() => ({ status: 500 }));
  t.teardown(() => fake.close());
  const { sink, stats, registry, log } = makeSink(fake, { retryBaseMs: 100 });
  await sink.export(batch({ series: [gauge('a'), gauge('b'), gauge('c')] }));
  const before = fake.requests.length;
  const started = Date.now();
  await sink.shutdown(Date.now() + 600);
  const took = Date.now() - started;
  t.ok(took >= 500 && took < 1500, `shutdown took ${took} ms for a 600 ms deadline`);
  t.ok(fake.requests.length - before >= 3, `${fake.requests.length - before} attempts during shutdown`);
  t.equal(stats.dropped('shutdown_unsent'), 3);
  const line = log.lines().find((l) => String(l['msg']).includes('undelivered'))!;
  t.same(line['lost'], { series: 3, sketches: 0, events: 0, checks: 0 });
  // After shutdown nothing is buffered any more: a late export is counted, not kept.
  t.equal((await sink.export(batch({ series: [gauge('late')] }))).code, 'failure');
  t.equal(stats.dropped('shutdown_unsent'), 4);
  const series = registry.component('sink-datadog-series');
  t.same([series.received, series.sent, series.failed], [4, 0, 4], 'received = sent + failed');
});

t.test('shutdown aborts a request to an intake taking 10 s, at the deadline', async (t) => {
  const fake = await startFakeDatadog(() => ({ delayMs: 10_000 }));
  t.teardown(() => fake.close());
  const { sink, stats } = makeSink(fake);
  const exporting = sink.export(batch({ series: [gauge('a')] }));
  await fake.waitFor(() => fake.requests.length === 1, 2000);
  const started = Date.now();
  await sink.shutdown(Date.now() + 300);
  await exporting;
  t.ok(Date.now() - started < 1500, `shutdown returned after ${Date.now() - started} ms`);
  t.equal(stats.dropped('shutdown_unsent'), 1);
});

t.test('key validation: 200 valid, 403 loud error, other status and network errors warn; never throws', async (t) => {
  const fake = await startFakeDatadog((r) => (r.headers['dd-api-key'] === 'bad-key-0000000000000000' ? { status: 403 } : r.headers['dd-api-key'] === 'flaky-key-00000000000000' ? { status: 503 } : undefined));
  t.teardown(() => fake.close());
  const ok = makeSink(fake);
  t.equal(await ok.sink.start(), 'valid');
  const req = fake.requests[0]!;
  t.equal(req.method, 'GET');
  t.equal(req.url, '/api/v1/validate', 'the key is not in the URL');
  t.equal(req.headers['dd-api-key'], API_KEY);
  t.ok(ok.log.lines().some((l) => l['level'] === 30 && String(l['msg']).includes('valid')));
  t.notOk(ok.log.text().includes(API_KEY));

  const bad = makeSink(fake, { apiKey: 'bad-key-0000000000000000' });
  t.equal(await bad.sink.validateKey(), 'invalid');
  const line = bad.log.lines().find((l) => l['level'] === 50)!;
  t.match(line['msg'], /invalid API key/);
  t.equal(line['key'], '***0000');

  const flaky = makeSink(fake, { apiKey: 'flaky-key-00000000000000' });
  t.equal(await flaky.sink.validateKey(), 'unknown');
  t.ok(flaky.log.lines().some((l) => l['level'] === 40 && l['status'] === 503));

  const down = makeSink({ url: `http://127.0.0.1:${await closedPort()}` });
  t.equal(await down.sink.validateKey(), 'unknown');
  t.ok(down.log.lines().some((l) => l['level'] === 40 && String(l['msg']).includes('Could not reach Datadog')));

  const off = makeSink(fake, { validateKey: false });
  const n = fake.requests.length;
  t.equal(await off.sink.start(), undefined);
  t.equal(fake.requests.length, n, 'no request when disabled');
  for (const s of [ok, bad, flaky, down, off]) await s.sink.shutdown(Date.now() + 500);
});

t.test('retry age limit: series older than retryMaxAgeMs are dropped as expired, counted and logged, never sent late', async (t) => {
  let up = false;
  const fake = await startFakeDatadog(() => (up ? undefined : { status: 500 }));
  t.teardown(() => fake.close());
  const { sink, stats, registry, log } = makeSink(fake, { retryBaseMs: 50, retryMaxMs: 50, retryMaxAgeMs: 400 });
  const check = { name: 'app.ok', status: 0 as const, timestampS: TS, host: 'h', tags: [] };
  const exported = await sink.export(batch({ series: [gauge('old.a'), gauge('old.b')], serviceChecks: [check] }));
  t.same(exported, { code: 'success' }, 'parked for retry, not yet lost');
  await eventually(() => stats.dropped('expired') === 3, 3000, 'both series and the check expire');
  t.equal(stats.gaugeValues().get('retry_buffer_payloads'), 0, 'nothing left in the retry buffer');
  t.equal(stats.gaugeValues().get('retry_buffer_bytes'), 0);
  t.equal(registry.component('sink-datadog-series').failed, 2, 'the series count as failed');
  t.ok(registry.component('sink-datadog-retry').failed >= 2, 'two payloads (series, check) left the retry buffer as failed');
  t.ok(log.lines().some((l) => (l['err'] as { code?: string } | undefined)?.code === 'MD_ERR_SINK_EXPIRED'), 'logged with MD_ERR_SINK_EXPIRED');
  const triedBefore = fake.requests.length;
  up = true;
  // A fresh window goes through and does not bring the expired one back.
  t.same(await sink.export(batch({ series: [gauge('new.a')] })), { code: 'success' });
  await sink.shutdown(Date.now() + 1000);
  t.same(fake.series().map((s) => s['metric']), ['new.a'], 'only the fresh series was delivered');
  t.equal(fake.requests.length, triedBefore + 1, 'no request for expired payloads');
});

t.test('retry age limit: a payload already too old when it fails is dropped at once; events keep 18 hours', async (t) => {
  let up = false;
  const fake = await startFakeDatadog(() => (up ? undefined : { status: 503 }));
  t.teardown(() => fake.close());
  const { sink, stats, registry } = makeSink(fake, { retryBaseMs: 20, retryMaxMs: 20, retryMaxAgeMs: 60_000 });
  const event = { title: 'deploy', text: 'x', timestampS: TS, host: 'h', priority: 'normal' as const, alertType: 'info' as const, tags: [] };
  await sink.export(batch({ windowStartMs: Date.now() - 120_000, series: [gauge('stale')], events: [event] }));
  t.equal(stats.dropped('expired'), 1, 'the 2-minute-old series is dropped as soon as it fails');
  t.equal(stats.gaugeValues().get('retry_buffer_payloads'), 1, 'the event is kept for retry');
  const retry = registry.component('sink-datadog-retry');
  t.equal(retry.received, retry.failed + 1, 'retry accounting: received = failed (the series) + the event still buffered');
  up = true;
  await fake.waitFor(() => fake.accepted('/api/v1/events').length === 1, 3000, 'the event');
  await sink.shutdown(Date.now() + 1000);
  t.equal(fake.series().length, 0);
});

t.test('retry age limit: events expire after the intake 18-hour limit even when --datadog-retry-max-age is longer', async (t) => {
  const fake = await startFakeDatadog(() => ({ status: 503 }));
  t.teardown(() => fake.close());
  const { sink, stats } = makeSink(fake, { retryBaseMs: 20, retryMaxMs: 20, retryMaxAgeMs: 100 * 3_600_000 });
  const event = { title: 'old', text: 'x', timestampS: TS, host: 'h', priority: 'normal' as const, alertType: 'info' as const, tags: [] };
  await sink.export(batch({ windowStartMs: Date.now() - 19 * 3_600_000, series: [gauge('kept')], events: [event] }));
  t.equal(stats.dropped('expired'), 1, 'the 19-hour-old event is dropped');
  t.equal(stats.gaugeValues().get('retry_buffer_payloads'), 1, 'the series, within the 100-hour limit given, is kept');
  await sink.shutdown(Date.now() + 100);
});
