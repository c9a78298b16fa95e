import t from 'tap';
import { CircuitBreaker, backoffDelay } from '../../src/delivery/backoff.js';
import { FakeClock } from './fake-clock.js';

t.test('backoffDelay: doubling, jittered to [t/2, t], the max once reached', async (t) => {
  const opts = { baseMs: 100, maxMs: 1000 };
  t.equal(backoffDelay(1, opts, () => 0), 50);
  t.equal(backoffDelay(1, opts, () => 1), 100);
  t.equal(backoffDelay(3, opts, () => 0), 200);
  t.equal(backoffDelay(3, opts, () => 0.5), 300);
  t.equal(backoffDelay(4, opts, () => 1), 800);
  t.equal(backoffDelay(5, opts, () => 0), 1000, '1600 ≥ max: the max, without jitter');
  t.equal(backoffDelay(0, opts, () => 1), 100, 'n below 1 counts as the first failure');
});

t.test('breaker: opens for the backoff; failures while open do not escalate; Retry-After wins when longer', async (t) => {
  const clock = new FakeClock();
  const b = new CircuitBreaker({ baseMs: 100, maxMs: 10_000 }, clock, () => 1);
  t.notOk(b.open);
  b.failure();
  t.ok(b.open);
  t.equal(b.remainingMs, 100);
  b.failure();
  b.failure();
  t.equal(b.failures, 1, 'concurrent failures while open count once');
  t.equal(b.remainingMs, 100);
  await clock.advance(100);
  t.notOk(b.open);
  b.failure();
  t.equal(b.failures, 2);
  t.equal(b.remainingMs, 200);
  await clock.advance(200);
  b.failure(5000);
  t.equal(b.remainingMs, 5000, 'Retry-After longer than the backoff');
});

t.test('breaker: one success closes it and forgives two failures', async (t) => {
  const clock = new FakeClock();
  const b = new CircuitBreaker({ baseMs: 100, maxMs: 10_000 }, clock, () => 1);
  for (let i = 0; i < 3; i++) {
    b.failure();
    await clock.advance(b.remainingMs);
  }
  t.equal(b.failures, 3);
  b.failure();
  t.ok(b.success(), 'was open');
  t.notOk(b.open);
  t.equal(b.failures, 2);
  t.notOk(b.success(), 'already closed');
  t.equal(b.failures, 0);
});
