import t from 'tap';
import { InFlightExports, readBodyHead, retryAfterMs, windowResult } from '../../src/delivery/exports.js';
import { SUCCESS, type ExportResult } from '../../src/contracts.js';

t.test('Retry-After: seconds, HTTP date, extra second headers, capped, garbage ignored; node and fetch headers', async (t) => {
  const now = Date.parse('2026-12-03T12:00:00Z');
  t.equal(retryAfterMs({ 'retry-after': '7' }, 600_000, now), 7000);
  t.equal(retryAfterMs({ 'retry-after': 'Thu, 03 Dec 2026 12:00:30 GMT' }, 600_000, now), 30_000, 'HTTP date');
  t.equal(retryAfterMs({ 'retry-after': 'Thu, 03 Dec 2026 11:00:00 GMT' }, 600_000, now), 0, 'a date in the past: no wait');
  t.equal(retryAfterMs({ 'retry-after': '86400' }, 300_000, now), 300_000, 'capped');
  t.equal(retryAfterMs({ 'retry-after': 'soon' }, 600_000, now), undefined);
  t.equal(retryAfterMs({}, 600_000, now), undefined);
  t.equal(retryAfterMs({ 'x-ratelimit-reset': '2' }, 600_000, now), undefined, 'other headers only when asked for');
  t.equal(retryAfterMs({ 'x-ratelimit-reset': '2' }, 600_000, now, ['x-ratelimit-reset']), 2000);
  t.equal(retryAfterMs({ 'retry-after': '1', 'x-ratelimit-reset': '2' }, 600_000, now, ['x-ratelimit-reset']), 1000, 'Retry-After first');
  t.equal(retryAfterMs(new Headers({ 'Retry-After': '3' }), 600_000, now), 3000, 'fetch Headers');
  t.equal(retryAfterMs(new Headers(), 600_000, now), undefined);
});

t.test('a window that lost nothing succeeds; one that lost items fails, naming how many and why', async (t) => {
  t.equal(windowResult({ lost: 0, reasons: new Set() }, 'graphite'), SUCCESS);
  const r = windowResult({ lost: 3, reasons: new Set(['expired', 'bad_request']) }, 'otlp', 'data point(s)');
  t.equal(r.code, 'failure');
  t.match(r.code === 'failure' ? r.error.message : '', /^otlp sink: 3 data point\(s\) of the window dropped \(expired, bad_request\)$/);
});

t.test('in-flight exports: settled() waits for those running, not for later ones', async (t) => {
  const inflight = new InFlightExports();
  let finish: (r: ExportResult) => void = () => undefined;
  const running = inflight.track(new Promise<ExportResult>((resolve) => (finish = resolve)));
  let settled = false;
  const wait = inflight.settled().then(() => (settled = true));
  await new Promise((r) => setImmediate(r));
  t.notOk(settled, 'still waiting for the running export');
  finish(SUCCESS);
  t.equal(await running, SUCCESS);
  await wait;
  t.ok(settled);
  await inflight.settled();
});

t.test('readBodyHead keeps the head and reads the rest', async (t) => {
  let read = 0;
  async function* body() {
    for (let i = 0; i < 5; i++) {
      read++;
      yield Buffer.from('0123456789');
    }
  }
  const head = await readBodyHead(body(), 15);
  t.equal(head.toString(), '012345678901234');
  t.equal(read, 5, 'read to the end, so the connection can be reused');
});
