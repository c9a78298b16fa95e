import t from 'tap';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecord, RecordLog, scanSegment, segmentPath } from '../../src/disk/record-log.js';
import { EncodeScratch, decodeBatch, decodeMeta, encodeBatch, metaOf } from '../../src/disk/codec.js';
import { encodeJsonBatch } from '../../src/disk/codec-json.js';
import type { MetricBatch } from '../../src/model.js';

const T_WINDOW = 1;
const START_MS = 1_700_000_000_000;
const sketch = { count: 7, min: -2.5, max: 1e9, sum: 12.25, avg: 1.75, keys: [-1300, -2, 0, 5, 1338, 3000], counts: [1, 65535, 2, 3, 1, 7] };

/** One window holding every item kind and every optional field, present and absent. */
const fullBatch = (): MetricBatch => ({
  windowStartMs: START_MS,
  intervalMs: 10_000,
  series: [
    { metric: 'req.count', type: 'rate', timestamp: START_MS / 1000, value: 0.1, interval: 10, tags: ['env:prod', 'region:eu'], host: 'web-1' },
    { metric: 'req.total', type: 'count', timestamp: START_MS / 1000, value: 12345678901234, interval: 10, tags: [], host: '' },
    { metric: 'temp', type: 'gauge', timestamp: 1_600_000_123.5, value: -0, interval: 1, tags: ['env:prod'], host: 'web-1' },
    { metric: 'nan.gauge', type: 'gauge', timestamp: START_MS / 1000, value: Number.NaN, interval: 10, tags: ['ü:é', '日本'], host: 'h' },
    { metric: 'inf.gauge', type: 'gauge', timestamp: START_MS / 1000, value: -Infinity, interval: 10, tags: [], host: 'h' },
    { metric: 'users.set', type: 'gauge', timestamp: START_MS / 1000, value: 3, interval: 10, tags: ['env:prod'], host: 'web-1' },
    { metric: 'lat.max', type: 'gauge', timestamp: START_MS / 1000, value: 9.5, interval: 10, tags: ['env:prod'], host: 'web-1', aggregateOf: 'ms' },
    { metric: 'lat.95percentile', type: 'gauge', timestamp: START_MS / 1000, value: 9, interval: 10, tags: [], host: 'web-1', aggregateOf: 'h' },
    { metric: 'lat.count', type: 'rate', timestamp: START_MS / 1000, value: 0.4, interval: 10, tags: [], host: 'web-1', aggregateOf: 'h' },
  ],
  sketches: [
    { metric: 'dist', timestamp: START_MS / 1000, interval: 10, tags: ['env:prod'], host: 'web-1', sketch },
    { metric: 'dist.empty', timestamp: 1_600_000_000, interval: 2.5, tags: [], host: '', sketch: { count: 0, min: 0, max: 0, sum: 0, avg: 0, keys: [], counts: [] } },
    { metric: 'dist.odd', timestamp: START_MS / 1000, interval: 10, tags: [], host: 'h', sketch: { count: 1.5, min: 1, max: 1, sum: 1.5, avg: 1, keys: [0.5], counts: [1.5] } },
  ],
  events: [
    { title: 'deploy', text: 'line 1\nline 2', timestampS: 1_700_000_001, priority: 'normal', alertType: 'info', tags: ['env:prod'] },
    {
      title: 'oops',
      text: '',
      timestampS: 1_700_000_002,
      host: 'web-2',
      aggregationKey: 'agg',
      priority: 'low',
      sourceType: 'jenkins',
      alertType: 'error',
      tags: [],
    },
    { title: 'w', text: 't', timestampS: 0, priority: 'normal', alertType: 'warning', tags: [] },
    { title: 's', text: 't', timestampS: 0, priority: 'low', alertType: 'success', tags: ['a'] },
  ],
  serviceChecks: [
    { name: 'db.up', status: 0, timestampS: 1_700_000_003, tags: ['env:prod'] },
    { name: 'db.up', status: 2, timestampS: 1_700_000_004, host: 'db-1', message: 'down: timeout', tags: [] },
    { name: 'q', status: 1, timestampS: 1, tags: [] },
    { name: 'q', status: 3, timestampS: 1, host: '', message: '', tags: [] },
  ],
});

const withHistograms = (): MetricBatch => ({
  ...fullBatch(),
  histogramSketches: [
    { metric: 'lat', timestamp: START_MS / 1000, interval: 10, tags: ['env:prod'], host: 'web-1', sketch, sourceType: 'ms' },
    { metric: 'size', timestamp: 1_600_000_000, interval: 10, tags: [], host: '', sketch, sourceType: 'h' },
  ],
});

/** A segment file holding one window record with `parts` as its data, written by the real record log. */
const segmentWith = async (parts: Buffer[]): Promise<{ dir: string; file: Buffer }> => {
  const dir = await mkdtemp(join(tmpdir(), 'md-codec-'));
  const { log } = await RecordLog.open(dir, { segmentBytes: 1 << 20 });
  const ref = await log.append(await encodeRecord(T_WINDOW, parts));
  await log.close();
  return { dir, file: await readFile(segmentPath(dir, ref.seg)) };
};

const bytesOf = async (b: MetricBatch): Promise<Buffer> => Buffer.concat(await encodeBatch(b));

t.test('every item kind and optional field survives a binary round trip', async (t) => {
  for (const b of [fullBatch(), withHistograms(), { ...fullBatch(), histogramSketches: [] }]) {
    const data = await bytesOf(b);
    t.equal(data[0], 2, 'version byte');
    const back = await decodeBatch(data);
    t.strictSame(back, b);
    t.strictSame(decodeMeta(data), metaOf(b));
  }
  const noHist = await decodeBatch(await bytesOf(fullBatch()));
  t.notOk(noHist !== undefined && 'histogramSketches' in noHist, 'an absent histogramSketches stays absent');
  const sameTags = await decodeBatch(await bytesOf(fullBatch()));
  t.ok(Object.is(sameTags?.series[2]?.value, -0), '-0 kept');
});

t.test('records encoded one after the other into one scratch are each whole, from a large one to a small one and back', async (t) => {
  const many = (n: number, tag: string): MetricBatch => ({
    windowStartMs: START_MS,
    intervalMs: 10_000,
    series: Array.from({ length: n }, (_, i) => ({ metric: `m.${i}`, type: 'gauge' as const, timestamp: START_MS / 1000, value: i, interval: 10, tags: [`${tag}:${i}`], host: 'h' })),
    sketches: [],
    events: [],
    serviceChecks: [],
  });
  const scratch = new EncodeScratch();
  // Large enough that the second, small record leaves the scratch over four times too big (it shrinks).
  for (const b of [many(60_000, 'big'), fullBatch(), many(60_000, 'again'), withHistograms()]) {
    const parts = await encodeBatch(b, scratch);
    const data = Buffer.concat(parts);
    t.strictSame(data, Buffer.concat(await encodeBatch(b)), 'the bytes of a fresh encode');
    t.strictSame(await decodeBatch(data), b);
  }
});

t.test('an empty window round-trips', async (t) => {
  const b: MetricBatch = { windowStartMs: 0, intervalMs: 1000, series: [], sketches: [], events: [], serviceChecks: [] };
  t.strictSame(await decodeBatch(await bytesOf(b)), b);
});

t.test('a string shared by many series is stored once', async (t) => {
  const tags = ['env:production-with-a-long-name', 'service:checkout-service'];
  const b: MetricBatch = {
    windowStartMs: START_MS,
    intervalMs: 10_000,
    series: Array.from({ length: 1000 }, (_, i) => ({ metric: `m.${i}`, type: 'gauge' as const, timestamp: START_MS / 1000, value: i, interval: 10, tags, host: 'web-1' })),
    sketches: [],
    events: [],
    serviceChecks: [],
  };
  const data = await bytesOf(b);
  t.equal(data.indexOf('service:checkout-service'), data.lastIndexOf('service:checkout-service'));
  const json = Buffer.concat(await encodeJsonBatch(b)).length;
  t.ok(data.length * 5 < json, `${data.length} bytes for 1000 series, against ${json} as JSON`);
  t.strictSame(await decodeBatch(data), b);
});

t.test('a version-1 JSON record written before an upgrade is still read', async (t) => {
  // JSON has no NaN, Infinity or -0: the version-1 record never kept them, so they are left out here.
  const full = fullBatch();
  const b = { ...full, series: full.series.filter((x) => Number.isFinite(x.value) && !Object.is(x.value, -0)) };
  const old = Buffer.concat(await encodeJsonBatch(b));
  t.equal(old[0], '{'.charCodeAt(0));
  t.strictSame(decodeMeta(old), { ...metaOf(b), v: 1 });
  t.strictSame(await decodeBatch(old), b);
  // Through the record log's framing too, as it lies on disk.
  const { dir } = await segmentWith(await encodeJsonBatch(b));
  const { log, records, corrupt } = await RecordLog.open(dir, { segmentBytes: 1 << 20 });
  await log.close();
  t.equal(corrupt.length, 0);
  t.equal(records.length, 1);
  t.strictSame(await decodeBatch(records[0]!.data), b);
});

t.test('a binary record with a flipped byte fails its CRC', async (t) => {
  const { file } = await segmentWith(await encodeBatch(fullBatch()));
  t.equal(scanSegment(1, 'seg', file).records.length, 1);
  for (const at of [30, Math.floor(file.length / 2), file.length - 1]) {
    const bad = Buffer.from(file);
    bad[at] = bad[at]! ^ 0x01;
    const { records, corrupt } = scanSegment(1, 'seg', bad);
    t.equal(records.length, 0, `flip at ${at}: no record`);
    t.equal(corrupt.length, 1, `flip at ${at}: one corrupt region`);
  }
});

t.test('a truncated binary record is detected at every length', async (t) => {
  const data = await bytesOf(withHistograms());
  let undetected = 0;
  for (let n = 0; n < data.length; n++) if ((await decodeBatch(data.subarray(0, n))) !== undefined) undetected++;
  t.equal(undetected, 0);
});

t.test('structural damage that a CRC would not catch is detected', async (t) => {
  const b = fullBatch();
  const data = await bytesOf(b);
  t.equal(await decodeBatch(Buffer.concat([data, Buffer.from([0])])), undefined, 'trailing bytes');
  // The series count lives after the 17-byte head start: claim one more series than there is.
  const more = Buffer.from(data);
  more[17] = more[17]! + 1;
  t.equal(await decodeBatch(more), undefined, 'count larger than the items');
  const fewer = Buffer.from(data);
  fewer[17] = fewer[17]! - 1;
  t.equal(await decodeBatch(fewer), undefined, 'count smaller than the items');
  // A string count of 0 leaves every name's index out of range.
  const head = data.subarray(0, 23);
  t.equal(head[22], (await encodeBatch(b))[0]![22]);
  const noStrings = Buffer.from(data);
  noStrings[22] = 0;
  t.equal(await decodeBatch(noStrings), undefined, 'string index out of range');
  t.equal(decodeMeta(Buffer.from([2, 1, 2])), undefined, 'a head cut short');
  t.equal(decodeMeta(Buffer.from('not json')), undefined, 'neither version');
});

t.test('a large window is decoded in slices that let timers run', async (t) => {
  const n = 20_000;
  const b: MetricBatch = {
    windowStartMs: START_MS,
    intervalMs: 10_000,
    series: Array.from({ length: n }, (_, i) => ({ metric: `m.${i % 5000}`, type: 'rate' as const, timestamp: START_MS / 1000, value: i, interval: 10, tags: [`i:${i}`, 'env:prod'], host: `h${i % 50}` })),
    sketches: [],
    events: [],
    serviceChecks: [],
  };
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  const data = await bytesOf(b);
  const back = await decodeBatch(data);
  clearInterval(timer);
  t.equal(back?.series.length, n);
  t.strictSame(back?.series[n - 1], b.series[n - 1]);
  t.ok(ticks > 0, `a timer ran ${ticks} times while a ${data.length}-byte window was encoded and decoded`);
});

t.test('interned tags arrays and hosts encode to the bytes of a lookup per string', async (t) => {
  // Core hands out one tags array per tag set; the encoder caches by that array. Copies of every
  // array force a lookup per tag, as the encoder did before the cache: the bytes must not differ.
  const shared = [['env:prod', 'shard:1'], ['env:prod', 'shard:2'], []];
  const hosts = ['web-1', 'web-1', 'web-2', 'web-1', ''];
  const series = Array.from({ length: 60 }, (_, i) => ({
    metric: `m.${i % 7}`,
    type: 'gauge' as const,
    timestamp: START_MS / 1000,
    value: i / 3,
    interval: 10,
    tags: shared[i % 3]!,
    host: hosts[i % 5]!,
  }));
  const sketches = Array.from({ length: 9 }, (_, i) => ({ metric: `d.${i}`, timestamp: START_MS / 1000, interval: 10, tags: shared[i % 3]!, host: hosts[i % 5]!, sketch }));
  const interned: MetricBatch = { windowStartMs: START_MS, intervalMs: 10_000, series, sketches, events: [], serviceChecks: [] };
  const copied: MetricBatch = {
    ...interned,
    series: series.map((s) => ({ ...s, tags: [...s.tags], host: `${s.host}` })),
    sketches: sketches.map((s) => ({ ...s, tags: [...s.tags] })),
  };
  const a = await bytesOf(interned);
  t.strictSame(a, await bytesOf(copied));
  t.strictSame(await decodeBatch(a), interned);
  t.equal(a.indexOf('shard:2'), a.lastIndexOf('shard:2'), 'a tag in the table once');
  // A tags array changed in place to another length is seen, not served from the cache.
  const reused = ['env:prod'];
  const grown: MetricBatch = {
    ...interned,
    series: [
      { ...series[0]!, tags: reused },
      { ...series[1]!, tags: Object.assign(reused.slice(), { length: 2 }).fill('x:y', 1) },
    ],
    sketches: [],
  };
  t.strictSame(await decodeBatch(await bytesOf(grown)), grown);
});

t.test('names repeated across tag sets are stored once; a window of all-new names stops looking them up', async (t) => {
  const occurrences = (data: Buffer, s: string): number => {
    let n = 0;
    for (let at = data.indexOf(s); at >= 0; at = data.indexOf(s, at + 1)) n++;
    return n;
  };
  const series = (metric: string, i: number): MetricBatch['series'][number] => ({ metric, type: 'rate', timestamp: START_MS / 1000, value: i, interval: 10, tags: [`i:${i}`], host: 'h' });
  const few: MetricBatch = {
    windowStartMs: START_MS,
    intervalMs: 10_000,
    series: ['a.name', 'a.name', 'b.name', 'a.name'].map(series),
    sketches: [{ metric: 'a.name', timestamp: START_MS / 1000, interval: 10, tags: [], host: 'h', sketch }],
    events: [],
    serviceChecks: [],
  };
  const data = await bytesOf(few);
  t.equal(occurrences(data, 'a.name'), 1);
  t.strictSame(await decodeBatch(data), few);
  // 5000 names of their own (one per context), then the first one again: by then names are appended
  // without a lookup, so it is in the table twice, and still decodes to itself.
  const names = Array.from({ length: 5000 }, (_, i) => `own.${String(i).padStart(4, '0')}`);
  const many: MetricBatch = { ...few, series: [...names, 'own.0000'].map(series), sketches: [] };
  const manyData = await bytesOf(many);
  t.equal(occurrences(manyData, 'own.0000'), 2);
  t.strictSame(await decodeBatch(manyData), many);
});

t.test('a record larger than one checksum piece is written, scanned and checked whole', async (t) => {
  const big = Buffer.alloc(1_100_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  const parts = [Buffer.from([2]), big.subarray(0, 300_000), big.subarray(300_000)];
  const { file } = await segmentWith(parts);
  const scan = scanSegment(1, 'seg', file);
  t.equal(scan.records.length, 1);
  t.strictSame(scan.records[0]?.data, Buffer.concat(parts));
  t.strictSame(scan.corrupt, []);
  // One flipped byte in the third 256 KiB piece of the second part fails the CRC.
  const damaged = Buffer.from(file);
  damaged[8 + 13 + 1 + 300_000 + 600_000]! ^= 0x01;
  const bad = scanSegment(1, 'seg', damaged);
  t.equal(bad.records.length, 0);
  t.equal(bad.corrupt.length, 1);
});
