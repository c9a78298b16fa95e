import t from 'tap';
import { ComponentContext } from '../../src/component.js';
import { MdError } from '../../src/errors.js';
import { createRootLogger } from '../../src/logger.js';
import { DeliveryPolicy, type DeliveryOptions, type LossTally, type SendOutcome } from '../../src/delivery/policy.js';
import { ComponentStats } from '../../src/stats.js';
import { FakeClock } from './fake-clock.js';

/** A payload of the fake sink: a list of item names, 10 bytes each. */
interface Pay {
  readonly items: readonly string[];
  readonly dataMs: number;
}

const RETRYABLE: SendOutcome = { kind: 'retryable', error: new MdError('MD_ERR_SINK_EXPORT', '503') };

function setup(answer: (p: Pay) => SendOutcome, opts: Partial<DeliveryOptions> = {}) {
  const clock = new FakeClock();
  const stats = new ComponentStats('sink-fake');
  const retryStats = new ComponentStats('sink-fake-retry');
  const lines: Record<string, unknown>[] = [];
  const logger = createRootLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
  const context = new ComponentContext('sink', 'sink-fake', logger, stats, () => clock.now());
  const sent: string[][] = [];
  const lost: [string[], number, string][] = [];
  const policy = new DeliveryPolicy<Pay>(
    {
      send: (p) => {
        sent.push([...p.items]);
        return Promise.resolve(answer(p));
      },
      split: (p) => {
        const mid = Math.ceil(p.items.length / 2);
        return Promise.resolve([
          { items: p.items.slice(0, mid), dataMs: p.dataMs },
          { items: p.items.slice(mid), dataMs: p.dataMs },
        ]);
      },
      bytes: (p) => p.items.length * 10,
      items: (p) => p.items.length,
      dataMs: (p) => p.dataMs,
      onLost: (p, n, reason) => lost.push([[...p.items], n, reason]),
    },
    context,
    { retryBufferBytes: 1000, retryBaseMs: 100, retryMaxMs: 400, maxAgeMs: 60_000, concurrency: 4, destination: 'Fake', retryStats, clock, random: () => 1, ...opts },
  );
  const pay = (...items: string[]): Pay => ({ items, dataMs: clock.now() });
  return { clock, stats, retryStats, lines, policy, sent, lost, pay };
}

t.test('ok: sent once, nothing counted', async (t) => {
  const s = setup(() => ({ kind: 'ok' }));
  const tally: LossTally = { lost: 0, reasons: new Set() };
  await s.policy.deliver(s.pay('a', 'b'), tally);
  t.same(s.sent, [['a', 'b']]);
  t.equal(tally.lost, 0);
  t.equal(s.stats.dropped(), 0);
  t.equal(s.policy.bufferedPayloads, 0);
});

t.test('rejected: every item dropped under the sink reason, with its log; not retried', async (t) => {
  const s = setup(() => ({ kind: 'rejected', reason: 'forbidden', log: { code: 'MD_ERR_SINK_AUTH', level: 'error', message: 'bad key' } }));
  const tally: LossTally = { lost: 0, reasons: new Set() };
  await s.policy.deliver(s.pay('a', 'b', 'c'), tally);
  t.equal(s.stats.dropped('forbidden'), 3);
  t.same([tally.lost, [...tally.reasons]], [3, ['forbidden']]);
  t.same(s.lost, [[['a', 'b', 'c'], 3, 'forbidden']], 'the target hears of it');
  t.ok(s.lines.some((l) => l['msg'] === 'bad key' && l['level'] === 50));
  await s.clock.advance(10_000);
  t.equal(s.sent.length, 1, 'never retried');
});

t.test('too_large: split in halves until accepted; a single item still too large is dropped', async (t) => {
  const s = setup((p) => (p.items.length > 2 || p.items.includes('huge') ? { kind: 'too_large' } : { kind: 'ok' }));
  const tally: LossTally = { lost: 0, reasons: new Set() };
  await s.policy.deliver(s.pay('a', 'b', 'c', 'd', 'e', 'f', 'g', 'huge'), tally);
  t.same(s.sent.map((x) => x.join('')), ['abcdefghuge', 'abcd', 'ab', 'cd', 'efghuge', 'ef', 'ghuge', 'g', 'huge']);
  t.equal(s.stats.dropped('payload_too_large'), 1);
  t.same([tally.lost, [...tally.reasons]], [1, ['payload_too_large']]);
  t.ok(s.lines.some((l) => (l['err'] as { code?: string }).code === 'MD_ERR_SINK_PAYLOAD_TOO_LARGE'));
});

t.test('retryable: parked, then one probe per round at the jittered doubling backoff; the rest follow the probe', async (t) => {
  let up = false;
  const s = setup(() => (up ? { kind: 'ok' } : RETRYABLE));
  await s.policy.deliver(s.pay('a'));
  t.equal(s.policy.bufferedPayloads, 1);
  // The breaker is open: these are parked without a request.
  await s.policy.deliver(s.pay('b'));
  await s.policy.deliver(s.pay('c'));
  t.equal(s.sent.length, 1);
  t.equal(s.stats.gaugeValues().get('retry_buffer_payloads'), 3);
  t.equal(s.stats.gaugeValues().get('retry_buffer_bytes'), 30);
  await s.clock.advance(99);
  t.equal(s.sent.length, 1, 'not before the first backoff (100 ms)');
  await s.clock.advance(1);
  t.same(s.sent.slice(1), [['c']], 'one probe, the newest');
  await s.clock.advance(199);
  t.equal(s.sent.length, 2, 'second backoff doubles to 200 ms');
  up = true;
  await s.clock.advance(1);
  t.same(s.sent.slice(2).map((x) => x[0]).sort(), ['a', 'b', 'c'], 'the probe went through, the rest followed');
  t.equal(s.policy.bufferedPayloads, 0);
  t.equal(s.stats.dropped(), 0);
  t.same([s.retryStats.received, s.retryStats.sent, s.retryStats.failed], [4, 3, 0], 'c went back once');
  t.equal(s.lines.filter((l) => String(l['msg']).includes('kept for retry')).length, 1, 'the retry warning is rate-limited');
});

t.test('Retry-After longer than the backoff is honoured', async (t) => {
  let n = 0;
  const s = setup(() => (n++ === 0 ? { kind: 'retryable', error: new MdError('MD_ERR_SINK_EXPORT'), retryAfterMs: 5000 } : { kind: 'ok' }));
  await s.policy.deliver(s.pay('a'));
  await s.clock.advance(4999);
  t.equal(s.sent.length, 1);
  await s.clock.advance(1);
  t.equal(s.sent.length, 2);
  t.equal(s.policy.bufferedPayloads, 0);
});

t.test('retry buffer bounded in bytes: the oldest dropped and counted retry_buffer_full', async (t) => {
  const s = setup(() => RETRYABLE, { retryBufferBytes: 50 });
  for (let i = 0; i < 8; i++) await s.policy.deliver(s.pay(`p${i}`));
  t.equal(s.policy.bufferedBytes, 50);
  t.equal(s.stats.dropped('retry_buffer_full'), 3);
  t.same(s.lost.map((l) => l[0][0]), ['p0', 'p1', 'p2'], 'the oldest went');
  t.equal(s.retryStats.failed, 3);
  t.ok(s.lines.some((l) => String(l['msg']).includes('retry buffer full')));
});

t.test('age limit: buffered data past maxAgeMs is dropped as expired and never sent; too old on failure, at once', async (t) => {
  const s = setup(() => RETRYABLE, { maxAgeMs: 1000, retryBaseMs: 400, retryMaxMs: 400 });
  await s.policy.deliver(s.pay('a', 'b'));
  await s.clock.advance(900);
  const tries = s.sent.length;
  await s.clock.advance(300);
  t.equal(s.stats.dropped('expired'), 2);
  t.equal(s.policy.bufferedPayloads, 0);
  t.equal(s.sent.length, tries, 'the expired payload was not sent again');
  t.ok(s.lines.some((l) => (l['err'] as { code?: string }).code === 'MD_ERR_SINK_EXPIRED'));

  const old: Pay = { items: ['z'], dataMs: s.clock.now() - 5000 };
  await s.clock.advance(400);
  await s.policy.deliver(old);
  t.equal(s.stats.dropped('expired'), 3, 'too old already: dropped, not buffered');
  t.equal(s.policy.bufferedPayloads, 0);
});

t.test('a per-payload age limit from the target wins over the default', async (t) => {
  const s = setup(() => RETRYABLE, { maxAgeMs: 1_000_000 });
  const policy = new DeliveryPolicy<Pay>(
    { send: () => Promise.resolve(RETRYABLE), split: () => Promise.resolve([]), bytes: () => 1, items: () => 1, dataMs: (p) => p.dataMs, maxAgeMs: () => 10 },
    new ComponentContext('sink', 'sink-x', createRootLogger({ level: 'silent' }), s.stats),
    { retryBufferBytes: 100, retryBaseMs: 100, retryMaxMs: 100, maxAgeMs: 1_000_000, concurrency: 1, destination: 'X', clock: s.clock },
  );
  await policy.deliver({ items: ['a'], dataMs: s.clock.now() - 11 });
  t.equal(s.stats.dropped('expired'), 1);
});

t.test('a throwing send is an internal_error, counted, never a rejection', async (t) => {
  const s = setup(() => {
    throw new Error('bug');
  });
  const tally: LossTally = { lost: 0, reasons: new Set() };
  await s.policy.deliver(s.pay('a'), tally);
  t.equal(s.stats.dropped('internal_error'), 1);
  t.same([...tally.reasons], ['internal_error']);
});

t.test('shutdown: retries at once ignoring the backoff until the deadline, then counts shutdown_unsent in one line', async (t) => {
  let up = false;
  const s = setup(() => (up ? { kind: 'ok' } : RETRYABLE), { retryBaseMs: 60_000, retryMaxMs: 60_000 });
  await s.policy.deliver(s.pay('a'));
  await s.policy.deliver(s.pay('b'));
  up = true;
  await s.policy.shutdown(s.clock.now() + 1000);
  t.same(s.sent.slice(1).map((x) => x[0]).sort(), ['a', 'b'], 'delivered at shutdown, not after 60 s');
  t.equal(s.stats.dropped(), 0);

  const down = setup(() => RETRYABLE, { retryBaseMs: 100, retryMaxMs: 100 });
  await down.policy.deliver(down.pay('a', 'b'));
  const done = down.policy.shutdown(down.clock.now() + 500);
  await down.clock.advance(600);
  await done;
  t.ok(down.sent.length >= 3, `retried during shutdown (${down.sent.length} sends)`);
  t.equal(down.stats.dropped('shutdown_unsent'), 2);
  const line = down.lines.find((l) => String(l['msg']).includes('2 item(s) undelivered'));
  t.ok(line, 'logged once');
  t.equal(line?.['lost'], 2);
  t.ok(down.policy.final);
  await down.policy.deliver(down.pay('late'));
  t.equal(down.stats.dropped('shutdown_unsent'), 3, 'a payload failing after shutdown is counted at once, not kept');
  t.equal(down.policy.bufferedPayloads, 0);
});
