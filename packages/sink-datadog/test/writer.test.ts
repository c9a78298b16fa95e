import t from 'tap';
import { randomBytes } from 'node:crypto';
import { AgentSketch, type Series, type SeriesType, type SketchSeries } from '@metrics-distributor/core';
import type { PayloadKind } from '../src/kinds.js';
import { assemble, encodeSeries, encodeSketch, encodeSketchEntry } from './encode.js';
import { SketchEncoder, sketchIsValid } from '../src/proto.js';
import { BufferPool, PayloadWriter, SeriesEncoder, itemBytes, splitPayload, type RawPayload } from '../src/writer.js';
import { TS, batch, gauge, makeSink, startFakeDatadog } from './fake-datadog.js';

/** A deterministic generator, so a failure can be replayed from the seed in its message. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const ALPHABET = ['a', 'b', 'z', '.', '_', ':', '-', '/', '"', '\\', '\n', '\t', '\u0001', 'é', 'ü', 'µ', '日', '本', '😀', '\ud800', '\udfff', ' '];
const TYPES: SeriesType[] = ['count', 'rate', 'gauge'];

function randomString(r: () => number, max: number): string {
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += r() < 0.8 ? String.fromCharCode(97 + Math.floor(r() * 26)) : ALPHABET[Math.floor(r() * ALPHABET.length)]!;
  return s;
}

function randomValue(r: () => number): number {
  const k = r();
  if (k < 0.2) return Math.floor(r() * 1000);
  if (k < 0.3) return -r() * 1e6;
  if (k < 0.4) return r() * 1e-9;
  if (k < 0.5) return 1e21 * r();
  if (k < 0.55) return -0;
  if (k < 0.6) return Number.MAX_VALUE;
  return r() * 100;
}

/** Random series over a pool of shared tags arrays, hosts and names, as core hands them over. */
function randomSeries(r: () => number, n: number): Series[] {
  const tagPool = Array.from({ length: 12 }, () => Array.from({ length: Math.floor(r() * 4) }, () => randomString(r, 12)).sort());
  tagPool.push([]);
  const hosts = ['', 'web-1', 'hôst-ü', randomString(r, 10)];
  const names = Array.from({ length: 30 }, () => randomString(r, 20) || 'm');
  return Array.from({ length: n }, () => ({
    metric: names[Math.floor(r() * names.length)]!,
    type: TYPES[Math.floor(r() * TYPES.length)]!,
    timestamp: r() < 0.1 ? -5 - r() * 1000 : TS + Math.floor(r() * 1000) + (r() < 0.1 ? 0.7 : 0),
    value: randomValue(r),
    interval: r() < 0.1 ? 0.2 : r() < 0.5 ? 10 : 2.6,
    tags: tagPool[Math.floor(r() * tagPool.length)]!,
    host: hosts[Math.floor(r() * hosts.length)]!,
  }));
}

/** Encodes like the sink: every item through the cache, bodies cut at `maxItems`. */
function writeAll(enc: SeriesEncoder, series: readonly Series[], maxItems: number): { payloads: RawPayload[]; encoded: Series[] } {
  const w = new PayloadWriter('series');
  const payloads: RawPayload[] = [];
  const encoded: Series[] = [];
  for (const s of series) {
    if (!enc.encode(s)) continue;
    if (w.items >= maxItems) payloads.push(w.close()!);
    w.addText(enc.text, enc.bytes);
    encoded.push(s);
  }
  const last = w.close();
  if (last !== undefined) payloads.push(last);
  return { payloads, encoded };
}

t.test('cached series encoding is byte-identical to encodeSeries on random series, window after window', async (t) => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    const r = rng(seed);
    const enc = new SeriesEncoder();
    const series = randomSeries(r, 600);
    for (let window = 0; window < 3; window++) {
      // Same identities every window, new numbers, some names and hosts swapped.
      const win = series.map((s) => ({ ...s, value: randomValue(r), host: r() < 0.05 ? 'moved' : s.host, metric: r() < 0.05 ? `${s.metric}.x` : s.metric }));
      const { payloads, encoded } = writeAll(enc, win, 97);
      const expected = encoded.map((s) => encodeSeries(s)!);
      t.equal(encoded.length, win.filter((s) => encodeSeries(s) !== undefined).length, `seed ${seed}: the same items are refused`);
      let k = 0;
      let same = true;
      for (const p of payloads) {
        const want = assemble('series', expected.slice(k, k + p.starts.length));
        if (!want.equals(p.raw)) same = false;
        for (let i = 0; i < p.starts.length; i++) if (!itemBytes('series', p, i).equals(expected[k + i]!)) same = false;
        k += p.starts.length;
      }
      t.ok(same, `seed ${seed} window ${window}: every body and item is byte-identical`);
      t.equal(k, expected.length);
    }
  }
});

t.test('the cache notices a changed host, name, type, interval or tags length for the same tags array', async (t) => {
  const enc = new SeriesEncoder();
  const tags = ['env:prod'];
  const base: Series = { metric: 'm', type: 'gauge', timestamp: TS, value: 1, interval: 10, tags, host: 'a' };
  const variants: Series[] = [
    base,
    { ...base, metric: 'naïve.µs' },
    { ...base, metric: 'q"uote\\' },
    { ...base, host: 'b' },
    { ...base, host: '' },
    { ...base, metric: 'n' },
    { ...base, type: 'rate' },
    { ...base, interval: 20 },
    { ...base, interval: 0.3 },
    base,
  ];
  for (const s of variants) {
    t.ok(enc.encode(s));
    t.equal(enc.text, encodeSeries(s)!.toString('utf8'), JSON.stringify({ ...s, tags: undefined }));
    t.equal(enc.bytes, encodeSeries(s)!.length);
  }
  // Mutating the array breaks core's contract, but a changed length is still caught.
  tags.push('extra:1');
  t.ok(enc.encode(base));
  t.equal(enc.text, encodeSeries(base)!.toString('utf8'), 'a grown tags array is re-encoded');
  t.notOk(enc.encode({ ...base, value: Number.NaN }), 'NaN refused');
  t.notOk(enc.encode({ ...base, timestamp: Number.POSITIVE_INFINITY }), '±Inf timestamp refused');
});

t.test('the cache stays bounded: a tags array shared by ever-new hosts keeps a fixed number of entries', async (t) => {
  const enc = new SeriesEncoder();
  // Core interns tag lists, so one array serves every context with these tags: many names, many hosts.
  const shared = ['env:prod'];
  let wrong = 0;
  for (let i = 0; i < 3000; i++) {
    const s: Series = { metric: `name.${i % 700}`, type: 'gauge', timestamp: TS, value: i, interval: 10, tags: shared, host: `host-${i}` };
    if (!enc.encode(s) || enc.text !== encodeSeries(s)!.toString('utf8') || enc.bytes !== encodeSeries(s)!.length) wrong++;
  }
  t.equal(wrong, 0, 'every one of 3,000 series encoded right');
  t.ok(enc.cachedHosts(shared) <= 257, `${enc.cachedHosts(shared)} hosts kept for one tags array`);
  // Hosts that come back (a few hosts interleaved) stay cached and still encode right.
  const few = ['a:1'];
  for (let i = 0; i < 200; i++) {
    const s: Series = { metric: 'm', type: 'rate', timestamp: TS, value: i, interval: 10, tags: few, host: ['h1', 'h2', '', 'h3'][i % 4]! };
    if (!enc.encode(s) || enc.text !== encodeSeries(s)!.toString('utf8')) wrong++;
  }
  t.equal(wrong, 0, 'interleaved hosts encode right');
  t.equal(enc.cachedHosts(few), 4);
  t.equal(enc.cachedHosts(['a:1']), 0, 'keyed by the array instance, not its content');
});

t.test('the timestamp and interval part is rebuilt when they change between series', async (t) => {
  const enc = new SeriesEncoder();
  const tags = ['x:y'];
  let wrong = 0;
  for (let i = 0; i < 100; i++) {
    const s: Series = { metric: 'ts.m', type: (['count', 'rate', 'gauge'] as const)[i % 3]!, timestamp: TS + (i % 7), value: i / 3, interval: 1 + (i % 5), tags, host: 'h' };
    if (!enc.encode(s) || enc.text !== encodeSeries(s)!.toString('utf8')) wrong++;
  }
  t.equal(wrong, 0);
});

t.test('the writer: bodies and split halves are exactly the joined items, for every kind', async (t) => {
  const r = rng(7);
  const items: Record<PayloadKind, Buffer[]> = {
    series: Array.from({ length: 9 }, (_, i) => Buffer.from(`{"i":${i},"s":${JSON.stringify(randomString(r, 30))}}`)),
    sketches: Array.from({ length: 9 }, () => randomBytes(1 + Math.floor(r() * 40))),
    events: [Buffer.from('{"title":"é"}')],
    checks: Array.from({ length: 5 }, (_, i) => Buffer.from(`{"check":"${i}"}`)),
  };
  for (const kind of Object.keys(items) as PayloadKind[]) {
    const w = new PayloadWriter(kind);
    t.equal(w.close(), undefined, `${kind}: an empty writer closes to nothing`);
    const list = items[kind];
    for (const [i, b] of list.entries()) {
      // Mix text and bytes items: both must land in order.
      if (kind !== 'sketches' && i % 2 === 0) w.addText(b.toString('utf8'), b.length);
      else w.addBytes(b);
    }
    t.equal(w.size, assemble(kind, list).length, `${kind}: size is exact before closing`);
    const p = w.close()!;
    t.ok(p.raw.equals(assemble(kind, list)), `${kind}: body`);
    t.same(
      Array.from({ length: list.length }, (_, i) => itemBytes(kind, p, i).toString('hex')),
      list.map((b) => b.toString('hex')),
      `${kind}: item offsets`,
    );
    if (list.length > 1) {
      const [a, b] = splitPayload(kind, p);
      const mid = Math.ceil(list.length / 2);
      t.ok(a.raw.equals(assemble(kind, list.slice(0, mid))), `${kind}: first half`);
      t.ok(b.raw.equals(assemble(kind, list.slice(mid))), `${kind}: second half`);
      const [b1, b2] = splitPayload(kind, b);
      t.ok(Buffer.concat([itemBytes(kind, b1, 0), itemBytes(kind, b2, 0)]).equals(Buffer.concat([list[mid]!, list[mid + Math.ceil((list.length - mid) / 2)]!])), `${kind}: halves of a half`);
    }
    w.addBytes(list[0]!);
    t.ok(w.close()!.raw.equals(assemble(kind, [list[0]!])), `${kind}: the writer is reusable after close`);
  }
});

t.test('the writer grows past its first buffer and its offset table', async (t) => {
  const w = new PayloadWriter('series');
  const parts: Buffer[] = [];
  for (let i = 0; i < 5000; i++) {
    const b = Buffer.from(`{"n":${i},"pad":"${'x'.repeat(i % 97)}"}`);
    parts.push(b);
    w.addText(b.toString('latin1'), b.length);
  }
  const p = w.close()!;
  t.ok(p.raw.length > 64 * 1024);
  t.ok(p.raw.equals(assemble('series', parts)));
  t.equal(p.starts.length, 5000);
  t.ok(itemBytes('series', p, 4999).equals(parts[4999]!));
});

t.test('the writer refuses a text item whose declared size is wrong rather than sending a corrupt body', async (t) => {
  const w = new PayloadWriter('series');
  w.addText('é', 1);
  t.throws(() => w.close(), /bytes written/);
});

t.test('sketch entries copied into bodies decode as before', async (t) => {
  const sk = new AgentSketch();
  for (let i = 1; i < 100; i++) sk.insert(i);
  const s: SketchSeries = { metric: 'd', timestamp: TS, interval: 10, tags: ['a:b'], host: 'h', sketch: sk.toData() };
  const w = new PayloadWriter('sketches');
  w.addBytes(encodeSketch(s)!);
  w.addBytes(encodeSketch({ ...s, metric: 'e' })!);
  t.ok(w.close()!.raw.equals(assemble('sketches', [encodeSketch(s)!, encodeSketch({ ...s, metric: 'e' })!])));
});

t.test('export yields to the event loop while encoding a big window, and later windows reuse the cache', async (t) => {
  const fake = await startFakeDatadog();
  t.teardown(() => fake.close());
  const { sink } = makeSink(fake);
  const tagArrays = Array.from({ length: 2000 }, (_, i) => ['env:prod', `shard:${i}`]);
  const windowOf = (w: number): Series[] =>
    Array.from({ length: 60_000 }, (_, i) => ({ ...gauge(`big.${i % 3000}`, tagArrays[i % 2000]), timestamp: TS + w * 10, value: i + w }));
  for (let w = 0; w < 2; w++) {
    const series = windowOf(w);
    let ticks = 0;
    let longest = 0;
    let last = performance.now();
    let running = true;
    const seen = fake.requests.length;
    const tick = (): void => {
      // Only the encoding phase: once bodies arrive, the in-process stand-in's own decoding is on this thread too.
      if (fake.requests.length > seen) running = false;
      if (!running) return;
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      ticks++;
      setImmediate(tick);
    };
    setImmediate(tick);
    const res = await sink.export(batch({ series }));
    running = false;
    t.same(res, { code: 'success' });
    // Without yields the whole window would be one callback: no tick at all before the first body. Bodies
    // are sent while the rest is encoded, so the first one can arrive after only a few 1 ms slices.
    t.ok(ticks >= 2, `window ${w}: the loop turned ${ticks} times before the first body arrived`);
    // Generous for shared CI machines; the slices themselves are ~4 ms.
    t.ok(longest < 250, `window ${w}: longest stretch without a loop turn ${Math.round(longest)} ms`);
  }
  const got = fake.series();
  t.equal(got.length, 120_000, 'every series of both windows arrived');
  const second = got.filter((s) => (s['points'] as { timestamp: number }[])[0]!.timestamp === TS + 10);
  t.equal(second.length, 60_000);
  const one = second.find((s) => s['metric'] === 'big.5' && (s['points'] as { value: number }[])[0]!.value === 6)!;
  t.same(one, { metric: 'big.5', type: 3, interval: 10, points: [{ timestamp: TS + 10, value: 6 }], resources: [{ type: 'host', name: 'web-1' }], tags: ['env:prod', 'shard:5'] });
  await sink.shutdown(Date.now() + 2000);
});

t.test('sketch entries written in place are byte-identical to encodeSketchEntry on random sketches', async (t) => {
  const enc = new SketchEncoder();
  const r = rng(99);
  const tagPool = [[], ['env:prod'], ['é:ü', ''], Array.from({ length: 40 }, (_, i) => `k${i}:${'v'.repeat(i)}`)];
  const numbers = [0, -0, 1, -1, 0.5, -2.5e-300, 1e300, 2 ** 53 + 2, 2 ** 64 + 7, -(2 ** 40), 1.5, -5.7];
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  let wrong = 0;
  let checked = 0;
  for (let round = 0; round < 3; round++) {
    const w = new PayloadWriter('sketches');
    const expected: Buffer[] = [];
    for (let i = 0; i < 300; i++) {
      const sk = new AgentSketch();
      const n = Math.floor(r() * 50);
      for (let j = 0; j < n; j++) sk.insert((r() - 0.3) * 10 ** Math.floor(r() * 12 - 6), 1 + Math.floor(r() * 3));
      const data = sk.toData();
      const s: SketchSeries = {
        metric: r() < 0.1 ? '' : r() < 0.2 ? `größe.${randomString(r, 8)}` : `d.${i % 50}`,
        timestamp: r() < 0.2 ? pick(numbers) : TS + round * 10,
        interval: 10,
        tags: pick(tagPool),
        host: r() < 0.2 ? '' : pick(['web-1', 'hôst', 'b']),
        sketch: r() < 0.2 ? { ...data, count: pick(numbers), min: pick(numbers), max: pick(numbers), sum: pick(numbers), avg: pick(numbers) } : data,
      };
      if (!sketchIsValid(s)) continue;
      const want = encodeSketchEntry(s);
      const size = enc.size(s);
      if (size !== want.length) wrong++;
      w.addWith(size, enc.fill);
      expected.push(want);
      checked++;
    }
    const p = w.close()!;
    t.ok(p.raw.equals(assemble('sketches', expected)), `round ${round}: the whole body is byte-identical`);
    for (let i = 0; i < expected.length; i++) if (!itemBytes('sketches', p, i).equals(expected[i]!)) wrong++;
  }
  t.equal(wrong, 0, `${checked} sketches sized and written exactly`);
  // The sketch with an empty dogsketch still writes field 7, as the generic encoder.
  const empty: SketchSeries = { metric: 'e', timestamp: 0, interval: 10, tags: [], host: '', sketch: { count: 0, min: 0, max: 0, sum: 0, avg: 0, keys: [], counts: [] } };
  const w = new PayloadWriter('sketches');
  w.addWith(enc.size(empty), enc.fill);
  t.ok(itemBytes('sketches', w.close()!, 0).equals(encodeSketchEntry(empty)));
  // Same tags array, another host: the cached identity is rebuilt.
  const tags = ['x:1'];
  for (const host of ['a', 'b', '', 'a']) {
    const s: SketchSeries = { ...empty, tags, host, sketch: { ...empty.sketch, count: 1, keys: [5], counts: [1] } };
    const w2 = new PayloadWriter('sketches');
    w2.addWith(enc.size(s), enc.fill);
    t.ok(itemBytes('sketches', w2.close()!, 0).equals(encodeSketchEntry(s)), `host '${host}'`);
  }
});

t.test('a closed body never shares memory with the next one, whether handed over or copied out', async (t) => {
  const w = new PayloadWriter('series');
  const closed: { raw: Buffer; want: Buffer }[] = [];
  // Sizes that fill the scratch Buffer (handed over) and that leave it mostly empty (copied out).
  for (const [round, count] of [400, 3, 2000, 1, 900, 5].entries()) {
    const parts = Array.from({ length: count }, (_, i) => Buffer.from(`{"r":${round},"i":${i},"p":"${'y'.repeat(100)}"}`));
    for (const b of parts) w.addText(b.toString('latin1'), b.length);
    closed.push({ raw: w.close()!.raw, want: assemble('series', parts) });
  }
  for (const [i, c] of closed.entries()) t.ok(c.raw.equals(c.want), `body ${i} intact after the later ones were written`);
  t.ok(
    closed.every((c) => (c.raw.length >= 64 * 1024) === (c.raw.buffer.byteLength !== c.raw.length && c.raw.length > 8192)),
    'bodies of 64 KiB or more are handed over in their scratch Buffer, smaller ones copied out',
  );
});

t.test('the buffer pool reuses what it is given and keeps at most maxFree Buffers', async (t) => {
  const pool = new BufferPool(2);
  const a = pool.take(1000);
  t.ok(a.length >= 1000);
  pool.give(a);
  t.equal(pool.take(500), a, 'a free Buffer big enough is reused');
  t.not(pool.take(10), a, 'once taken it is not handed out twice');
  pool.give(a);
  t.ok(pool.take(5000).length >= 5000, 'too small a free Buffer is not returned for a bigger request');
  for (let i = 0; i < 5; i++) pool.give(Buffer.allocUnsafeSlow(100));
  t.equal(pool.freeBytes, 1000 + 100, 'only maxFree Buffers are kept');
  // The writer takes its scratch from the pool and hands full bodies over in it.
  const w = new PayloadWriter('series', new BufferPool(4));
  const item = Buffer.from(`{"x":"${'z'.repeat(200)}"}`);
  for (let i = 0; i < 400; i++) w.addBytes(item);
  const p = w.close()!;
  t.ok(p.scratch !== undefined && p.raw.buffer === p.scratch.buffer, 'a body filling its scratch is handed over, not copied');
  w.addBytes(item);
  const small = w.close()!;
  t.equal(small.scratch, undefined, 'a small body is copied out');
  t.ok(small.raw.equals(assemble('series', [item])));
  w.dispose();
});

t.test('a 413 on a big pooled body: the body is rebuilt from the compressed bytes, split, and every series arrives once', async (t) => {
  let refused = 0;
  const fake = await startFakeDatadog((r) => {
    const n = (r.json as { series?: unknown[] } | undefined)?.series?.length ?? 0;
    if (r.path === '/api/v2/series' && n > 3000 && refused < 2) {
      refused++;
      return { status: 413 };
    }
    return undefined;
  });
  t.teardown(() => fake.close());
  const { sink, registry } = makeSink(fake, { compression: 'deflate' });
  const tags = ['env:prod', `pad:${'p'.repeat(120)}`];
  const series = Array.from({ length: 25_000 }, (_, i) => ({ ...gauge(`pooled.${i}`, tags), value: i }));
  t.same(await sink.export(batch({ series })), { code: 'success' });
  t.equal(refused, 2, 'two big bodies were refused');
  const got = fake.series().map((s) => s['metric']);
  t.equal(got.length, 25_000);
  t.equal(new Set(got).size, 25_000, 'each exactly once');
  t.equal(registry.component('sink-datadog-series').sent, 25_000);
  t.ok(fake.accepted('/api/v2/series').some((r) => (r.json as { series: unknown[] }).series.length > 3000), 'other big bodies went whole');
  await sink.shutdown(Date.now() + 2000);
});

t.test('one connection to a slow intake: the encoder waits for compression, nothing deadlocks or is lost', async (t) => {
  const fake = await startFakeDatadog(() => ({ delayMs: 150 }));
  t.teardown(() => fake.close());
  const { sink } = makeSink(fake, { maxConcurrentRequests: 1, limits: { series: { maxItems: 1000 } } });
  const tags = ['env:prod', `pad:${'q'.repeat(100)}`];
  // 12 bodies of ~200 KB each: every one is pooled, so the encoder must wait on the single sender.
  const series = Array.from({ length: 12_000 }, (_, i) => ({ ...gauge(`slow.${i}`, tags), value: i }));
  const started = Date.now();
  t.same(await sink.export(batch({ series })), { code: 'success' });
  t.ok(Date.now() - started >= 12 * 150, 'the export waited for the bodies to go out one by one');
  t.equal(fake.maxInFlight, 1);
  const got = fake.series().map((s) => s['metric']);
  t.equal(new Set(got).size, 12_000);
  t.equal(got.length, 12_000);
  await sink.shutdown(Date.now() + 2000);
});
