/**
 * Property-based fuzzing of logplex framing (`readFrames`) and of body splitting (`forEachRecord`):
 * wrong octet counts, truncated bodies, binary, and random mutations of the real fixtures.
 */
import t from 'tap';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { forEachRecord, type BodyFormat } from '../../src/body.js';
import { readFrames } from '../../src/logplex.js';
import { LOGPLEX_FIXTURES, RUNS, SENTINEL_LINE, frame, framingBytes, mutate, mutation, newIngest, syslogMessage } from './arbitraries.js';

/** Frames and junk of a body, checking on the way that every range is inside the body and in order. */
function split(buf: Buffer): { frames: string[]; junk: string[] } {
  const frames: string[] = [];
  const junk: string[] = [];
  let last = 0;
  const check = (s: number, e: number): void => {
    if (!(Number.isInteger(s) && Number.isInteger(e) && last <= s && s <= e && e <= buf.length)) throw new Error(`range [${s}, ${e}) out of order or outside [${last}, ${buf.length}]`);
    last = e;
  };
  readFrames(buf, {
    frame: (s, e) => {
      check(s, e);
      frames.push(buf.toString('utf8', s, e));
    },
    junk: (s, e) => {
      check(s, e);
      if (s === e) throw new Error('empty junk range');
      junk.push(buf.toString('utf8', s, e));
    },
  });
  return { frames, junk };
}

/** Counts what `forEachRecord` reports; the total must equal the frames/lines it saw. */
function records(body: Buffer, format: BodyFormat, maxLineBytes = 10 * 1024) {
  const n = { record: 0, bad: 0, tooLarge: 0 };
  forEachRecord(body, format, maxLineBytes, {
    record: (r) => {
      if (typeof r.msg !== 'string') throw new Error('record without a message');
      if (r.timestampMs !== undefined && !Number.isFinite(r.timestampMs)) throw new Error(`non-finite timestamp ${r.timestampMs}`);
      n.record++;
    },
    bad: (_reason, sample) => {
      if (sample.length > 200) throw new Error('bad-line sample longer than 200 characters');
      n.bad++;
    },
    tooLarge: (bytes) => {
      if (bytes <= maxLineBytes) throw new Error(`tooLarge(${bytes}) under the limit ${maxLineBytes}`);
      n.tooLarge++;
    },
  });
  return n;
}

const FORMATS: BodyFormat[] = ['logplex', 'text', 'ndjson', 'json'];

t.test('binary: random bytes never throw; ranges stay inside the body, in order', async (t) => {
  fc.assert(
    fc.property(framingBytes, fc.constantFrom(...FORMATS), fc.integer({ min: 1, max: 64 }), (bytes, format, maxLine) => {
      const buf = Buffer.from(bytes);
      split(buf);
      records(buf, format, maxLine);
    }),
    { numRuns: RUNS * 5 },
  );
  t.pass('no exception escaped');
});

t.test('wrong octet counts: every LF-terminated message is recovered exactly, whatever its count says', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(syslogMessage, fc.integer({ min: -400, max: 400 })), { minLength: 1, maxLength: 8 }),
      (frames) => {
        const body = frames
          .map(([msg, delta]) => {
            const right = Buffer.byteLength(msg) + 1;
            // Any count from 1 (a count of 0 is not a frame header) to far past the body.
            return frame(msg, '\n', Math.max(delta, 1 - right));
          })
          .join('');
        const got = split(Buffer.from(body));
        // A count that stops just before trailing spaces loses those spaces (they are skipped as
        // separators when a frame header follows): harmless for logfmt, so compare without them.
        assert.deepEqual(got.frames.map((f) => f.trimEnd()), frames.map(([m]) => m.trimEnd()), body);
        assert.deepEqual(got.junk, []);
      },
    ),
    { numRuns: RUNS * 2 },
  );
  t.pass();
});

t.test('wrong octet counts without separators: counts that exclude the LF, or that are too long, are still exact', async (t) => {
  // Back-to-back frames (logplex http_input): a count is only trustworthy when it is exact or too long.
  fc.assert(
    fc.property(fc.array(fc.tuple(syslogMessage, fc.nat(300)), { minLength: 1, maxLength: 8 }), (frames) => {
      const body = frames.map(([msg]) => frame(msg, '')).join('');
      const got = split(Buffer.from(body));
      assert.deepEqual(got.frames, frames.map(([m]) => m));
    }),
    { numRuns: RUNS },
  );
  t.pass();
});

t.test('truncated bodies: frames wholly before the cut are exact; nothing beyond the frames is invented', async (t) => {
  fc.assert(
    fc.property(fc.array(syslogMessage, { minLength: 1, maxLength: 8 }), fc.nat(), (msgs, cutAt) => {
      const full = Buffer.from(msgs.map((m) => frame(m)).join(''));
      const cut = cutAt % (full.length + 1);
      const body = full.subarray(0, cut);
      // Frame i is whole when its message bytes (not necessarily the LF) are before the cut.
      let pos = 0;
      let whole = 0;
      for (const m of msgs) {
        const f = frame(m);
        const msgEnd = pos + Buffer.byteLength(f) - 1;
        if (msgEnd <= cut) whole++;
        pos += Buffer.byteLength(f);
      }
      const got = split(body);
      assert.deepEqual(got.frames.slice(0, whole), msgs.slice(0, whole));
      const n = records(body, 'logplex');
      assert.ok(n.record + n.bad + n.tooLarge <= msgs.length, 'no more pieces than frames');
      assert.ok(n.record >= whole);
    }),
    { numRuns: RUNS * 2 },
  );
  t.pass();
});

t.test('junk lines between frames: the frames around them are exact and the junk is reported as bad', async (t) => {
  fc.assert(
    fc.property(
      fc.array(syslogMessage, { minLength: 2, maxLength: 6 }),
      // Junk is any bytes; a LF ends it so the next frame starts on a boundary, as real senders do.
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      fc.nat(),
      (msgs, junk, where) => {
        const at = 1 + (where % (msgs.length - 1));
        const body = Buffer.concat([Buffer.from(msgs.slice(0, at).map((m) => frame(m)).join('')), Buffer.from(junk), Buffer.from('\n'), Buffer.from(msgs.slice(at).map((m) => frame(m)).join(''))]);
        const got = split(body);
        // The junk may itself look like frames; the real ones must all be there, in order, unchanged.
        const before = got.frames.slice(0, at);
        const after = got.frames.slice(got.frames.length - (msgs.length - at));
        assert.deepEqual(before, msgs.slice(0, at));
        assert.deepEqual(after, msgs.slice(at));
      },
    ),
    { numRuns: RUNS * 2 },
  );
  t.pass();
});

t.test('mutated fixtures between two sentinel frames: both sentinels are counted, every piece lands in one bucket', async (t) => {
  const names = [...LOGPLEX_FIXTURES.keys()];
  fc.assert(
    fc.property(fc.constantFrom(...names), mutation, fc.constantFrom('\n', '\r\n', ' \n', '\n\n'), (name, ops, sep) => {
      const mutated = mutate(LOGPLEX_FIXTURES.get(name)!, ops);
      // The sentinel after the mutated bytes starts on a boundary (LF then a frame header), as any frame does.
      const body = Buffer.concat([Buffer.from(frame(SENTINEL_LINE)), mutated, Buffer.from(sep), Buffer.from(frame(SENTINEL_LINE))]);
      const ing = newIngest();
      ing.ingest(body, 'logplex');
      const r = ing.close();
      assert.equal(r.sentinel, 2, `${name} mutated by ${JSON.stringify(ops)}`);
      assert.ok(r.balanced, 'received = parsed + bad + frame_too_large');
    }),
    { numRuns: RUNS * 3 },
  );
  t.pass();
});

t.test('mutated fixtures alone: never throw, under every format', async (t) => {
  const names = [...LOGPLEX_FIXTURES.keys()];
  fc.assert(
    fc.property(fc.constantFrom(...names), mutation, fc.constantFrom(...FORMATS), fc.integer({ min: 16, max: 10 * 1024 }), (name, ops, format, maxLine) => {
      const body = mutate(LOGPLEX_FIXTURES.get(name)!, ops);
      split(body);
      records(body, format, maxLine);
      const ing = newIngest(maxLine);
      ing.ingest(body, format);
      return ing.close().balanced;
    }),
    { numRuns: RUNS * 3 },
  );
  t.pass();
});

t.test('frames over maxFrameBytes between good ones are skipped and counted; the good ones still count', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 100, max: 4096 }), fc.integer({ min: 1, max: 3 }), fc.boolean(), (maxFrame, over, lf) => {
      const huge = `<190>1 - host app web.1 - count#${'x'.repeat(maxFrame + over)}=1`;
      const body = Buffer.from(frame(SENTINEL_LINE) + frame(huge, lf ? '\n' : '') + (lf ? '' : '\n') + frame(SENTINEL_LINE));
      const ing = newIngest(maxFrame);
      ing.ingest(body, 'logplex');
      const r = ing.close();
      assert.equal(ing.stats.dropped('frame_too_large'), 1);
      assert.equal(r.sentinel, 2);
      assert.ok(r.balanced);
    }),
    { numRuns: RUNS },
  );
  t.pass();
});
