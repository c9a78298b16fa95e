import t from 'tap';
import { v1, v2 } from '@datadog/datadog-api-client';
import { AgentSketch, type Series, type SketchSeries } from '@metrics-distributor/core';
import { encodeCheck, encodeEvent, truncateChars } from '../src/event-check-json.js';
import { assemble, encodeSeries, encodeSketch } from './encode.js';
import { decodeSketchPayload } from './fake-datadog.js';

/** True when the api-client's deserializer flagged anything (unknown enum value, wrong shape) anywhere. */
function hasUnparsed(o: unknown): boolean {
  if (o === null || typeof o !== 'object') return false;
  if ((o as { _unparsed?: boolean })._unparsed === true) return true;
  return Object.values(o as Record<string, unknown>).some(hasUnparsed);
}

function sketchSeries(values: number[], extra: Partial<SketchSeries> = {}): SketchSeries {
  const s = new AgentSketch();
  for (const v of values) s.insert(v);
  return { metric: 'req.latency', timestamp: 1_700_000_000, interval: 10, tags: ['env:prod', 'route:/a'], host: 'web-1', sketch: s.toData(), ...extra };
}

t.test('sketch protobuf decodes with protobufjs to exactly the agent layout', async (t) => {
  const a = sketchSeries([1, 2, 2, 10, -0.5, 0]);
  const b = sketchSeries([100], { metric: 'b', host: '', tags: [] });
  const body = assemble('sketches', [encodeSketch(a)!, encodeSketch(b)!]);
  const decoded = decodeSketchPayload(body);
  t.ok(decoded.hasMetadata, 'the empty metadata footer (field 2) is present, as the agent writes it');
  t.equal(decoded.sketches.length, 2);
  const s = decoded.sketches[0]!;
  t.equal(s.metric, 'req.latency');
  t.equal(s.host, 'web-1');
  t.same(s.tags, ['env:prod', 'route:/a']);
  t.same(s.distributions, [], 'the legacy distributions field is never written');
  t.equal(s.dogsketches.length, 1);
  const d = s.dogsketches[0]!;
  t.equal(d.ts, 1_700_000_000);
  t.equal(d.cnt, 6);
  t.equal(d.min, -0.5);
  t.equal(d.max, 10);
  t.equal(d.sum, 14.5);
  t.equal(d.avg, 14.5 / 6);
  // Agent keys (datadog.md §2.4): key(1)=1338, key(2)=1383, key(10)=1487, key(0)=0, key(-0.5)=-key(0.5)=-1293.
  t.same(d.k, [-1293, 0, 1338, 1383, 1487]);
  t.same(d.n, [1, 1, 1, 2, 1]);
  t.same(d.k, a.sketch.keys);
  t.same(d.n, a.sketch.counts);
  const s2 = decoded.sketches[1]!;
  t.equal(s2.host, '');
  t.same(s2.tags, []);
  t.same(s2.dogsketches[0]!.k, [1635]);
});

t.test('sketch encoding keeps large counts, split bins, negative timestamps and UTF-8', async (t) => {
  const sk = new AgentSketch();
  sk.insert(5, 70_000); // above uint16: the agent layout splits the bin
  const data = sk.toData();
  t.ok(data.keys.length >= 2, 'core split the bin');
  const series: SketchSeries = { metric: 'größe.µs', timestamp: -5, interval: 10, tags: ['', 'é:ü'], host: 'h', sketch: data };
  const decoded = decodeSketchPayload(assemble('sketches', [encodeSketch(series)!]));
  const d = decoded.sketches[0]!.dogsketches[0]!;
  t.equal(decoded.sketches[0]!.metric, 'größe.µs');
  t.same(decoded.sketches[0]!.tags, ['', 'é:ü']);
  t.equal(d.ts, -5);
  t.equal(d.cnt, 70_000);
  t.same(d.n, data.counts);
  t.equal(
    d.n.reduce((x, y) => x + y, 0),
    70_000,
  );
  t.equal(encodeSketch({ ...series, sketch: { ...data, sum: Number.NaN } }), undefined, 'a NaN summary is refused, not encoded');
});

t.test('series JSON is v2 MetricPayload: integer types, interval, points, host resource, tags', async (t) => {
  const base: Series = { metric: 'page.views', type: 'rate', timestamp: 1_700_000_000, value: 3, interval: 10, tags: ['env:prod'], host: 'web-1' };
  const types = { count: 1, rate: 2, gauge: 3 } as const;
  const parts = (['count', 'rate', 'gauge'] as const).map((type) => encodeSeries({ ...base, type })!);
  parts.push(encodeSeries({ ...base, host: '', tags: [], value: -0.25, metric: 'a"b\\c' })!);
  const wire = JSON.parse(assemble('series', parts).toString());
  t.same(wire.series[0], { metric: 'page.views', type: 1, interval: 10, points: [{ timestamp: 1_700_000_000, value: 3 }], resources: [{ type: 'host', name: 'web-1' }], tags: ['env:prod'] });
  for (const [i, type] of (['count', 'rate', 'gauge'] as const).entries()) t.equal(wire.series[i].type, types[type]);
  t.same(wire.series[3], { metric: 'a"b\\c', type: 2, interval: 10, points: [{ timestamp: 1_700_000_000, value: -0.25 }], tags: [] }, 'no host: no resources');

  const model = v2.ObjectSerializer.deserialize(wire, 'MetricPayload') as v2.MetricPayload;
  t.notOk(hasUnparsed(model), 'the api-client model accepts every field and enum value');
  t.equal(model.series[0]!.resources![0]!.type, 'host');
  t.equal(model.series[1]!.type, 2);
  // The check can fail: an integer type outside the enum is flagged.
  t.ok(hasUnparsed(v2.ObjectSerializer.deserialize({ series: [{ ...wire.series[0], type: 7 }] }, 'MetricPayload')));

  t.equal(encodeSeries({ ...base, value: Number.NaN }), undefined, 'NaN would become null and fail the whole payload');
  t.equal(encodeSeries({ ...base, value: Number.POSITIVE_INFINITY }), undefined);
  t.equal(JSON.parse(encodeSeries({ ...base, interval: 0.2 })!.toString()).interval, 1, 'int64 interval for sub-second windows');
});

t.test('events and service checks match the v1 api-client models', async (t) => {
  const ev = JSON.parse(
    encodeEvent({ title: 'Deploy', text: 'line1\nline2', timestampS: 1_700_000_000, host: 'web-1', aggregationKey: 'k', priority: 'low', sourceType: 'jenkins', alertType: 'success', tags: ['a', 'b:c'] }).toString(),
  );
  t.same(ev, { title: 'Deploy', text: 'line1\nline2', date_happened: 1_700_000_000, priority: 'low', host: 'web-1', tags: ['a', 'b:c'], alert_type: 'success', aggregation_key: 'k', source_type_name: 'jenkins' });
  const evModel = v1.ObjectSerializer.deserialize(ev, 'EventCreateRequest') as v1.EventCreateRequest;
  t.notOk(hasUnparsed(evModel));
  t.equal(evModel.alertType, 'success');

  const checks = JSON.parse(assemble('checks', [encodeCheck({ name: 'db', status: 2, timestampS: 1_700_000_000, host: 'web-1', message: 'down', tags: ['x'] }), encodeCheck({ name: 'q', status: 0, timestampS: 1, tags: [] })]).toString());
  t.same(checks, [
    { check: 'db', host_name: 'web-1', timestamp: 1_700_000_000, status: 2, message: 'down', tags: ['x'] },
    { check: 'q', host_name: '', timestamp: 1, status: 0, tags: [] },
  ]);
  const checkModels = v1.ObjectSerializer.deserialize(checks, 'Array<ServiceCheck>') as v1.ServiceCheck[];
  t.notOk(hasUnparsed(checkModels));
  t.equal(checkModels[0]!.hostName, 'web-1');
});

t.test('events: text over 4000 characters and aggregation keys over 100 are cut (the API answers 400 to them), never inside a surrogate pair', async (t) => {
  const base = { title: 'T', timestampS: 1_700_000_000, priority: 'normal' as const, alertType: 'info' as const, tags: [] };
  const long = JSON.parse(encodeEvent({ ...base, text: 'x'.repeat(5000), aggregationKey: 'k'.repeat(150) }).toString()) as { text: string; aggregation_key: string };
  t.equal(long.text.length, 4000);
  t.equal(long.aggregation_key.length, 100);
  const exact = JSON.parse(encodeEvent({ ...base, text: 'y'.repeat(4000) }).toString()) as { text: string };
  t.equal(exact.text.length, 4000, 'exactly 4000 is kept whole');
  // 3999 ASCII characters then emoji (two UTF-16 units each): the 4000th character is a whole emoji.
  const emoji = JSON.parse(encodeEvent({ ...base, text: `${'a'.repeat(3999)}😀😀😀` }).toString()) as { text: string };
  t.equal([...emoji.text].length, 4000, '4000 characters counted as code points');
  t.ok(emoji.text.endsWith('😀'), 'the last character is a whole emoji, not half a surrogate pair');
  t.equal(truncateChars(undefined, 3), undefined);
  t.equal(truncateChars('abc', 3), 'abc');
  t.equal(truncateChars('😀😀😀', 2), '😀😀');
});
