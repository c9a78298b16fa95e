import t from 'tap';
import { LineFramer } from '../src/framer.js';

/** A framer over `max`-byte lines that records its output as strings. */
function framer(max = 16) {
  const out: string[] = [];
  let tooLong = 0;
  const f = new LineFramer(max, { line: (buf, start, end) => out.push(buf.toString('utf8', start, end)), tooLong: () => void tooLong++ });
  return { f, out, tooLong: () => tooLong, push: (s: string) => f.push(Buffer.from(s)) };
}

t.test('complete lines out of one chunk; the partial line waits for the next', async (t) => {
  const x = framer();
  x.push('a:1|c\nb:2|c\nc:');
  t.same(x.out, ['a:1|c', 'b:2|c']);
  t.equal(x.f.pendingBytes, 2);
  x.push('3|c\n');
  t.same(x.out, ['a:1|c', 'b:2|c', 'c:3|c']);
  t.equal(x.f.pendingBytes, 0);
});

t.test('a line split inside a multi-byte character is rebuilt byte for byte', async (t) => {
  const x = framer(64);
  const line = Buffer.from('café.🎉:1|c\n');
  for (let p = 1; p < line.length; p++) {
    x.f.push(line.subarray(0, p));
    x.f.push(line.subarray(p));
  }
  t.equal(x.out.length, line.length - 1);
  t.ok(x.out.every((l) => l === 'café.🎉:1|c'));
});

t.test('over-long lines are reported once each and skipped up to their newline, across chunks', async (t) => {
  const x = framer(8);
  x.push('12345678\n123456789\nok\n');
  t.same(x.out, ['12345678', 'ok'], 'exactly max is kept, one more is not');
  t.equal(x.tooLong(), 1);
  x.push('1234');
  x.push('56789');
  t.equal(x.tooLong(), 2, 'the tail grew past the limit');
  x.push('still the same line');
  t.equal(x.tooLong(), 2, 'skipped without another report');
  x.push(' end\nnext\n');
  t.same(x.out, ['12345678', 'ok', 'next']);
  x.push('x'.repeat(20));
  t.equal(x.tooLong(), 3, 'a chunk ending in a too-long run');
  x.push('\nafter\n');
  t.same(x.out.at(-1), 'after');
});

t.test('end() hands out the unfinished line; release() reports it lost; resync() skips to the next newline', async (t) => {
  const x = framer();
  x.push('last:1|c');
  x.f.end();
  t.same(x.out, ['last:1|c']);
  x.push('half:');
  t.equal(x.f.release(), 5);
  t.equal(x.f.bufferBytes, 0, 'the buffer is released');
  x.push('rest\n');
  t.same(x.out, ['last:1|c', 'rest']);
  x.push('lost');
  x.f.resync();
  x.push('more\nkept\n');
  t.same(x.out, ['last:1|c', 'rest', 'kept']);
  t.equal(x.f.release(), 0);
});
