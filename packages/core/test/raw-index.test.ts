import t from 'tap';
import { RawKey, RawKeyIndex, sameBytes, type RawKeyed } from '../src/raw-index.js';
import { StatsdParser } from '../src/parser/statsd.js';
import type { SampleView } from '../src/parser/types.js';

const b = (s: string) => Buffer.from(s);

/** Adds a stand-alone key for buf[ns, ne) + buf[ts, te) and returns it. */
function put<V>(idx: RawKeyIndex<V>, hash: number | undefined, type: number, buf: Buffer, ns: number, ne: number, ts: number, te: number, v: V): RawKey<V> {
  const key = new RawKey(hash ?? idx.hash(type, buf, ns, ne, ts, te), type, buf, ns, ne, ts, te, v);
  idx.add(key);
  return key;
}

t.test('finds by type, name and tag bytes; name/tag boundary and type matter', async (t) => {
  const idx = new RawKeyIndex<string>();
  const buf = b('abc|x:1');
  const h1 = idx.hash(99, buf, 0, 2, 2, 3); // "ab" + "c"
  put(idx, h1, 99, buf, 0, 2, 2, 3, 'ab+c');
  t.equal(idx.get(h1, 99, buf, 0, 2, 2, 3), 'ab+c');
  const h2 = idx.hash(99, buf, 0, 1, 1, 3); // "a" + "bc"
  t.equal(idx.get(h2, 99, buf, 0, 1, 1, 3), undefined);
  t.equal(idx.get(h1, 103, buf, 0, 2, 2, 3), undefined, 'other type');
  t.equal(idx.get(h1, 99, buf, 0, 1, 1, 3), undefined, 'same hash, other boundary');
  const h3 = idx.hash(99, buf, 0, 3, -1, -1);
  t.equal(idx.get(h3, 99, buf, 0, 3, -1, -1), undefined, 'no tags differs from tags');
  put(idx, h3, 99, buf, 0, 3, -1, -1, 'abc');
  const other = b('zzabc');
  t.equal(idx.get(idx.hash(99, other, 2, 5, -1, -1), 99, other, 2, 5, -1, -1), 'abc', 'same bytes at other offsets');
  t.equal(idx.size, 2);
});

t.test('colliding hashes chain, and deleting any entry keeps the others', async (t) => {
  const idx = new RawKeyIndex<number>();
  const keys = ['k0', 'k1', 'k2', 'k3'].map(b);
  // Force one bucket to exercise chaining.
  const entries = keys.map((k, i) => put(idx, 42, 99, k, 0, 2, -1, -1, i));
  for (const [i, k] of keys.entries()) t.equal(idx.get(42, 99, k, 0, 2, -1, -1), i);
  idx.delete(entries[2]!); // middle of the chain
  idx.delete(entries[3]!); // head
  idx.delete(entries[3]!); // not stored any more: a no-op
  t.equal(idx.get(42, 99, keys[2]!, 0, 2, -1, -1), undefined);
  t.equal(idx.get(42, 99, keys[3]!, 0, 2, -1, -1), undefined);
  t.equal(idx.get(42, 99, keys[0]!, 0, 2, -1, -1), 0);
  t.equal(idx.get(42, 99, keys[1]!, 0, 2, -1, -1), 1);
  t.equal(idx.size, 2);
  idx.delete(entries[0]!);
  idx.delete(entries[1]!);
  t.equal(idx.size, 0);
});

t.test('stored keys are copies: reusing the packet buffer does not corrupt them', async (t) => {
  const idx = new RawKeyIndex<string>();
  const buf = b('name#tag');
  const h = idx.hash(99, buf, 0, 4, 5, 8);
  put(idx, h, 99, buf, 0, 4, 5, 8, 'v');
  buf.write('XXXX');
  t.equal(idx.get(h, 99, b('name#tag'), 0, 4, 5, 8), 'v');
});

t.test('entries may be the caller\'s own objects, comparing bytes their own way', async (t) => {
  class Named implements RawKeyed<Named> {
    rawHash = 0;
    rawNext: RawKeyed<Named> | undefined = undefined;
    constructor(readonly name: string) {}
    get rawValue(): Named {
      return this;
    }
    rawMatches(type: number, buf: Buffer, ns: number, ne: number, ts: number): boolean {
      return type === 99 && ts < 0 && buf.toString('latin1', ns, ne) === this.name;
    }
  }
  const idx = new RawKeyIndex<Named>();
  const n = new Named('own');
  n.rawHash = idx.hash(99, b('own'), 0, 3, -1, -1);
  idx.add(n);
  put(idx, idx.hash(99, b('copy'), 0, 4, -1, -1), 99, b('copy'), 0, 4, -1, -1, n);
  t.equal(idx.get(idx.hash(99, b('own'), 0, 3, -1, -1), 99, b('own'), 0, 3, -1, -1), n);
  t.equal(idx.get(idx.hash(99, b('copy'), 0, 4, -1, -1), 99, b('copy'), 0, 4, -1, -1), n);
  idx.delete(n);
  t.equal(idx.get(idx.hash(99, b('own'), 0, 3, -1, -1), 99, b('own'), 0, 3, -1, -1), undefined);
  t.equal(idx.size, 1);
});

t.test('grows past its initial buckets: every key still found, deletes still work', async (t) => {
  const idx = new RawKeyIndex<number>();
  const n = 20_000;
  const entries = [];
  for (let i = 0; i < n; i++) {
    const k = b(`key.${i}`);
    entries.push(put(idx, undefined, 99, k, 0, k.length, -1, -1, i));
  }
  t.equal(idx.size, n);
  let found = 0;
  for (let i = 0; i < n; i++) {
    const k = b(`key.${i}`);
    if (idx.get(idx.hash(99, k, 0, k.length, -1, -1), 99, k, 0, k.length, -1, -1) === i) found++;
  }
  t.equal(found, n, 'all keys found after the buckets grew');
  for (let i = 0; i < n; i += 2) idx.delete(entries[i]!);
  t.equal(idx.size, n / 2);
  let left = 0;
  for (let i = 0; i < n; i++) {
    const k = b(`key.${i}`);
    if (idx.get(idx.hash(99, k, 0, k.length, -1, -1), 99, k, 0, k.length, -1, -1) !== undefined) left++;
  }
  t.equal(left, n / 2, 'exactly the odd keys remain');
});

t.test("a parser's nameHash, given the index's basis, continues into the same hash as hashing the whole key", async (t) => {
  const idx = new RawKeyIndex<string>();
  const parser = new StatsdParser({ nameHashBasis: idx.nameHashBasis });
  const lines = ['a.b:1|c', 'a.b:1|c|#x:1,y', 'é.µs:2|ms|@0.5|#k:v', 'x:1|g|#', 'n:3|d|#t'];
  for (const line of lines) {
    const buf = b(line);
    let view: SampleView | undefined;
    parser.parse(buf, { sample: (v) => (view = { ...v }), event: () => undefined, serviceCheck: () => undefined, bad: () => undefined });
    t.ok(view, `${line} parsed`);
    const v = view!;
    const type = v.type.charCodeAt(0);
    t.equal(idx.hashAfterName(v.nameHash, type, buf, v.tagsStart, v.tagsEnd), idx.hash(type, buf, v.nameStart, v.nameEnd, v.tagsStart, v.tagsEnd), line);
  }
  // Another index (another seed) hashes the same key differently: the seed reaches the parser's part too.
  const other = new RawKeyIndex<string>();
  const buf = b('same.name:1|c');
  t.not(other.hash(99, buf, 0, 9, -1, -1), idx.hash(99, buf, 0, 9, -1, -1), 'seeds differ, hashes differ');
});

t.test('sameBytes, four chars per step: one differing byte at any position of block or tail is found', async (t) => {
  for (let len = 0; len <= 13; len++) {
    const s = 'abcdefghijklmnopq'.slice(0, len);
    // At an offset in both, as the index compares a key inside a packet.
    const buf = Buffer.from(`xy${s}z`, 'latin1');
    t.ok(sameBytes(`_${s}`, 1, buf, 2, len), `equal, length ${len}`);
    for (let i = 0; i < len; i++) {
      const other = Buffer.from(buf);
      other[2 + i] = other[2 + i]! ^ 0x01;
      t.notOk(sameBytes(`_${s}`, 1, other, 2, len), `length ${len}, byte ${i} differs`);
    }
  }
  // A char beyond latin1 never equals a byte, even one with the same low bits.
  t.notOk(sameBytes('abc\u0161', 0, Buffer.from([0x61, 0x62, 0x63, 0x61]), 0, 4));
});
