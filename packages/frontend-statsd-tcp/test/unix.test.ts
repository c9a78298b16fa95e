import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aggregator, isMdError } from '@metrics-distributor/core';
import { TcpFrontend } from '../src/index.js';
import { captureLogger, closed, tcpContext, dial, setup, valueOf, waitFor, write } from './helpers.js';

/** A short temp dir: socket paths are limited to ~107 bytes, too short for tap's fixture dirs. */
function sockPath(t: Test, name = 's.sock'): string {
  const dir = mkdtempSync(join(tmpdir(), 'md-tcp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, name);
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

function listenUnix(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer((sock) => sock.destroy());
    srv.once('error', reject);
    srv.listen({ path }, () => resolve(srv));
  });
}

/** A front-end that should fail to start, with an aggregator we do not need to read. */
function frontend(unixPath: string, port?: number) {
  const { logger, lines } = captureLogger();
  const context = tcpContext(logger);
  const fe = new TcpFrontend({ unixPath, port }, { target: new Aggregator({ selfMetrics: false }).target(context), context });
  return { fe, lines };
}

async function startError(fe: TcpFrontend): Promise<unknown> {
  return fe.start().then(
    () => undefined,
    (e: unknown) => e,
  );
}

t.test('Unix only: binds with mode 0660, parses lines, removes its file on close', async (t) => {
  const path = sockPath(t);
  const s = await setup(t, { unixPath: path });
  t.same(s.fe.addresses(), [`unix://${path}`], 'no TCP listener when only a path is given');
  t.ok(statSync(path).isSocket());
  t.equal(modeOf(path), 0o660);
  const c = await s.dial(path);
  await write(c, 'unix.hits:1|c|#ü:1\nunix.hits:2|c|#ü:1\nunix.g:7|g');
  c.end();
  await waitFor(() => s.stats.received === 3, 'three lines');
  t.equal(valueOf(s.agg.closeWindow(), 'unix.hits', ['ü:1']), 3);
  await s.fe.close();
  t.notOk(existsSync(path), 'the socket file is gone after close');
  t.same(s.fe.addresses(), []);
});

t.test('the socket file mode comes from the option', async (t) => {
  for (const mode of [0o600, 0o666, 0o700]) {
    const path = sockPath(t);
    const s = await setup(t, { unixPath: path, unixSocketMode: mode });
    t.equal(modeOf(path), mode, `mode ${mode.toString(8)}`);
    await s.fe.close();
  }
});

t.test('TCP and Unix together feed the same target', async (t) => {
  const path = sockPath(t);
  const s = await setup(t, { unixPath: path, port: 0 });
  t.match(s.fe.addresses(), [/^tcp:\/\/127\.0\.0\.1:\d+$/, `unix://${path}`]);
  const viaTcp = await s.dial();
  const viaUnix = await s.dial(path);
  await write(viaTcp, 'both:1|c\n');
  await write(viaUnix, 'both:2|c\n');
  await waitFor(() => s.stats.received === 2, 'both lines');
  t.equal(valueOf(s.agg.closeWindow(), 'both'), 3);
});

t.test('a stale socket file (its process was killed) is removed and the path reused', async (t) => {
  const path = sockPath(t);
  // A real crash: a process listens on the path and is SIGKILLed, so nobody unlinks the file.
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  t.ok(statSync(path).isSocket(), 'the stale file is left behind');
  await t.rejects(dial(path), { code: 'ECONNREFUSED' }, 'nothing listens on it');

  const s = await setup(t, { unixPath: path });
  t.ok(s.lines.some((l) => /stale/.test(l.msg) && l.path === path), 'the removal is logged');
  const c = await s.dial(path);
  await write(c, 'after.stale:1|c\n');
  await waitFor(() => s.stats.received === 1, 'a line on the reused path');
});

t.test('a path held by a live server is refused and left alone', async (t) => {
  const path = sockPath(t);
  const live = await listenUnix(path);
  t.teardown(() => new Promise<void>((resolve) => live.close(() => resolve())));
  const { fe } = frontend(path);
  const err = await startError(fe);
  t.ok(isMdError(err, 'MD_ERR_FRONTEND_BIND'));
  t.match((err as Error).message, /another process is listening/);
  t.match((err as Error).cause, { code: 'EADDRINUSE' });
  t.same(fe.addresses(), []);
  t.ok(existsSync(path), 'the live socket file was not removed');
  const c = await dial(path);
  await closed(c);
  t.pass('the live server still accepts connections');
  await fe.close();
});

t.test('a path that is not a socket is never removed', async (t) => {
  const path = sockPath(t, 'precious.txt');
  writeFileSync(path, 'keep me');
  const { fe } = frontend(path);
  const err = await startError(fe);
  t.ok(isMdError(err, 'MD_ERR_FRONTEND_BIND'));
  t.match((err as Error).message, /not a socket/);
  t.equal(readFileSync(path, 'utf8'), 'keep me');
  await fe.close();
});

t.test('when the Unix socket cannot bind, the TCP listener is released too', async (t) => {
  const path = sockPath(t);
  const live = await listenUnix(path);
  t.teardown(() => new Promise<void>((resolve) => live.close(() => resolve())));
  // Learn a free port, then ask for it explicitly so we can check it is free again afterwards.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  const { fe } = frontend(path, port);
  t.ok(isMdError(await startError(fe), 'MD_ERR_FRONTEND_BIND'));
  t.same(fe.addresses(), []);
  await t.rejects(dial(port), { code: 'ECONNREFUSED' }, 'the TCP port is not left listening');
  await fe.close();
});
