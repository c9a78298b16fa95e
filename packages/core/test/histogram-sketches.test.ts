import t from 'tap';
import { Aggregator } from '../src/aggregator.js';
import { AgentSketch } from '../src/aggregates/agent-sketch.js';
import { HistogramAgg } from '../src/aggregates/histogram.js';

const T0 = 1_700_000_000_000;
const feed = (a: Aggregator, text: string) => a.ingestStatsd(Buffer.from(text));
const make = (histogramSketches?: boolean) => new Aggregator({ hostname: 'h1', now: () => T0 + 5, selfMetrics: false, ...(histogramSketches !== undefined ? { histogramSketches } : {}) });
const LINES = 'lat:10|ms|#r:a\nlat:10|ms|#r:a\nlat:250|ms|#r:a\nsize:3|h\nsize:-2|h|@0.5\nhits:1|c\nd:5|d';

t.test('off by default: no histogramSketches, no aggregateOf, the same series as with it off explicitly', async (t) => {
  const a = make();
  feed(a, LINES);
  const b = a.closeWindow();
  t.equal(b.histogramSketches, undefined);
  t.notOk('histogramSketches' in b);
  for (const s of b.series) t.notOk('aggregateOf' in s, `${s.metric} carries no marker`);
  const off = make(false);
  feed(off, LINES);
  t.same(off.closeWindow(), b);
});

t.test('on: one sketch per h/ms context with exact count, sum, min, max; aggregates marked; series otherwise unchanged', async (t) => {
  const on = make(true);
  feed(on, LINES);
  const b = on.closeWindow();
  const hs = b.histogramSketches!;
  t.equal(hs.length, 2);
  const lat = hs.find((s) => s.metric === 'lat')!;
  t.equal(lat.sourceType, 'ms');
  t.same(lat.tags, ['r:a']);
  t.equal(lat.host, 'h1');
  t.equal(lat.timestamp, T0 / 1000);
  t.equal(lat.interval, 10);
  t.match(lat.sketch, { count: 3, sum: 270, min: 10, max: 250, avg: 90 });
  const ref = new AgentSketch();
  ref.insert(10, 2);
  ref.insert(250);
  t.same(lat.sketch.keys, ref.toData().keys, 'bins of the exact samples are the agent sketch bins');
  t.same(lat.sketch.counts, [2, 1]);
  const size = hs.find((s) => s.metric === 'size')!;
  t.equal(size.sourceType, 'h');
  // Weight trunc(1/0.5) = 2 for the sampled value; sum Σ v/rate as the agent's `.sum`.
  t.match(size.sketch, { count: 3, sum: -1, min: -2, max: 3 });
  t.same(size.sketch.counts, [2, 1]);
  t.ok(size.sketch.keys[0]! < 0 && size.sketch.keys[1]! > 0, 'negative values get negative keys, ascending');
  for (const s of b.series) {
    const isAgg = s.metric.startsWith('lat.') || s.metric.startsWith('size.');
    t.equal(s.aggregateOf, isAgg ? (s.metric.startsWith('lat.') ? 'ms' : 'h') : undefined, s.metric);
  }
  const off = make(false);
  feed(off, LINES);
  const plain = off.closeWindow();
  t.same(b.series.map(({ aggregateOf: _, ...s }) => s), plain.series, 'the same series as without the option');
  t.same(b.sketches, plain.sketches, 'distributions untouched');
});

t.test('toSketchData: past the exact limit it is the sketch itself; a run heavier than a wire bin is split', async (t) => {
  const h = new HistogramAgg(4);
  const ref = new AgentSketch();
  for (let i = 1; i <= 50; i++) {
    h.add(i);
    ref.insert(i);
  }
  t.notOk(h.isExact);
  const d = h.toSketchData();
  t.same({ keys: d.keys, counts: d.counts }, { keys: ref.toData().keys, counts: ref.toData().counts });
  t.match(d, { count: 50, sum: 1275, min: 1, max: 50 });
  const heavy = new HistogramAgg();
  heavy.add(7, 1 / 40_000);
  heavy.add(7, 1 / 40_000);
  const hd = heavy.toSketchData();
  t.equal(hd.count, 80_000);
  t.same(hd.counts, [80_000 - 65_535, 65_535]);
  t.equal(hd.keys[0], hd.keys[1]);
  t.same(new HistogramAgg().toSketchData(), { count: 0, min: 0, max: 0, sum: 0, avg: 0, keys: [], counts: [] });
});
