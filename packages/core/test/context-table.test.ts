import t from 'tap';
import { Aggregator } from '../src/aggregator.js';
import type { MetricBatch } from '../src/model.js';

const T0 = 1_700_000_000_000;

/** Every series and sketch of a batch as comparable strings, sorted. */
function rows(batch: MetricBatch): string[] {
  const out = batch.series.map((s) => `${s.metric}|${s.type}|${s.value}|${s.host}|${s.tags.join(',')}`);
  for (const d of batch.sketches) out.push(`${d.metric}|sketch|${d.sketch.count}|${d.sketch.sum}|${d.host}|${d.tags.join(',')}`);
  return out.sort();
}

function agg(opts: ConstructorParameters<typeof Aggregator>[0] = {}): Aggregator {
  let now = T0;
  return new Aggregator({ hostname: 'h', selfMetrics: false, counterExpiryMs: 0, now: () => (now += 1), ...opts });
}

// Names and tag segments of every length around the 4-byte reads of a byte form, with the tags last
// in the packet so no read may run past them.
const lengths = [1, 2, 3, 4, 5, 7, 8, 9, 12, 13];
const forms: string[] = [];
for (const n of lengths) {
  for (const m of [0, ...lengths]) {
    const name = 'n'.repeat(n - 1) + String.fromCharCode(97 + (m % 26));
    forms.push(m === 0 ? `${name}:1|c` : `${name}:1|c|#${'t'.repeat(m - 1)}${String.fromCharCode(65 + (n % 26))}`);
  }
}

t.test('byte forms of every length find their own context again, and one changed byte is another context', async (t) => {
  const a = agg();
  for (let r = 0; r < 3; r++) for (const f of forms) a.ingestStatsd(Buffer.from(f));
  t.equal(a.contextCount, new Set(forms).size);
  for (const s of a.closeWindow().series) t.equal(s.value, 0.3, `${s.metric} ${s.tags.join(',')} counted 3 times`);
  // Last byte of the name and of the tags, and the byte just past a 4-byte word.
  const b = agg();
  for (const f of ['abcde:1|c|#k:v1', 'abcdf:1|c|#k:v1', 'abcde:1|c|#k:v2', 'abcd:1|c|#k:v1', 'abcde:1|c|#k:v1']) b.ingestStatsd(Buffer.from(f));
  t.equal(b.contextCount, 4);
});

t.test('the cached path (a byte form seen before) gives the same series as the first sight of every line', async (t) => {
  const lines = [
    'p.c:2|c|@0.5|#env:a,shard:1',
    'p.g:7|g|#shard:1,env:a',
    'p.ms:12|ms|@0.25|#env:a',
    'p.h:3|h|#host:web1,env:a',
    'p.s:alice|s|#env:a',
    'p.d:5|d|#env:a,env:a',
    'p.c:1|c',
  ];
  const packet = Buffer.from(lines.join('\n'));
  const transform = { mapperProfiles: [{ name: 'p', prefix: 'p.', mappings: [{ match: 'p.*', name: 'mapped.$1', tags: { via: 'mapper' } }] }] };
  for (const [label, opts] of [['plain', {}], ['with a mapper', { transform }]] as const) {
    const fresh = agg(opts);
    fresh.ingestStatsd(packet);
    const first = rows(fresh.closeWindow());
    const warm = agg(opts);
    warm.ingestStatsd(Buffer.from(packet));
    warm.closeWindow();
    warm.ingestStatsd(Buffer.from(packet));
    t.same(rows(warm.closeWindow()), first, `${label}: second window from the raw index`);
    warm.reconfigure(opts);
    warm.ingestStatsd(Buffer.from(packet));
    t.same(rows(warm.closeWindow()), first, `${label}: after rekey`);
    warm.ingestStatsd(Buffer.from(packet));
    t.same(rows(warm.closeWindow()), first, `${label}: cached again after rekey`);
  }
});

t.test('byte forms of forgotten contexts are reclaimed and the live ones still match', async (t) => {
  const a = agg();
  const live = Array.from({ length: 10 }, (_, i) => `live.counter.${i}:1|c|#env:prod,shard:${i}`);
  for (let w = 0; w < 6; w++) {
    // 2,000 gauges a window that are never seen again: their words go dead, and the store is
    // compacted while the live counters keep theirs.
    const gone = Array.from({ length: 2000 }, (_, i) => `gone.${w}.gauge.with.a.long.name.${i}:1|g|#env:prod,shard:${i % 8}`);
    for (let i = 0; i < gone.length; i += 20) a.ingestStatsd(Buffer.from(gone.slice(i, i + 20).join('\n')));
    a.ingestStatsd(Buffer.from(live.join('\n')));
    const batch = a.closeWindow();
    const counters = batch.series.filter((s) => s.metric.startsWith('live.'));
    t.equal(counters.length, 10, `window ${w}: every live counter`);
    t.ok(counters.every((s) => s.value === 0.1), `window ${w}: each counted once`);
  }
  a.ingestStatsd(Buffer.from(live.join('\n')));
  t.equal(a.contextCount, 10 + 2000, 'no live counter got a second context (the last window\'s gauges are still there)');
});

t.test('a tag segment seen before gives the tag set its bytes normalise to, as hosts, global tags and expiry change', async (t) => {
  const a = agg();
  const tagsOf = (batch: MetricBatch, metric: string): string[] => batch.series.filter((s) => s.metric === metric).map((s) => `${s.host}|${s.tags.join(',')}`);
  // One segment, several names: the second and later contexts take the tag set from the segment cache.
  a.ingestStatsd(Buffer.from('a:1|g|#z:1,b:2,b:2\nb:1|g|#z:1,b:2,b:2\nc:1|g|#host:web1,k:v\nd:1|g|#host:web1,k:v\ne:1|g|#k:v\nf:1|g'));
  let batch = a.closeWindow();
  t.same(tagsOf(batch, 'b'), ['h|b:2,z:1'], 'sorted and de-duplicated as on first sight');
  t.same(tagsOf(batch, 'd'), ['web1|k:v'], 'host: taken out of the tags');
  t.same(tagsOf(batch, 'e'), ['h|k:v'], 'without host: another tag set');
  t.same(tagsOf(batch, 'f'), ['h|'], 'no tags');
  t.equal(a.contextCount, 6);
  const shared = batch.series.filter((s) => s.metric === 'a' || s.metric === 'b').map((s) => s.tags);
  t.equal(shared[0], shared[1], 'contexts of one segment share one tag array');
  // The gauges idle out and their tag set leaves the table; the segment then makes a fresh one.
  a.closeWindow();
  t.equal(a.contextCount, 0);
  a.ingestStatsd(Buffer.from('g:1|g|#z:1,b:2,b:2\nh:1|g|#z:1,b:2,b:2'));
  batch = a.closeWindow();
  t.same(tagsOf(batch, 'g'), ['h|b:2,z:1']);
  t.same(tagsOf(batch, 'h'), ['h|b:2,z:1']);
  // The segment's tag set dies again, and another form of the same tags makes a new one first: the
  // cached segment must then find that one, not bring back its own, or one context would be two.
  a.closeWindow();
  a.ingestStatsd(Buffer.from('x:1|g|#b:2,z:1\nx:2|g|#z:1,b:2,b:2'));
  t.equal(a.contextCount, 1, 'one context for both forms');
  batch = a.closeWindow();
  t.same(batch.series.map((s) => `${s.metric}|${s.value}|${s.tags.join(',')}`), ['x|2|b:2,z:1']);
  // A reload's global tags apply to contexts made after it, whatever segment they have.
  a.reconfigure({ globalTags: ['env:prod', 'host:other'] });
  a.ingestStatsd(Buffer.from('i:1|g|#z:1,b:2,b:2\nj:1|g'));
  batch = a.closeWindow();
  t.same(tagsOf(batch, 'i'), ['other|b:2,env:prod,z:1']);
  t.same(tagsOf(batch, 'j'), ['other|env:prod']);
});

t.test('a full table leaves no tag set behind: a later context of that segment still gets its tags', async (t) => {
  const a = agg({ maxContexts: 1 });
  a.ingestStatsd(Buffer.from('a:1|g|#k:v\nb:1|g|#x:y\nb:1|g|#x:y'));
  let batch = a.closeWindow();
  t.same(batch.series.map((s) => `${s.metric}|${s.tags.join(',')}`), ['a|k:v'], 'b dropped: the table was full');
  a.closeWindow();
  t.equal(a.contextCount, 0);
  a.ingestStatsd(Buffer.from('b:1|g|#x:y'));
  batch = a.closeWindow();
  t.same(batch.series.map((s) => `${s.metric}|${s.tags.join(',')}`), ['b|x:y']);
});
