import t from 'tap';
import { createServer, type Server } from 'node:net';
import { isMdError } from '@metrics-distributor/core';
import { TcpFrontend, type TcpFrontendOptions } from '../src/index.js';
import { resolveTcpOptions } from '../src/options.js';
import { captureLogger, nullTarget, setup, tcpContext, waitFor, write } from './helpers.js';

const fakeDeps = () => ({ target: nullTarget, context: tcpContext(captureLogger().logger) });

t.test('invalid options are rejected at construction', async (t) => {
  const bad: TcpFrontendOptions[] = [
    { port: 70000 },
    { port: -1 },
    { port: 1.5 },
    { port: null },
    { unixPath: '' },
    { maxLineBytes: 0 },
    { maxConnections: 0 },
    { idleTimeoutMs: -1 },
    { closeDrainMs: -1 },
    { unixPath: '/tmp/x.sock', unixSocketMode: 0o10000 },
  ];
  for (const opts of bad) t.throws(() => new TcpFrontend(opts, fakeDeps()), { code: 'MD_ERR_CONFIG_INVALID' }, JSON.stringify(opts));
});

t.test('port defaults: 8125 alone, none beside a Unix path unless given', async (t) => {
  const ports = (opts: TcpFrontendOptions) => resolveTcpOptions(opts).port;
  t.equal(ports({}), 8125);
  t.equal(ports({ unixPath: '/tmp/x.sock' }), undefined);
  t.equal(ports({ unixPath: '/tmp/x.sock', port: null }), undefined);
  t.equal(ports({ unixPath: '/tmp/x.sock', port: 9125 }), 9125);
});

t.test('a busy port rejects with MD_ERR_FRONTEND_BIND and keeps the cause; start() may be retried', async (t) => {
  const s = await setup(t);
  const other = new TcpFrontend({ port: s.port }, fakeDeps());
  const err = await other.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isMdError(err, 'MD_ERR_FRONTEND_BIND'));
  t.match((err as Error).cause, { code: 'EADDRINUSE' });
  t.same(other.addresses(), []);
  await s.fe.close();
  await other.start();
  t.same(other.addresses(), [`tcp://127.0.0.1:${s.port}`], 'the retry binds once the port is free');
  await other.close();
});

const hasV6 = await new Promise<boolean>((resolve) => {
  const probe = createServer();
  probe.once('error', () => resolve(false));
  probe.listen({ host: '::1', port: 0 }, () => probe.close(() => resolve(true)));
});

t.test('binds ::1 (brackets accepted) and reports it bracketed', { skip: hasV6 ? false : 'no IPv6 loopback on this machine' }, async (t) => {
  const s = await setup(t, { host: '[::1]' });
  t.match(s.fe.addresses(), [/^tcp:\/\/\[::1\]:\d+$/]);
});

t.test('listener errors after start are logged, rate-limited, and do not crash', async (t) => {
  const s = await setup(t);
  const server = (s.fe as unknown as { listeners: { server: Server }[] }).listeners[0]!.server;
  server.emit('error', Object.assign(new Error('accept failed'), { code: 'EMFILE' }));
  server.emit('error', Object.assign(new Error('accept failed again'), { code: 'EMFILE' }));
  const warns = s.lines.filter((l) => l.level === 40);
  t.equal(warns.length, 1);
  t.match(warns[0], { msg: 'StatsD TCP socket error; still listening.', err: { message: 'accept failed' } });
  const c = await s.dial();
  await write(c, 'alive:1|c\n');
  await waitFor(() => s.stats.received === 1, 'a line after the error');
});

t.test('packets and bytes count chunks and raw bytes', async (t) => {
  const s = await setup(t);
  const c = await s.dial();
  await write(c, 'a:1|c\nb:');
  await waitFor(() => s.stats.bytes === 8, 'first chunk');
  await write(c, '1|c\n');
  await waitFor(() => s.stats.bytes === 12, 'second chunk');
  t.equal(s.stats.packets, 2);
  t.equal(s.stats.received, 2);
  t.equal(s.stats.parsed, 2);
});
