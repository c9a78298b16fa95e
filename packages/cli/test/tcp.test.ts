import t from 'tap';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portOf, startCli, type OutLine } from './helpers.js';

/** Flags every test here starts with: one-hour window (the only flush is the one SIGTERM forces). */
const BASE = ['--statsd-udp', '127.0.0.1:0', '--http', 'off', '--flush-interval', '1h'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects over TCP (port) or a Unix socket (path); later errors (EPIPE, ECONNRESET at shutdown) are expected and swallowed. */
function dial(target: number | string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = typeof target === 'number' ? connect({ host: '127.0.0.1', port: target }) : connect({ path: target });
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.off('error', reject);
      sock.on('error', () => undefined);
      resolve(sock);
    });
  });
}

function write(sock: Socket, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => sock.write(data, (err) => (err ? reject(err) : resolve())));
}

function closed(sock: Socket): Promise<void> {
  return sock.closed ? Promise.resolve() : new Promise((resolve) => sock.once('close', () => resolve()));
}

/** The counter `metric` of the final flush as a count: rate × interval (3600 s). */
function countOf(lines: OutLine[], metric: string, tags: string[] = []): number | undefined {
  const l = lines.find((x) => x.metric === metric && x.kind === undefined && (x.tags ?? []).join(',') === tags.join(','));
  if (l === undefined) return undefined;
  if (l.interval !== 3600) throw new Error(`${metric}: expected a 3600 s interval, got ${String(l.interval)}`);
  return Math.round(l.value! * l.interval);
}

t.test('end to end over TCP: SIGTERM while a client is mid-stream; every line sent before it is in the final flush', async (t) => {
  const c = startCli([...BASE, '--statsd-tcp', '127.0.0.1:0', '--self-metrics', 'false']);
  const listeners = await c.listening;
  t.ok(
    listeners.some((l) => /^tcp:\/\/127\.0\.0\.1:\d+$/.test(l)),
    `the start-up line lists the TCP listener (${listeners.join(', ')})`,
  );
  const sock = await dial(portOf(listeners, 'tcp'));

  const LINE = 'tcp.e2e:1|c|#phase:any\n';
  const L = LINE.length;
  // Phase 1: K lines, handed to the kernel, then time for the server to read them.
  const K = 20_000;
  await write(sock, LINE.repeat(K));
  await sleep(200);

  // Phase 2: keep streaming, paced, in odd-sized slices (chunks end mid-line) until the server closes the
  // connection. `confirmed` counts bytes whose write callback fired: they were in the kernel.
  const SLICE = 9001;
  const big = Buffer.from(LINE.repeat(Math.ceil(SLICE / L) + 2));
  let written = K * L;
  let confirmed = K * L;
  let slices = 0;
  const streaming = (async () => {
    while (sock.writable && c.proc.exitCode === null) {
      const start = written % L;
      sock.write(big.subarray(start, start + SLICE), (err) => {
        if (!err) confirmed += SLICE;
      });
      written += SLICE;
      slices++;
      await sleep(1);
    }
  })();
  while (slices < 50) await sleep(5);

  const confirmedAtSignal = confirmed;
  c.proc.kill('SIGTERM');
  const { code } = await c.exited;
  sock.destroy();
  await streaming;
  t.equal(code, 0, 'exit code 0 after SIGTERM');
  const count = countOf(c.lines, 'tcp.e2e', ['phase:any']);
  t.ok(count !== undefined, 'the counter is in the final flush');
  t.ok(count! >= K, `every line of phase 1 is counted (${count} >= ${K})`);
  // Lines of phase 2 handed to the client's kernel before the signal are normally counted too, but bytes still
  // queued on the client side are not yet "received", so that bound is reported, not asserted (it would be flaky).
  t.comment(`counted ${count} lines; ${Math.floor(confirmedAtSignal / L)} complete lines had left the client before SIGTERM`);
  t.ok(count! <= Math.floor(written / L), `no line counted that was not sent (${count} <= ${Math.floor(written / L)})`);
  t.match(c.stderr(), /Shutdown complete/);
});

t.test('end to end over a Unix socket: mode from the flag, lines counted, file removed at exit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'md-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'statsd.sock');
  const c = startCli([...BASE, '--statsd-tcp', 'off', '--statsd-unix', path, '--statsd-unix-mode', '600', '--self-metrics', 'false']);
  const listeners = await c.listening;
  t.ok(listeners.includes(`unix://${path}`), `the start-up line lists the Unix socket (${listeners.join(', ')})`);
  t.notOk(
    listeners.some((l) => l.startsWith('tcp://')),
    'no TCP listener with --statsd-tcp off',
  );
  t.equal(statSync(path).mode & 0o777, 0o600);
  const sock = await dial(path);
  await write(sock, 'unix.e2e:1|c\nunix.e2e:2|c\nunix.e2e:3|c');
  sock.end(); // a clean end: the unterminated last line counts too
  await closed(sock);
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  t.equal(countOf(c.lines, 'unix.e2e'), 6);
  t.notOk(existsSync(path), 'the socket file is removed at shutdown');
});

t.test('TCP limits from the flags are enforced and counted in self-metrics', async (t) => {
  const idleMs = 2000;
  const c = startCli([
    ...BASE,
    '--statsd-tcp',
    '127.0.0.1:0',
    '--statsd-tcp-max-line-bytes',
    '32',
    '--statsd-tcp-max-connections',
    '1',
    '--statsd-tcp-idle-timeout',
    `${idleMs}ms`,
    '--self-metrics',
    'true',
  ]);
  const port = portOf(await c.listening, 'tcp');
  const first = await dial(port);
  const firstClosed = closed(first);
  await write(first, `${'x'.repeat(40)}:1|c\nlimits.ok:1|c\n`);
  const lastWriteAt = Date.now();
  // Give the server time to accept the first connection, then go over the limit of one.
  await sleep(300);
  const second = await dial(port);
  await closed(second);
  t.ok(Date.now() - lastWriteAt < idleMs, 'the second connection was refused while the first was live');
  await firstClosed;
  t.ok(Date.now() - lastWriteAt >= idleMs - 50, 'the first connection was closed by the idle timeout');
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  t.equal(countOf(c.lines, 'limits.ok'), 1, 'the line after the over-long one is kept');
  for (const reason of ['line_too_long', 'max_connections', 'idle_timeout']) {
    t.equal(countOf(c.lines, 'metrics_distributor.dropped', ['component:statsd-tcp', `reason:${reason}`]), 1, reason);
  }
});
