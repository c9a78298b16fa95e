import t from 'tap';
import { StatsRegistry } from '@metrics-distributor/core';
import { RateRing } from '../src/index.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

t.test('rates are differences of neighbouring samples per second', async (t) => {
  const stats = new StatsRegistry();
  const c = clock();
  const ring = new RateRing(stats, 30, c.now);
  const udp = stats.component('statsd-udp');
  ring.sample();
  udp.received += 100;
  udp.bytes += 5000;
  c.advance(1000);
  ring.sample();
  udp.received += 300;
  udp.drop('truncated', 4);
  c.advance(2000);
  ring.sample();
  const s = ring.series('statsd-udp');
  t.same(s.received, [100, 150]);
  t.same(s.bytes, [5000, 0]);
  t.same(s.dropped, [0, 2]);
  t.equal(ring.spanMs, 3000);
  t.equal(ring.recent('statsd-udp', 'received'), 400);
  t.same(ring.drops(), [{ component: 'statsd-udp', reason: 'truncated', total: 4, recent: 4, perSecond: 1.333 }]);
});

t.test('a component created after the first sample counts from 0', async (t) => {
  const stats = new StatsRegistry();
  const c = clock();
  const ring = new RateRing(stats, 30, c.now);
  ring.sample();
  stats.component('late').received = 50;
  c.advance(1000);
  ring.sample();
  t.same(ring.series('late').received, [50]);
  t.same(ring.series('never-seen').received, [0]);
  t.same(ring.components(), ['late']);
});

t.test('the ring is bounded: points + 1 snapshots, oldest dropped', async (t) => {
  const stats = new StatsRegistry();
  const c = clock();
  const ring = new RateRing(stats, 5, c.now);
  const s = stats.component('x');
  for (let i = 0; i < 50; i++) {
    s.received += i;
    ring.sample();
    c.advance(1000);
  }
  t.equal(ring.size, 6);
  t.equal(ring.series('x').received.length, 5);
  t.same(ring.series('x').received, [45, 46, 47, 48, 49]);
  t.equal(ring.spanMs, 5000);
});

t.test('empty ring and a counter that went backwards', async (t) => {
  const stats = new StatsRegistry();
  const c = clock();
  const ring = new RateRing(stats, 30, c.now);
  t.same(ring.drops(), []);
  t.equal(ring.recent('x', 'received'), 0);
  t.equal(ring.spanMs, 0);
  t.same(ring.components(), []);
  const s = stats.component('x');
  s.received = 10;
  ring.sample();
  s.received = 5;
  c.advance(1000);
  ring.sample();
  t.same(ring.series('x').received, [0]);
  t.equal(ring.recent('x', 'received'), 0);
});
