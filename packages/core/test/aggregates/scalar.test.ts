import t from 'tap';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Aggregator } from '../../src/aggregator.js';
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

/** One sample of the property below: a counter, gauge or set sample for one of a few names. */
interface Op {
  type: 'c' | 'g' | 's';
  name: string;
  value: number;
  rate: number;
  /** Which of two workers sees it, in the merge half of the property. */
  worker: 0 | 1;
}

const ops = fc.array(
  fc.record({
    type: fc.constantFrom<'c' | 'g' | 's'>('c', 'g', 's'),
    name: fc.constantFrom('a', 'b', 'c'),
    value: fc.integer({ min: -1000, max: 1000 }),
    rate: fc.constantFrom(1, 0.5, 0.25),
    worker: fc.constantFrom<0 | 1>(0, 1),
  }),
  { maxLength: 60 },
);

/** What the oracle says each context flushes: counters as a count, gauges as their value, sets as their size. */
function oracle(list: readonly Op[], split: boolean): Map<string, number> {
  const parts = [0, 1].map(() => ({ c: new Map<string, CounterAgg>(), g: new Map<string, GaugeAgg>(), s: new Map<string, SetAgg>() }));
  list.forEach((op, at) => {
    const part = parts[split ? op.worker : 0]!;
    if (op.type === 'c') part.c.set(op.name, part.c.get(op.name) ?? new CounterAgg()).get(op.name)!.add(op.value, op.rate);
    else if (op.type === 'g') part.g.set(op.name, part.g.get(op.name) ?? new GaugeAgg()).get(op.name)!.set(op.value, at);
    else part.s.set(op.name, part.s.get(op.name) ?? new SetAgg()).get(op.name)!.add(String(op.value));
  });
  const [whole, other] = parts as [(typeof parts)[0], (typeof parts)[0]];
  for (const [k, v] of other.c) whole.c.set(k, whole.c.get(k) ?? new CounterAgg()).get(k)!.merge(v);
  for (const [k, v] of other.g) whole.g.set(k, whole.g.get(k) ?? new GaugeAgg()).get(k)!.merge(v);
  for (const [k, v] of other.s) whole.s.set(k, whole.s.get(k) ?? new SetAgg()).get(k)!.merge(v);
  const out = new Map<string, number>();
  for (const [k, v] of whole.c) out.set(k, v.sum);
  for (const [k, v] of whole.g) out.set(k, v.value);
  for (const [k, v] of whole.s) out.set(k, v.size);
  return out;
}

/** Each op's time is its index: gauges then keep the last op, both in the oracle and in the aggregator. */
function aggregated(list: readonly Op[], split: boolean): Map<string, number> {
  const at = { now: 0 };
  const make = () => new Aggregator({ hostname: 'h', selfMetrics: false, countersAs: 'count', now: () => at.now });
  const parent = make();
  const workers = [make(), make()];
  list.forEach((op, i) => {
    at.now = i;
    const agg = split ? workers[op.worker]! : parent;
    if (op.type === 's') agg.set(op.name, op.value);
    else agg.addSample({ name: op.name, type: op.type, value: op.value, sampleRate: op.rate });
  });
  if (split) for (const w of workers) parent.mergeState(w.drainState());
  const out = new Map<string, number>();
  for (const s of parent.closeWindow().series) out.set(s.metric, s.value);
  return out;
}

t.test('the aggregator agrees with the oracle on counters, gauges and sets, in one process and merged from two workers', async (t) => {
  fc.assert(
    fc.property(ops, fc.boolean(), (list, split) => {
      // A gauge and a set of one name both flush as a gauge of that name: keep names apart by type.
      const named = list.map((op) => ({ ...op, name: `${op.type}.${op.name}` }));
      assert.deepStrictEqual(aggregated(named, split), oracle(named, split));
    }),
    { numRuns: 300 },
  );
  t.pass('300 random sample lists agree');
});
