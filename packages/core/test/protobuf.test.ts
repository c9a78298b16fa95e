import t from 'tap';
import { ProtoWriter, varintSize, zigzag32 } from '../src/index.js';

/** Reads one varint at `pos`: [value, next]. Written here, not taken from the writer, so it can disagree. */
function readVarint(b: Buffer, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    const byte = b[pos++]!;
    v += (byte & 0x7f) * mul;
    mul *= 128;
    if (byte < 0x80) return [v, pos];
  }
}

t.test('fork/join: lengths of nested messages, widened past 127 bytes', async (t) => {
  for (const inner of [0, 1, 127, 128, 300, 20_000]) {
    const w = new ProtoWriter(4);
    const outer = w.fork(1);
    const m = w.fork(2);
    w.bytes(3, Buffer.alloc(inner, 7));
    w.join(m);
    w.uint(4, 5);
    w.join(outer);
    const b = w.finish();
    t.equal(b[0], (1 << 3) | 2, 'outer key');
    const [outerLen, p1] = readVarint(b, 1);
    t.equal(outerLen, b.length - p1, `outer length (inner ${inner})`);
    t.equal(b[p1], (2 << 3) | 2, 'inner key');
    const [innerLen, p2] = readVarint(b, p1 + 1);
    const payload = 1 + varintSize(inner) + inner;
    t.equal(innerLen, payload, 'inner length');
    t.equal(b[p2 + payload], (4 << 3) | 0, 'field after the inner message intact');
    t.equal(b[p2 + payload + 1], 5);
    t.equal(b.subarray(p2 + 1 + varintSize(inner), p2 + payload).every((x) => x === 7), true, 'inner bytes moved intact');
  }
});

t.test('fixed64, optional doubles and packed fixed64', async (t) => {
  const w = new ProtoWriter();
  w.fixed64(1, 1_700_000_000_000_000_123n);
  w.presentDouble(2, 0);
  w.double(3, 0);
  w.packedFixed64(4, [1, 2 ** 40 + 3]);
  w.fixed64n(5, 2 ** 33 + 9);
  const b = w.finish();
  t.equal(b[0], (1 << 3) | 1);
  t.equal(b.readBigUInt64LE(1), 1_700_000_000_000_000_123n);
  t.equal(b[9], (2 << 3) | 1, 'optional 0 is written');
  t.equal(b.readDoubleLE(10), 0);
  t.equal(b[18], (4 << 3) | 2, 'plain 0 double omitted; packed follows');
  t.equal(b[19], 16);
  t.equal(b.readBigUInt64LE(20), 1n);
  t.equal(b.readBigUInt64LE(28), 2n ** 40n + 3n);
  t.equal(b[36], (5 << 3) | 1);
  t.equal(b.readBigUInt64LE(37), 2n ** 33n + 9n);
  t.equal(zigzag32(-1), 1);
  t.equal(zigzag32(1), 2);
});

t.test('raw: byte ranges copied as they are, short and long, across buffer growth', async (t) => {
  const src = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) % 256));
  const w = new ProtoWriter(16);
  w.raw(src, 5, 5);
  t.equal(w.length, 0, 'an empty range writes nothing');
  w.raw(src, 3, 40); // below the byte-loop threshold
  w.raw(src, 10, 290); // above it, and past the initial buffer
  w.raw(new Uint8Array([1, 2, 3]), 1, 3);
  t.same(w.finish(), Buffer.concat([src.subarray(3, 40), src.subarray(10, 290), Buffer.from([2, 3])]));
});
