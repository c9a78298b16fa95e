import t from 'tap';
import { CounterAgg, GaugeAgg, SetAgg } from './scalar-oracle.js';

t.test('counter: value / rate; merge adds', async (t) => {
  const a = new CounterAgg();
  a.add(1, 1);
  a.add(1, 0.5);
  const b = new CounterAgg();
  b.add(3, 1);
  a.merge(b);
  t.equal(a.sum, 6);
});

t.test('gauge: merge keeps the latest update, whichever side it is on', async (t) => {
  const a = new GaugeAgg();
  a.set(1, 100);
  const b = new GaugeAgg();
  b.set(2, 50);
  a.merge(b);
  t.equal(a.value, 1, 'older other does not win');
  const c = new GaugeAgg();
  c.set(3, 200);
  a.merge(c);
  t.equal(a.value, 3);
  t.equal(a.updatedAtMs, 200);
  const empty = new GaugeAgg();
  empty.merge(a);
  t.equal(empty.value, 3, 'merging into an empty gauge takes the other value');
});

t.test('set: merge is a union', async (t) => {
  const a = new SetAgg();
  a.add('x');
  a.add('y');
  const b = new SetAgg();
  b.add('y');
  b.add('z');
  a.merge(b);
  t.equal(a.size, 3);
  t.same([...a.members].sort(), ['x', 'y', 'z']);
});
