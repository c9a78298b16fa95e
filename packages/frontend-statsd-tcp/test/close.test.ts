import t from 'tap';
import type { Socket } from 'node:net';
import { TcpFrontend } from '../src/index.js';
import { captureLogger, setup, tcpContext, valueOf, waitFor, within, write } from './helpers.js';

/** Every line has this exact length, so the number of complete lines in N bytes is floor(N / L). */
const LINE = 'close.hits:1|c|#pad:xxxxxxxx\n';
const L = Buffer.byteLength(LINE);

/**
 * Writes an endless stream of LINE in odd-sized slices (so chunks end mid-line) until the socket closes.
 * Resolves with the number of bytes handed to the socket.
 */
async function stream(sock: Socket, slice = 10_007): Promise<number> {
  const big = Buffer.from(LINE.repeat(Math.ceil(slice / L) + 2));
  let offset = 0;
  while (!sock.destroyed && sock.writable) {
    const start = offset % L;
    const ok = sock.write(big.subarray(start, start + slice));
    offset += slice;
    if (!ok) {
      await new Promise<void>((resolve) => {
        const done = () => {
          sock.off('drain', done);
          sock.off('close', done);
          resolve();
        };
        sock.once('drain', done);
        sock.once('close', done);
      });
    } else {
      await new Promise((r) => setImmediate(r));
    }
  }
  return offset;
}

t.test('close() while a client is mid-stream: every complete line read is parsed, the cut one counted', async (t) => {
  const s = await setup(t);
  const c = await s.dial();
  const writing = stream(c);
  await waitFor(() => s.stats.received >= 50_000, 'the stream is flowing');
  await within(s.fe.close(), 5000, 'close()');
  await writing;
  const bytes = s.stats.bytes;
  t.equal(s.stats.received, Math.floor(bytes / L), `all ${Math.floor(bytes / L)} complete lines in ${bytes} bytes were parsed`);
  t.equal(s.stats.dropped('partial_line'), bytes % L === 0 ? 0 : 1, 'the unfinished last line is counted as lost');
  t.equal(s.stats.bad, 0, 'no line was corrupted');
  t.equal(valueOf(s.agg.closeWindow(), 'close.hits', ['pad:xxxxxxxx']), s.stats.received);
});

t.test('close() with four writers mid-stream: totals consistent, nothing corrupted', async (t) => {
  const s = await setup(t);
  const clients = await Promise.all([0, 1, 2, 3].map(() => s.dial()));
  const writing = clients.map((c, i) => stream(c, 8191 + i * 1000));
  await waitFor(() => s.stats.received >= 100_000, 'the streams are flowing');
  await s.fe.close();
  await Promise.all(writing);
  const { bytes, received } = s.stats;
  const partial = s.stats.dropped('partial_line');
  const leftover = bytes - received * L;
  t.ok(leftover >= 0 && leftover < 4 * L, `at most one unfinished line per connection left over (${leftover} bytes)`);
  t.ok(leftover === 0 ? partial === 0 : partial >= 1 && partial <= 4, `${partial} partial lines counted for ${leftover} bytes`);
  t.equal(s.stats.bad, 0);
  t.equal(valueOf(s.agg.closeWindow(), 'close.hits', ['pad:xxxxxxxx']), received);
});

t.test('close() parses lines that were sent but not yet read', async (t) => {
  const s = await setup(t);
  const c = await s.dial();
  await write(c, 'first:1|c\n');
  await waitFor(() => s.stats.received === 1, 'the connection is accepted and read');
  const k = 2000;
  c.write(LINE.repeat(k));
  // The bytes are in the kernel (loopback delivers at once), but the server has had no turn to read them.
  t.equal(c.writableLength, 0, 'written to the kernel synchronously');
  t.equal(s.stats.received, 1, 'not read yet');
  await s.fe.close();
  t.equal(s.stats.received, 1 + k, 'all of them parsed before the connection was closed');
  t.equal(valueOf(s.agg.closeWindow(), 'close.hits', ['pad:xxxxxxxx']), k);
});

t.test('a final line without newline is not parsed at server close, and is counted', async (t) => {
  const s = await setup(t);
  const c = await s.dial();
  await write(c, 'done:1|c\nhalf:2|c');
  await waitFor(() => s.stats.bytes === 17, 'both parts read');
  await s.fe.close();
  t.equal(s.stats.received, 1);
  t.equal(s.stats.dropped('partial_line'), 1);
  const batch = s.agg.closeWindow();
  t.equal(valueOf(batch, 'done'), 1);
  t.equal(valueOf(batch, 'half'), undefined, 'the client may still have been writing it');
});

t.test('close() cuts a client that never pauses after closeDrainMs, but does not wait that long for a quiet one', async (t) => {
  const drainMs = 1500;
  const s = await setup(t, { closeDrainMs: drainMs });
  const quiet = await s.dial();
  await write(quiet, 'quiet:1|c\n');
  const busy = await s.dial();
  const writing = stream(busy);
  await waitFor(() => s.stats.received >= 10_000, 'the stream is flowing');
  let quietClosedAfter = -1;
  const started = Date.now();
  quiet.once('close', () => (quietClosedAfter = Date.now() - started));
  await within(s.fe.close(), 5000, 'close() with a never-pausing client');
  const took = Date.now() - started;
  await writing;
  t.ok(took >= drainMs - 20, `the busy connection was drained until closeDrainMs (${took} ms)`);
  t.ok(took < drainMs + 1500, `close() is bounded (${took} ms)`);
  t.ok(quietClosedAfter >= 0 && quietClosedAfter < drainMs / 2, `the quiet connection closed soon after a short silence (${quietClosedAfter} ms)`);
  t.ok(busy.destroyed);
});

t.test('lifecycle: close() is idempotent, frees the port, refuses restart; close() before start() resolves', async (t) => {
  const s = await setup(t);
  const first = s.fe.close();
  t.equal(s.fe.close(), first, 'the same promise');
  await first;
  t.same(s.fe.addresses(), []);
  await t.rejects(s.fe.start(), { code: 'MD_ERR_FRONTEND_BIND' }, 'a closed front-end cannot restart');
  await t.rejects(s.dial(s.port), { code: 'ECONNREFUSED' }, 'no longer accepting');

  const { logger } = captureLogger();
  const again = new TcpFrontend({ port: s.port }, { target: s.target, context: tcpContext(logger) });
  await again.start();
  t.same(again.addresses(), [`tcp://127.0.0.1:${s.port}`], 'the port is free again');
  await again.close();

  const never = new TcpFrontend({ port: 0 }, { target: s.target, context: tcpContext(logger) });
  await never.close();
  t.same(never.addresses(), []);
});
