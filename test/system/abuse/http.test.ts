/**
 * HTTP abuse (issue 7, item 6) against the real CLI (`--http 127.0.0.1:0 --http-auth user:pass`), all
 * at once while a legitimate drain keeps POSTing l2met lines, every one of which must be counted:
 *
 * - up to 2,000 idle connections (fewer if `ulimit -n` is low) and 50 slow-header clients: the drain
 *   is served throughout, and the server closes all of them after `headersTimeoutMs` (10 s) + ~1 s;
 * - 20 authenticated slow-body clients (below the 64 POST slots, so the drain is never refused) and 20
 *   unauthenticated ones (401 before the body, disconnected at once);
 * - a declared 6 MiB body and a streamed (chunked) 6 MiB body: 413, fast; 10 concurrent gzip bombs
 *   (256 MiB of zeros each): 413 within 3 s, and the server's RSS stays under RSS_BOUND_MIB;
 * - an auth brute force: every wrong credential gets 401, and the median latency of wrong credentials
 *   is within 2× (or 5 ms) of right ones, and of each other (wrong user vs wrong password).
 *
 * Slow bodies are only cut at `requestTimeoutMs` (60 s), too long for CI: the front-end's own
 * test/timeouts.test.ts checks that with short limits; here they are aborted by the client at the end
 * and must be counted as `dropped{reason:client_aborted}`.
 */
import t from 'tap';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { createGzip } from 'node:zlib';
import { consoleTotal, fdLimit, killOnTeardown, portOf, sampleRss, sleep, startCli } from '../helpers.js';

const AUTH = `Basic ${Buffer.from('user:pass').toString('base64')}`;
const HEADERS_TIMEOUT_S = 10;
const RSS_BOUND_MIB = 300;
const MiB = 1024 * 1024;
// Each idle connection costs one descriptor here and one in the server; leave room for everything else.
const IDLE_CONNECTIONS = Math.max(100, Math.min(2000, Math.floor((fdLimit() - 1000) / 2)));

interface Raw {
  sock: Socket;
  received: () => string;
  /** ms after connecting at which the server closed the connection. */
  closedAfter: Promise<number>;
}

function raw(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let data = '';
    const started = performance.now();
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => (data += d));
    sock.on('error', () => undefined);
    const closedAfter = new Promise<number>((r) => sock.on('close', () => r(performance.now() - started)));
    sock.once('connect', () => resolve({ sock, received: () => data, closedAfter }));
    sock.once('error', reject);
  });
}

/** Writes `text` one byte every `everyMs` until the socket closes or the text ends. */
function trickle(sock: Socket, text: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (sock.destroyed || i >= text.length) return clearInterval(timer);
    sock.write(text[i++]!);
  }, everyMs);
  sock.on('close', () => clearInterval(timer));
}

/** gzip of `mib` MiB of zeros, built as a stream so this process never holds the inflated bytes. */
async function gzipBomb(mib: number): Promise<Buffer> {
  const gz = createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  gz.on('data', (c: Buffer) => chunks.push(c));
  const zeros = Buffer.alloc(MiB);
  for (let i = 0; i < mib; i++) if (!gz.write(zeros)) await once(gz, 'drain');
  gz.end();
  await once(gz, 'end');
  return Buffer.concat(chunks);
}

/** One POST on a fresh connection; resolves with the status and the time to the response head. */
function timedPost(port: number, authorization: string): Promise<{ status: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const body = 'count#abuse.brute=1\n';
    const started = process.hrtime.bigint();
    const req = httpRequest(
      { host: '127.0.0.1', port, method: 'POST', path: '/logs', agent: false, headers: { authorization, 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), connection: 'close' } },
      (res) => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

t.test('slow clients, thousands of connections, oversized bodies, bombs and brute force: the drain is served and counted exactly', { timeout: 90_000 }, async (t) => {
  const c = startCli(['--http', '127.0.0.1:0', '--http-auth', 'user:pass', '--flush-interval', '1h', '--counters-as', 'count', '--hostname', 'abuse'], {
    keep: (l) => l.metric !== undefined && (l.metric.startsWith('abuse.') || l.metric.startsWith('metrics_distributor.')),
  });
  killOnTeardown(t, c);
  const port = portOf(await c.listening, 'http');
  const base = `http://127.0.0.1:${port}`;
  const rss = sampleRss(c.proc.pid!, 100);
  const bomb = await gzipBomb(256);

  // The legitimate drain: 1–20 l2met lines every 20 ms, each POST must be 200 and counted.
  let drainLines = 0;
  let drainPosts = 0;
  const drainFailures: string[] = [];
  let draining = true;
  const drain = (async () => {
    let i = 0;
    while (draining) {
      const n = 1 + (i++ % 20);
      try {
        const res = await fetch(`${base}/logs?app=abuse`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/logplex-1' }, body: Array.from({ length: n }, () => `<190>1 - host app web.1 - count#abuse.drain=1\n`).map((l) => `${Buffer.byteLength(l)} ${l}`).join('') });
        await res.arrayBuffer();
        if (res.status === 200) {
          drainLines += n;
          drainPosts++;
        } else drainFailures.push(`status ${res.status}`);
      } catch (err) {
        drainFailures.push(String(err));
      }
      await sleep(20);
    }
  })();

  // Idle connections, opened in batches so the listen backlog never overflows.
  const idle: Raw[] = [];
  const idleStarted = performance.now();
  for (let i = 0; i < IDLE_CONNECTIONS; i += 100) {
    idle.push(...(await Promise.all(Array.from({ length: Math.min(100, IDLE_CONNECTIONS - i) }, () => raw(port)))));
  }
  t.comment(`${idle.length} idle connections open after ${(performance.now() - idleStarted).toFixed(0)} ms (ulimit -n ${fdLimit()})`);

  // Slow-header clients (authenticated, so only the timeout can stop them).
  const slowHeaders = await Promise.all(Array.from({ length: 50 }, () => raw(port)));
  for (const s of slowHeaders) trickle(s.sock, `POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: text/plain\r\nX-Pad: ${'p'.repeat(500)}\r\n\r\n`, 250);

  // Slow-body clients: 20 authenticated (they hold POST slots), 20 not (401 at once).
  const slowBodies = await Promise.all(Array.from({ length: 20 }, () => raw(port)));
  for (const s of slowBodies) {
    s.sock.write(`POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n`);
    trickle(s.sock, 'count#abuse.slow=1\n'.repeat(5000), 250);
  }
  const unauthBodies = await Promise.all(Array.from({ length: 20 }, () => raw(port)));
  for (const s of unauthBodies) {
    s.sock.write(`POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from('user:nope').toString('base64')}\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n`);
    trickle(s.sock, 'count#abuse.slow=1\n'.repeat(5000), 250);
  }
  const unauthClosed = await Promise.all(unauthBodies.map((s) => s.closedAfter));
  t.ok(
    unauthBodies.every((s) => s.received().startsWith('HTTP/1.1 401 ')),
    'unauthenticated slow bodies get 401',
  );
  t.ok(Math.max(...unauthClosed) < 2000, `and are disconnected at once (slowest ${Math.max(...unauthClosed).toFixed(0)} ms)`);

  // Oversized: declared, then streamed without a length.
  const declared = await raw(port);
  declared.sock.write(`POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: text/plain\r\nContent-Length: ${6 * MiB}\r\n\r\ncount#abuse.big=1\n`);
  const declaredMs = await declared.closedAfter;
  t.match(declared.received(), /^HTTP\/1\.1 413 /, 'declared 6 MiB: 413');
  t.ok(declaredMs < 2000, `answered and closed in ${declaredMs.toFixed(0)} ms`);
  const chunked = await raw(port);
  chunked.sock.write(`POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`);
  const piece = Buffer.alloc(64 * 1024, 0x61);
  for (let i = 0; i < 96 && !chunked.sock.destroyed; i++) {
    chunked.sock.write(`${piece.length.toString(16)}\r\n`);
    chunked.sock.write(piece);
    chunked.sock.write('\r\n');
    if (i % 8 === 7) await sleep(1);
  }
  const chunkedMs = await chunked.closedAfter;
  t.match(chunked.received(), /^HTTP\/1\.1 413 /, 'streamed 6 MiB: 413');
  t.ok(chunkedMs < 5000, `answered and closed in ${chunkedMs.toFixed(0)} ms`);

  // Ten gzip bombs at once.
  const bombStarted = performance.now();
  const bombs = await Promise.all(
    Array.from({ length: 10 }, async () => {
      const res = await fetch(`${base}/logs`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/logplex-1', 'content-encoding': 'gzip' }, body: bomb });
      await res.arrayBuffer();
      return res.status;
    }),
  );
  const bombMs = performance.now() - bombStarted;
  t.same(bombs, Array(10).fill(413), `10 bombs of ${(bomb.length / 1024).toFixed(0)} KiB (256 MiB inflated): all 413`);
  t.ok(bombMs < 3000, `in ${bombMs.toFixed(0)} ms`);

  // Auth brute force, interleaving right and wrong credentials on fresh connections.
  const basic = (userinfo: string) => `Basic ${Buffer.from(userinfo).toString('base64')}`;
  const latencies = { right: [] as number[], wrongPassword: [] as number[], wrongUser: [] as number[] };
  const statuses = { right: new Set<number>(), wrong: new Set<number>() };
  let wrong = 0;
  for (let i = 0; i < 900; i++) {
    const kind = i % 3 === 0 ? 'right' : i % 3 === 1 ? 'wrongPassword' : 'wrongUser';
    const auth = kind === 'right' ? AUTH : kind === 'wrongPassword' ? basic(`user:${['pas', 'pass1', 'Pass', 'x'.repeat(i % 64), `p${i}`][i % 5]}`) : basic(`${['usr', 'user1', 'admin', `u${i}`, ''][i % 5]}:pass`);
    const r = await timedPost(port, auth);
    latencies[kind].push(r.ms);
    if (kind === 'right') statuses.right.add(r.status);
    else {
      statuses.wrong.add(r.status);
      wrong++;
    }
  }
  t.same([...statuses.wrong], [401], `${wrong} wrong credentials: all 401`);
  t.same([...statuses.right], [200], 'right credentials: all 200');
  const [right, wrongPassword, wrongUser] = [median(latencies.right), median(latencies.wrongPassword), median(latencies.wrongUser)];
  t.comment(`median latency: right ${right.toFixed(2)} ms, wrong password ${wrongPassword.toFixed(2)} ms, wrong user ${wrongUser.toFixed(2)} ms`);
  const close = (a: number, b: number) => Math.max(a, b) <= 2 * Math.min(a, b) || Math.abs(a - b) <= 5;
  t.ok(close(right, wrongPassword) && close(right, wrongUser), 'wrong credentials answer as fast as right ones (within 2× or 5 ms)');
  t.ok(close(wrongPassword, wrongUser), 'a right user with a wrong password is indistinguishable from a wrong user');

  // Every idle and slow-header connection is closed by the server after the headers timeout: wait for
  // that, but no longer than the timeout plus 3 s from when they were opened.
  const deadline = sleep(Math.max(0, idleStarted + (HEADERS_TIMEOUT_S + 3) * 1000 - performance.now())).then(() => Infinity);
  const idleClosed = await Promise.all(idle.map((s) => Promise.race([s.closedAfter, deadline])));
  const slowClosed = await Promise.all(slowHeaders.map((s) => Promise.race([s.closedAfter, deadline])));
  const idleMax = Math.max(...idleClosed) / 1000;
  const slowMax = Math.max(...slowClosed) / 1000;
  t.comment(`idle connections closed after ${(Math.min(...idleClosed) / 1000).toFixed(1)}–${idleMax.toFixed(1)} s, slow-header ones after up to ${slowMax.toFixed(1)} s`);
  t.ok(idleMax < HEADERS_TIMEOUT_S + 3, `all ${idle.length} idle connections closed by the server (last after ${idleMax.toFixed(1)} s)`);
  t.ok(slowMax < HEADERS_TIMEOUT_S + 3, `all 50 slow-header connections closed (last after ${slowMax.toFixed(1)} s)`);
  for (const s of [...idle, ...slowHeaders]) s.sock.destroy();
  t.ok(
    slowHeaders.every((s) => s.received().startsWith('HTTP/1.1 408 ')),
    'slow-header clients got 408',
  );
  t.ok(
    slowBodies.every((s) => !s.sock.destroyed && s.received() === ''),
    'authenticated slow bodies are still waiting (cut only at requestTimeoutMs)',
  );

  // Stop: the drain, then the slow bodies (client side), then the server.
  draining = false;
  await drain;
  for (const s of slowBodies) s.sock.destroy();
  await sleep(300);
  t.equal(c.proc.exitCode, null, 'the server is still up');
  t.equal((await c.stop()).code, 0, 'clean exit on SIGTERM');
  const { peakKiB, samples } = rss.stop();
  t.comment(`server RSS first ${(samples[0]! / 1024).toFixed(0)} MiB, peak ${(peakKiB / 1024).toFixed(0)} MiB (bound ${RSS_BOUND_MIB} MiB)`);
  t.ok(peakKiB / 1024 < RSS_BOUND_MIB, `RSS peak ${(peakKiB / 1024).toFixed(0)} MiB`);

  t.same(drainFailures, [], 'every drain POST was answered 200');
  t.ok(drainPosts > 100, `${drainPosts} drain POSTs`);
  t.equal(consoleTotal(c.lines, 'abuse.drain', ['app:abuse']), drainLines, `all ${drainLines} drain lines counted, exactly`);
  t.equal(consoleTotal(c.lines, 'abuse.brute'), 300, 'only the right-credential bodies counted');
  t.equal(consoleTotal(c.lines, 'abuse.slow'), 0, 'nothing of an unfinished body is counted');
  t.equal(consoleTotal(c.lines, 'abuse.big'), 0);
  const dropped = (reason: string) => consoleTotal(c.lines, 'metrics_distributor.dropped', ['component:http', `reason:${reason}`]);
  t.equal(dropped('unauthorized'), wrong + 20, 'every 401 is counted');
  t.equal(dropped('body_too_large'), 12, 'every 413 is counted');
  t.equal(dropped('client_aborted'), 20, 'every aborted slow body is counted');
  t.equal(dropped('internal_error'), 0);
});
