import t from 'tap';
import type { Socket } from 'node:net';
import type { IngestTarget } from '@metrics-distributor/core';
import { TcpFrontend } from '../src/index.js';
import type { LineFramer } from '../src/framer.js';
import { captureLogger, closed, dial, nullTarget, setup, tcpContext, tcpPort, valueOf, waitFor, within, write } from './helpers.js';

/** The front-end's live connections, peeked at to prove memory stays bounded. */
function connsOf(fe: TcpFrontend): Set<{ framer: LineFramer }> {
  return (fe as unknown as { conns: Set<{ framer: LineFramer }> }).conns;
}

t.test('an over-long line is discarded up to its newline, counted, logged once; the connection carries on', async (t) => {
  const max = 16;
  const s = await setup(t, { maxLineBytes: max });
  const c = await s.dial();
  /** Sends `data` as its own chunk: waits until the server has read it. */
  const chunk = async (data: string) => {
    const before = s.stats.bytes;
    await write(c, data);
    await waitFor(() => s.stats.bytes === before + Buffer.byteLength(data), `chunk ${JSON.stringify(data.slice(0, 20))}`);
  };
  const exact = 'e'.repeat(max - 4) + ':1|c'; // exactly maxLineBytes: kept
  const over = 'f'.repeat(max - 3) + ':1|c'; // one byte more: dropped
  t.equal(exact.length, max);

  // Within one chunk.
  await chunk(`ok:1|c\n${over}\n${exact}\n`);
  // Over the limit only once the tail grows, then skipped across a chunk with no newline at all.
  await chunk('g'.repeat(10));
  await chunk('g'.repeat(10));
  await chunk('g'.repeat(100));
  await chunk(':1|c\nok:1|c\n');
  // A chunk's unterminated remainder alone is over the limit.
  await chunk(`ok:1|c\n${'h'.repeat(40)}`);
  await chunk(':1|c\nok:1|c\n');
  // The pending tail plus the start of the next chunk is over the limit.
  await chunk('i'.repeat(10));
  await chunk(`${'i'.repeat(10)}:1|c\nok:1|c\n`);
  // A line of exactly maxLineBytes split across chunks is kept.
  await chunk(exact.slice(0, 8));
  await chunk(`${exact.slice(8)}\nok:1|c\n`);

  t.equal(s.stats.dropped('line_too_long'), 4, 'f, g, h and i lines');
  t.equal(s.stats.bad, 0, 'no remainder of a discarded line reached the parser');
  const batch = s.agg.closeWindow();
  t.equal(valueOf(batch, 'ok'), 6);
  t.equal(valueOf(batch, 'e'.repeat(max - 4)), 2);
  t.same(
    batch.series.map((x) => x.metric).sort(),
    ['e'.repeat(max - 4), 'ok'],
    'nothing of the over-long lines was aggregated',
  );
  const warns = s.lines.filter((l) => l.level === 40 && /maxLineBytes/.test(l.msg));
  t.equal(warns.length, 1, 'logged once although four lines were dropped');
  t.equal(warns[0]?.maxLineBytes, max);
  t.notOk(c.closed, 'the connection is still open');
});

t.test('slowloris: a client that never sends a newline holds at most maxLineBytes', async (t) => {
  const max = 64;
  const s = await setup(t, { maxLineBytes: max });
  const c = await s.dial();
  let biggest = 0;
  for (let i = 0; i < 100; i++) {
    const before = s.stats.bytes;
    await write(c, 'z'.repeat(50));
    await waitFor(() => s.stats.bytes === before + 50, `trickle ${i}`);
    for (const conn of connsOf(s.fe)) biggest = Math.max(biggest, conn.framer.bufferBytes, conn.framer.pendingBytes);
  }
  t.ok(biggest > 0, 'the partial line was buffered at first');
  t.ok(biggest <= max, `never more than maxLineBytes buffered (saw ${biggest})`);
  t.equal(s.stats.dropped('line_too_long'), 1, 'one over-long line, counted once');
  await write(c, '\nslow.ok:1|c\n');
  await waitFor(() => s.stats.received === 1, 'the line after the newline');
  t.equal(valueOf(s.agg.closeWindow(), 'slow.ok'), 1);
});

t.test('beyond maxConnections new connections are closed at once, counted and logged once; others carry on', async (t) => {
  const s = await setup(t, { maxConnections: 3 });
  const live: Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await s.dial();
    await write(c, 'mc:1|c\n');
    await waitFor(() => s.stats.received === i + 1, `connection ${i} accepted`);
    live.push(c);
  }
  const extra = await s.dial();
  await within(closed(extra), 2000, 'the 4th connection to be closed by the server');
  const extra2 = await s.dial();
  await within(closed(extra2), 2000, 'the 5th connection to be closed by the server');
  t.equal(s.stats.dropped('max_connections'), 2);
  t.equal(s.lines.filter((l) => l.level === 40 && /maxConnections/.test(l.msg)).length, 1, 'rate-limited to one warning');

  for (const c of live) await write(c, 'mc:1|c\n');
  await waitFor(() => s.stats.received === 6, 'the accepted connections still work');
  t.notOk(live.some((c) => c.closed));

  // Once one leaves, there is room again.
  live[0]!.end();
  await waitFor(() => connsOf(s.fe).size === 2, 'the server saw the close');
  const again = await s.dial();
  await write(again, 'mc:1|c\n');
  await waitFor(() => s.stats.received === 7, 'a new connection within the limit');
  t.equal(s.stats.dropped('max_connections'), 2);
  t.equal(valueOf(s.agg.closeWindow(), 'mc'), 7);
});

t.test('an idle connection is closed after idleTimeoutMs, counted; an active one is kept', async (t) => {
  const idle = 300;
  const s = await setup(t, { idleTimeoutMs: idle });
  const quiet = await s.dial();
  const busy = await s.dial();
  const started = Date.now();
  await write(quiet, 'idle.a:1|c\nidle.partial');
  let quietClosedAt = 0;
  quiet.once('close', () => (quietClosedAt = Date.now()));
  // The busy client sends every 50 ms for three idle periods.
  while (Date.now() - started < 3 * idle) {
    await write(busy, 'idle.b:1|c\n');
    await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(quietClosedAt > 0, 'the quiet connection was closed by the server');
  t.ok(quietClosedAt - started >= idle - 20, `not before the timeout (${quietClosedAt - started} ms)`);
  t.notOk(busy.closed, 'the busy connection is still open');
  t.equal(s.stats.dropped('idle_timeout'), 1);
  t.equal(s.stats.dropped('partial_line'), 1, 'the unfinished line of the idle connection is counted as lost');
  t.ok(s.lines.some((l) => /idleTimeoutMs/.test(l.msg) && l.idleTimeoutMs === idle));
  const batch = s.agg.closeWindow();
  t.equal(valueOf(batch, 'idle.a'), 1, 'its complete line was kept');
  t.ok((valueOf(batch, 'idle.b') ?? 0) >= 10);
});

t.test('idleTimeoutMs 0 turns the timeout off', async (t) => {
  const s = await setup(t, { idleTimeoutMs: 0 });
  const c = await s.dial();
  await write(c, 'x:1|c\n');
  await waitFor(() => s.stats.received === 1, 'one line');
  const [conn] = connsOf(s.fe) as unknown as Set<{ socket: Socket }>;
  t.ok(conn, 'the connection is tracked');
  t.equal(conn?.socket.timeout, undefined, 'no idle timer on the server socket');
});

t.test('a peer reset mid-line: no crash, no warning, the partial line counted; the server carries on', async (t) => {
  const s = await setup(t, {}, 'info');
  const c = await s.dial();
  await write(c, 'reset.ok:1|c\nreset.part');
  await waitFor(() => s.stats.received === 1, 'the complete line');
  c.resetAndDestroy();
  await waitFor(() => connsOf(s.fe).size === 0, 'the server dropped the connection');
  t.equal(s.stats.dropped('partial_line'), 1);
  t.notOk(s.lines.some((l) => l.level >= 40), 'ECONNRESET is expected, not a warning');
  const next = await s.dial();
  await write(next, 'reset.after:1|c\n');
  await waitFor(() => s.stats.received === 2, 'a line on a new connection');
  t.equal(valueOf(s.agg.closeWindow(), 'reset.ok'), 1);
});

t.test('an exception from the target loses that line only and is logged once', async (t) => {
  const got: string[] = [];
  const target: IngestTarget = {
    ...nullTarget,
    statsdLine(buf, start, end) {
      const text = buf.toString('utf8', start, end);
      if (text.startsWith('boom')) throw new Error('parser bug');
      got.push(text);
    },
  };
  const { logger, lines } = captureLogger();
  const context = tcpContext(logger);
  const fe = new TcpFrontend({ port: 0 }, { target, context });
  await fe.start();
  const c = await dial(tcpPort(fe));
  t.teardown(async () => {
    c.destroy();
    await fe.close();
  });
  await write(c, 'a:1|c\nboom 1\nb:1|c\nboo');
  await waitFor(() => got.length === 2, 'a and b');
  await write(c, 'm 2\nc:1|c\n');
  await waitFor(() => got.length === 3, 'c after a split failing line');
  t.same(got, ['a:1|c', 'b:1|c', 'c:1|c']);
  t.equal(context.stats.dropped('internal_error'), 2);
  t.equal(lines.filter((l) => l.level === 50).length, 1, 'rate-limited: one error line for two failures');
  t.notOk(c.closed);
});
