import t, { type Test } from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { Aggregator, isMdError, type IngestTarget, type MetricBatch, type Series } from '@metrics-distributor/core';
import { UdpFrontend, type UdpFrontendOptions } from '../src/index.js';
import { captureLogger, kernelDrops, portOf, send, udpContext, waitFor } from './helpers.js';

/** A target that takes every datagram and does nothing with it. */
const nullTarget: IngestTarget = { statsd: () => undefined, statsdLine: () => undefined, addSample: () => 'accepted', windowStartMs: 0 };

function sortSeries(batch: MetricBatch): Series[] {
  return [...batch.series].sort((a, b) => (a.metric + a.tags.join(',')).localeCompare(b.metric + b.tags.join(',')));
}

/** Aggregator + front-end + client on loopback, torn down by the test. */
async function setup(t: Test, opts: UdpFrontendOptions = {}, level = 'debug') {
  const agg = new Aggregator({ hostname: 'h', selfMetrics: false, countersAs: 'count', flushIntervalMs: 10_000 });
  const { logger, lines } = captureLogger(level);
  const context = udpContext(logger, agg.stats);
  const host = opts.host ?? '127.0.0.1';
  const fe = new UdpFrontend({ port: 0, ...opts, host }, { target: agg.target(context), context });
  await fe.start();
  const client = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  t.teardown(async () => {
    client.close();
    await fe.close();
    await agg.close();
  });
  const port = portOf(fe);
  return { agg, stats: context.stats, fe, lines, port, host, send: (p: string | Buffer) => send(client, p, port, host) };
}

const hasV6 = await new Promise<boolean>((resolve) => {
  const probe = createSocket('udp6');
  probe.once('error', () => resolve(false));
  probe.bind({ address: '::1', port: 0 }, () => probe.close(() => resolve(true)));
});

/** Linux's cap on SO_RCVBUF requests, or undefined elsewhere. */
function readRmemMax(): number | undefined {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
  } catch {
    return undefined;
  }
}
const rmemMax = readRmemMax() ?? Infinity;
const hugeRequest = 2 ** 30;

/** The readers every case runs with; `batch` needs the addon the package's build compiles (Linux). */
const READERS = ['dgram', 'batch'] as const;

for (const reader of READERS) {
  t.test(`reader: ${reader}`, async (t) => {
    t.test('binds 127.0.0.1 on an ephemeral port and aggregates a multi-line datagram', async (t) => {
      const s = await setup(t, { reader });
      t.match(s.fe.addresses(), [/^udp:\/\/127\.0\.0\.1:\d+$/]);
      t.not(s.port, 0, 'the real port is reported, not 0');
      t.same(s.fe.boundAddress(), { address: '127.0.0.1', port: s.port, family: 'udp4' }, 'and as data');
      t.ok(s.lines.some((l) => l.msg === 'StatsD UDP listening.' && l.address === `udp://127.0.0.1:${s.port}` && l.reader === reader), 'the listening line names the reader');
      t.equal(s.fe.reader, reader);

      await s.send('req.count:1|c\nreq.count:2|c|#env:prod\nreq.count:4|c\nmem.used:512|g\n');
      await waitFor(() => s.stats.packets === 1, 'one packet');
      t.equal(s.stats.parsed, 4);
      t.equal(s.stats.bad, 0);

      const batch = s.agg.closeWindow();
      const ts = Math.floor(batch.windowStartMs / 1000);
      t.same(sortSeries(batch), [
        { metric: 'mem.used', type: 'gauge', timestamp: ts, value: 512, interval: 10, tags: [], host: 'h' },
        { metric: 'req.count', type: 'count', timestamp: ts, value: 5, interval: 10, tags: [], host: 'h' },
        { metric: 'req.count', type: 'count', timestamp: ts, value: 2, interval: 10, tags: ['env:prod'], host: 'h' },
      ]);
    });

    t.test('binds ::1 with a udp6 socket', { skip: hasV6 ? false : 'no IPv6 loopback on this machine' }, async (t) => {
      const s = await setup(t, { reader, host: '::1' });
      t.match(s.fe.addresses(), [/^udp:\/\/\[::1\]:\d+$/]);
      await s.send('v6.hits:3|c\n');
      await waitFor(() => s.stats.packets === 1, 'one packet over IPv6');
      const batch = s.agg.closeWindow();
      t.same(
        batch.series.map((x) => [x.metric, x.value]),
        [['v6.hits', 3]],
      );
    });

    t.test('garbage lines between good ones: good ones aggregated, bad ones counted', async (t) => {
      const s = await setup(t, { reader });
      await s.send('good:1|c\nthis is garbage\ngood:2|c\n:|\ngood2:3|g\n');
      await waitFor(() => s.stats.packets === 1, 'one packet');
      t.equal(s.stats.bad, 2);
      t.equal(s.stats.parsed, 3);
      const batch = s.agg.closeWindow();
      t.same(
        sortSeries(batch).map((x) => [x.metric, x.value]),
        [
          ['good', 3],
          ['good2', 3],
        ],
      );
    });

    t.test('binary garbage and invalid UTF-8 do not stop the socket', async (t) => {
      const s = await setup(t, { reader });
      await s.send(Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a, 0x0d, 0x80]));
      await s.send(Buffer.from('caf\xc3(:1|c\n\xff\xfe\xfd|#\xc0\n', 'latin1'));
      await s.send(Buffer.alloc(0));
      await s.send('after.garbage:7|g\n');
      await waitFor(() => s.stats.packets === 4, 'four packets');
      t.ok(s.stats.bad >= 3, 'the garbage lines were counted as bad');
      t.equal(s.stats.dropped('internal_error'), 0);
      const after = s.agg.closeWindow().series.find((x) => x.metric === 'after.garbage');
      t.equal(after?.value, 7, 'a good datagram after the garbage is still aggregated');
    });

    t.test('a datagram over maxDatagramBytes is counted as truncated and only its complete lines within the limit are parsed', async (t) => {
      // The limit falls inside trunc.cut's value: parsing the cut line would record 12 instead of 12345.
      const head = 'trunc.kept:1|c\n';
      const s = await setup(t, { reader, maxDatagramBytes: head.length + 'trunc.cut:12'.length });
      await s.send(head + 'trunc.cut:12345|c\n' + 'trunc.lost:1|c\n'.repeat(10));
      await s.send(head); // within the limit: not truncated
      await waitFor(() => s.stats.packets === 2, 'two packets');
      t.equal(s.stats.dropped('truncated'), 1);
      t.equal(s.stats.bytes, 2 * head.length - 1, 'the first datagram was cut back to its last newline');
      t.equal(s.stats.bad, 0, 'the cut line is not parsed at all');
      t.same(
        s.agg.closeWindow().series.map((x) => [x.metric, x.value]),
        [['trunc.kept', 2]],
      );
      const warns = s.lines.filter((l) => l.code === 'MD_ERR_FRONTEND_TRUNCATED');
      t.equal(warns.length, 1);
      t.equal(warns[0]?.level, 40);
    });

    t.test('logs the requested and granted receive buffer', async (t) => {
      const s = await setup(t, { reader, recvBufferBytes: 65536 });
      const line = s.lines.find((l) => l.msg === 'StatsD UDP receive buffer.');
      t.equal(line?.requestedBytes, 65536);
      t.type(line?.grantedBytes, 'number');
      t.ok((line?.grantedBytes as number) >= 65536, 'a small request is granted in full');
      t.notOk(
        s.lines.some((l) => l.level >= 40),
        'no warning when the kernel granted what was asked',
      );
    });

    t.test('warns once when the kernel grants less than requested', {
      skip: rmemMax * 2 < hugeRequest ? false : 'needs Linux with net.core.rmem_max below 512 MiB',
    }, async (t) => {
      const requested = hugeRequest;
      const s = await setup(t, { reader, recvBufferBytes: requested });
      const info = s.lines.find((l) => l.msg === 'StatsD UDP receive buffer.');
      t.equal(info?.requestedBytes, requested);
      t.equal(info?.grantedBytes, rmemMax * 2, 'Linux grants twice the capped request');
      const warns = s.lines.filter((l) => l.level === 40);
      t.equal(warns.length, 1);
      t.equal(warns[0]?.grantedBytes, rmemMax * 2);
    });

    t.test('nothing is logged above debug per packet', async (t) => {
      const s = await setup(t, { reader }, 'info');
      const before = s.lines.length;
      for (let i = 0; i < 20; i++) await s.send(`quiet.count:${i}|c\nquiet.gauge:${i}|g\n`);
      await waitFor(() => s.stats.packets === 20, '20 packets');
      t.equal(s.lines.length, before, 'no log line for good packets');
    });

    t.test('an exception from the target loses one datagram, is logged once, and the socket lives on', async (t) => {
      const got: string[] = [];
      const { logger, lines } = captureLogger();
      const context = udpContext(logger);
      const target: IngestTarget = {
        ...nullTarget,
        statsd(buf: Buffer, start = 0, end = buf.length) {
          context.stats.packets++;
          const text = buf.toString('utf8', start, end);
          if (text.startsWith('boom')) throw new Error('parser bug');
          got.push(text);
        },
      };
      const fe = new UdpFrontend({ port: 0, reader }, { target, context });
      await fe.start();
      const client = createSocket('udp4');
      t.teardown(async () => {
        client.close();
        await fe.close();
      });
      const port = portOf(fe);
      await send(client, 'boom 1', port, '127.0.0.1');
      await send(client, 'boom 2', port, '127.0.0.1');
      await send(client, 'fine:1|c', port, '127.0.0.1');
      await waitFor(() => context.stats.packets === 3, 'three packets');
      t.same(got, ['fine:1|c']);
      t.equal(context.stats.dropped('internal_error'), 2);
      const errors = lines.filter((l) => l.level === 50);
      t.equal(errors.length, 1, 'rate-limited: one error line for two failures');
      t.match(errors[0], { reason: 'internal_error', err: { message: /parser bug/, stack: /caused by: Error: parser bug/ } }, 'the thrown error is kept as the cause');
    });

    t.test('socket errors after start are logged, rate-limited, and do not crash', async (t) => {
      const s = await setup(t, { reader });
      const socket = (s.fe as unknown as { socket: Socket }).socket;
      socket.emit('error', new Error('boom 1'));
      socket.emit('error', new Error('boom 2'));
      const errors = s.lines.filter((l) => l.level === 50);
      t.equal(errors.length, 1);
      t.match(errors[0], { msg: 'StatsD UDP socket error; still listening.', err: { message: 'boom 1' } });
      await s.send('still.alive:1|c\n');
      await waitFor(() => s.stats.packets === 1, 'a packet after the error');
    });

    t.test('bind failure rejects with MD_ERR_FRONTEND_BIND and keeps the cause', async (t) => {
      const s = await setup(t, { reader });
      const { logger } = captureLogger();
      const context = udpContext(logger);
      const other = new UdpFrontend({ port: s.port, reader }, { target: s.agg.target(context), context });
      const err = await other.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      t.ok(isMdError(err, 'MD_ERR_FRONTEND_BIND'), 'an MdError with the bind code');
      t.match((err as Error).cause, { code: 'EADDRINUSE' });
      t.same(other.addresses(), []);
      await other.close();
    });

    t.test('invalid options are rejected at construction', async (t) => {
      const deps = { target: nullTarget, context: udpContext(captureLogger().logger) };
      t.throws(() => new UdpFrontend({ port: 70000 }, deps), { code: 'MD_ERR_CONFIG_INVALID' });
      t.throws(() => new UdpFrontend({ maxDatagramBytes: 0 }, deps), { code: 'MD_ERR_CONFIG_INVALID' });
      t.throws(() => new UdpFrontend({ recvBufferBytes: -1 }, deps), { code: 'MD_ERR_CONFIG_INVALID' });
    });

    t.test('close() is idempotent, stops receiving and forgets the address', async (t) => {
      const s = await setup(t, { reader });
      await s.send('before.close:1|c\n');
      await waitFor(() => s.stats.packets === 1, 'one packet');
      const first = s.fe.close();
      const second = s.fe.close();
      t.equal(first, second, 'the same promise');
      await first;
      await s.fe.close();
      t.same(s.fe.addresses(), []);
      t.equal(s.fe.boundAddress(), undefined);
      await t.rejects(s.fe.start(), { code: 'MD_ERR_FRONTEND_BIND' }, 'a closed front-end cannot restart');

      // The port is free again: a new socket can bind it, proving the old one is really closed.
      const probe = createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.bind({ address: '127.0.0.1', port: s.port }, resolve);
      });
      await new Promise<void>((resolve) => probe.close(resolve));
    });

    t.test('close() before start() resolves', async (t) => {
      const fe = new UdpFrontend({ port: 0, reader }, { target: nullTarget, context: udpContext(captureLogger().logger) });
      await fe.close();
      await fe.close();
      t.same(fe.addresses(), []);
    });

    t.test('close() reads the datagrams the kernel already queued (system-test regression: a burst before SIGTERM was lost)', async (t) => {
      const s = await setup(t, { reader });
      // Queue a burst faster than the loop reads it: the sends complete before the front-end reads them all.
      const n = 3000;
      const payload = Array.from({ length: 10 }, () => 'burst:1|c').join('\n');
      await Promise.all(Array.from({ length: n }, () => s.send(payload)));
      await s.fe.close();
      const drops = kernelDrops(s.port);
      t.equal(drops, 0, 'the kernel dropped nothing (else the burst was too big for this machine)');
      t.equal(s.stats.packets, n, 'every queued datagram was read before the socket closed');
      const batch = await s.agg.close();
      t.equal(sortSeries(batch!).find((x) => x.metric === 'burst')?.value, n * 10);
    });

    t.test('closeDrainMs: 0 closes at once; a negative value is rejected', async (t) => {
      const deps = { target: nullTarget, context: udpContext(captureLogger().logger) };
      const fe = new UdpFrontend({ port: 0, closeDrainMs: 0, reader }, deps);
      await fe.start();
      const started = Date.now();
      await fe.close();
      t.ok(Date.now() - started < 40, 'no drain wait');
      t.throws(() => new UdpFrontend({ closeDrainMs: -1 }, deps), { code: 'MD_ERR_CONFIG_INVALID' });
    });
  });
}
