import t from 'tap';
import { Aggregator } from '@metrics-distributor/core';
import { closed, digest, setup, valueOf, waitFor, write } from './helpers.js';

/** Every line type, multi-byte UTF-8 in names, tags and members, a CRLF line, an empty line and a bad line. */
const SAMPLE = Buffer.from(
  [
    'café.hits:1|c|#city:zürich',
    '温度:21.5|g|#地点:東京',
    'emoji.🎉:2|c|@0.5',
    'users:jörg|s',
    'users:🙂|s',
    'lat:12|ms|#route:/ünï',
    'lat:30|ms|#route:/ünï',
    'payload:1:2:3|d',
    'crlf.line:4|c\r',
    '',
    'not a metric line',
    '_sc|dienst.prüfung|1|m:langsam ✓',
    'café.hits:3|c|#city:zürich',
  ].join('\n') + '\n',
);
const SAMPLE_LINES = 12; // non-empty lines
const SAMPLE_BAD = 1;

function aggregator(): Aggregator {
  return new Aggregator({ hostname: 'h', selfMetrics: false, countersAs: 'count', flushIntervalMs: 10_000 });
}

/** What the sample must aggregate to: the same stream handed to core in one piece. */
const reference = (() => {
  const ref = aggregator();
  ref.ingestStatsd(SAMPLE);
  return ref.closeWindow();
})();

t.test('the reference window is what the sample means (so comparing against it is not vacuous)', async (t) => {
  t.equal(valueOf(reference, 'café.hits', ['city:zürich']), 4);
  t.equal(valueOf(reference, '温度', ['地点:東京']), 21.5);
  t.equal(valueOf(reference, 'emoji.🎉'), 4);
  t.equal(valueOf(reference, 'users'), 2);
  t.equal(valueOf(reference, 'crlf.line'), 4);
  t.equal(valueOf(reference, 'lat.max', ['route:/ünï']), 30);
  t.equal(reference.sketches[0]?.sketch.count, 3);
  t.equal(reference.serviceChecks[0]?.message, 'langsam ✓');
});

t.test('lines over TCP are aggregated exactly; the address carries the real port', async (t) => {
  const s = await setup(t);
  t.match(s.fe.addresses(), [/^tcp:\/\/127\.0\.0\.1:\d+$/]);
  t.not(s.port, 0);
  t.ok(s.lines.some((l) => l.msg === 'StatsD TCP listening.' && l.address === `tcp://127.0.0.1:${s.port}`));
  const c = await s.dial();
  await write(c, SAMPLE);
  await waitFor(() => s.stats.bytes === SAMPLE.length, 'the sample');
  t.equal(s.stats.received, SAMPLE_LINES);
  t.equal(s.stats.bad, SAMPLE_BAD);
  t.same(digest(s.agg.closeWindow()), digest(reference));
});

t.test('a split at every byte position (inside UTF-8 characters too) aggregates exactly like the whole stream', async (t) => {
  const s = await setup(t);
  const c = await s.dial();
  let splits = 0;
  for (let p = 0; p <= SAMPLE.length; p++) {
    const before = s.stats.bytes;
    const packets = s.stats.packets;
    if (p > 0) {
      await write(c, SAMPLE.subarray(0, p));
      // Wait until the server has read the first part, so the second arrives as a separate chunk.
      await waitFor(() => s.stats.bytes === before + p, `first ${p} bytes`);
    }
    if (p < SAMPLE.length) await write(c, SAMPLE.subarray(p));
    await waitFor(() => s.stats.bytes === before + SAMPLE.length, `split at ${p}`);
    if (p > 0 && p < SAMPLE.length) {
      if (s.stats.packets - packets < 2) {
        t.fail(`split at ${p} did not arrive as two chunks`);
        return;
      }
      splits++;
    }
    const got = digest(s.agg.closeWindow());
    if (JSON.stringify(got) !== JSON.stringify(digest(reference))) {
      t.same(got, digest(reference), `split at byte ${p}`);
      return;
    }
  }
  t.equal(splits, SAMPLE.length - 1, 'every inner position was tried');
  t.equal(s.stats.received, (SAMPLE.length + 1) * SAMPLE_LINES);
  t.equal(s.stats.bad, (SAMPLE.length + 1) * SAMPLE_BAD);
  t.equal(s.stats.dropped(), 0);
});

t.test('a byte-by-byte writer: one chunk per byte, same result', async (t) => {
  const s = await setup(t);
  const c = await s.dial();
  for (let i = 0; i < SAMPLE.length; i++) {
    await write(c, SAMPLE.subarray(i, i + 1));
    await waitFor(() => s.stats.bytes === i + 1, `byte ${i}`);
  }
  t.equal(s.stats.packets, SAMPLE.length, 'every byte was its own chunk');
  t.equal(s.stats.received, SAMPLE_LINES);
  t.same(digest(s.agg.closeWindow()), digest(reference));
});

t.test('50 concurrent connections, random chunk sizes: exact totals', async (t) => {
  const s = await setup(t);
  const conns = 50;
  const linesEach = 2000;
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  await Promise.all(
    Array.from({ length: conns }, async (_, i) => {
      const c = await s.dial();
      let text = '';
      for (let k = 0; k < linesEach; k++) text += `conc.hits:1|c|#conn:${i}\nconc.ü:1|c\n`;
      const bytes = Buffer.from(text);
      for (let pos = 0; pos < bytes.length; ) {
        const n = 1 + rand(4000);
        await write(c, bytes.subarray(pos, pos + n));
        pos += n;
      }
      c.end();
      await closed(c);
    }),
  );
  await waitFor(() => s.stats.received === conns * linesEach * 2, 'every line', 10_000);
  const batch = s.agg.closeWindow();
  t.equal(valueOf(batch, 'conc.ü'), conns * linesEach);
  for (let i = 0; i < conns; i++) t.equal(valueOf(batch, 'conc.hits', [`conn:${i}`]), linesEach, `connection ${i}`);
  t.equal(s.stats.bad, 0);
  t.equal(s.stats.dropped(), 0);
});

t.test('a million lines on one connection', async (t) => {
  const s = await setup(t);
  const c = await s.dial();
  const block = Buffer.from('m:1|c\n'.repeat(10_000));
  for (let i = 0; i < 100; i++) await write(c, block);
  c.end();
  await waitFor(() => s.stats.received === 1_000_000, 'a million lines', 20_000);
  t.equal(valueOf(s.agg.closeWindow(), 'm'), 1_000_000);
  t.equal(s.stats.bytes, 100 * block.length);
});

t.test('a final line without newline is parsed at a clean end of the stream', async (t) => {
  const s = await setup(t);
  const c = await s.dial();
  await write(c, 'fin.first:1|c\nfin.last:5|c');
  await waitFor(() => s.stats.received === 1, 'the first line');
  c.end();
  await waitFor(() => s.stats.received === 2, 'the unterminated line at FIN');
  await closed(c);
  t.equal(valueOf(s.agg.closeWindow(), 'fin.last'), 5);
  t.equal(s.stats.dropped('partial_line'), 0);
});

t.test('empty lines and CRLF are accepted; nothing is logged above debug per line', async (t) => {
  const s = await setup(t, {}, 'info');
  const before = s.lines.length;
  const c = await s.dial();
  for (let i = 0; i < 20; i++) await write(c, `quiet:${i}|g\r\n\n\nquiet.c:1|c\r\nnot valid\n`);
  await waitFor(() => s.stats.received === 60, '60 lines');
  t.equal(s.stats.bad, 20, 'bad lines are counted');
  // Core's parser logs bad lines once a minute (now on this front-end's logger); nothing else is logged.
  const bad = s.lines.slice(before).filter((l) => l.msg === 'Bad StatsD lines skipped; see metrics_distributor.bad.');
  t.ok(bad.length <= 1, 'bad lines: one rate-limited warning at most');
  t.equal(s.lines.length - bad.length, before, 'no log line per line or per chunk');
  const batch = s.agg.closeWindow();
  t.equal(valueOf(batch, 'quiet'), 19);
  t.equal(valueOf(batch, 'quiet.c'), 20);
});
