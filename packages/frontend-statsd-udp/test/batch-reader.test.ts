import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aggregator, type IngestTarget } from '@metrics-distributor/core';
import { UdpFrontend, type UdpFrontendOptions } from '../src/index.js';
import { captureLogger, kernelDrops, portOf, send, udpContext, waitFor } from './helpers.js';
import { BATCH_DATAGRAMS, loadBatchAddon, type BatchReaderStats } from '../src/batch-reader.js';

/** The reader's addon counters, read through the front-end (private: only tests look). */
function readerStats(fe: UdpFrontend): BatchReaderStats {
  return (fe as unknown as { batch: { stats(): BatchReaderStats } }).batch.stats();
}

/** Aggregator + batch-reading front-end + client, torn down by the test. */
async function setup(t: Test, opts: UdpFrontendOptions = {}) {
  const agg = new Aggregator({ hostname: 'h', selfMetrics: false, countersAs: 'count', flushIntervalMs: 10_000 });
  const { logger, lines } = captureLogger();
  const context = udpContext(logger, agg.stats);
  const fe = new UdpFrontend({ port: 0, reader: 'batch', ...opts }, { target: agg.target(context), context });
  await fe.start();
  const client = createSocket('udp4');
  t.teardown(async () => {
    client.close();
    await fe.close();
    await agg.close();
  });
  const port = portOf(fe);
  return { agg, stats: context.stats, fe, lines, port, send: (p: string | Buffer) => send(client, p, port) };
}

const addon = loadBatchAddon();
const needsAddon = addon.ok ? false : `the batch reader addon is not available: ${addon.why}`;

t.test('exact counter totals over many datagrams, read several per system call', { skip: needsAddon }, async (t) => {
  const s = await setup(t);
  const names = 250;
  const datagrams = 4000;
  // 20 lines per datagram, names cycling, so every slot of the slab carries other contexts each batch.
  const expected = new Map<string, number>();
  const payloads: string[] = [];
  for (let d = 0; d < datagrams; d++) {
    const lines: string[] = [];
    for (let l = 0; l < 20; l++) {
      const name = `batch.n${(d * 20 + l) % names}`;
      const v = (d % 7) + 1;
      lines.push(`${name}:${v}|c`);
      expected.set(name, (expected.get(name) ?? 0) + v);
    }
    payloads.push(lines.join('\n'));
  }
  // Bursts the loop cannot keep up with one by one (the sends run before the next poll phase).
  for (let i = 0; i < datagrams; i += 400) await Promise.all(payloads.slice(i, i + 400).map((p) => s.send(p)));
  await waitFor(() => s.stats.packets + kernelDrops(s.port) >= datagrams, 'every datagram');
  t.equal(kernelDrops(s.port), 0, 'the kernel dropped nothing (else this machine was too busy for the burst)');
  t.equal(s.stats.packets, datagrams);
  t.equal(s.stats.parsed, datagrams * 20);
  t.equal(s.stats.bad, 0);
  const got = new Map(s.agg.closeWindow().series.map((x) => [x.metric, x.value]));
  t.same(got, expected, 'every name has its exact total: no slot was read twice, skipped or overwritten while parsed');
  const rs = readerStats(s.fe);
  t.equal(rs.datagrams, datagrams);
  t.ok(rs.batches < datagrams, `several datagrams per recvmmsg (${rs.datagrams} in ${rs.batches} batches)`);
  t.ok(rs.datagrams / rs.batches <= BATCH_DATAGRAMS);
});

t.test('a truncated datagram in the middle of a batch is counted and cut; its neighbours are intact', { skip: needsAddon }, async (t) => {
  const max = 64;
  const s = await setup(t, { maxDatagramBytes: max });
  const long = Array.from({ length: 12 }, (_, i) => `long.l${i}:1|c`).join('\n'); // about 160 bytes
  t.ok(long.length > max);
  await Promise.all([s.send('before:1|c'), s.send(long), s.send('after:2|c'), s.send(long), s.send('last:3|c')]);
  await waitFor(() => s.stats.packets === 5, 'five packets');
  t.equal(s.stats.dropped('truncated'), 2);
  const kept = long.slice(0, long.lastIndexOf('\n', max - 1));
  t.equal(s.stats.bytes, 'before:1|c'.length + 'after:2|c'.length + 'last:3|c'.length + 2 * kept.length, 'cut back to the last newline within maxDatagramBytes');
  const got = Object.fromEntries(s.agg.closeWindow().series.map((x) => [x.metric, x.value]));
  const keptNames = kept.split('\n').map((l) => l.slice(0, l.indexOf(':')));
  t.same(got, { before: 1, after: 2, last: 3, ...Object.fromEntries(keptNames.map((n) => [n, 2])) });
  const warn = s.lines.find((l) => l.code === 'MD_ERR_FRONTEND_TRUNCATED');
  t.equal(warn?.bytes, long.length, 'the real length is reported, not the slot size');
});

t.test('an empty datagram is a packet of 0 bytes', { skip: needsAddon }, async (t) => {
  const s = await setup(t);
  await s.send(Buffer.alloc(0));
  await s.send('after.empty:1|c');
  await waitFor(() => s.stats.packets === 2, 'two packets');
  t.equal(s.stats.bytes, 'after.empty:1|c'.length);
  t.equal(s.stats.bad, 0);
  t.same(
    s.agg.closeWindow().series.map((x) => [x.metric, x.value]),
    [['after.empty', 1]],
  );
});

t.test('a target that throws loses only that datagram of the batch; reading goes on', { skip: needsAddon }, async (t) => {
  const got: string[] = [];
  const { logger, lines } = captureLogger();
  const context = udpContext(logger);
  const target: IngestTarget = {
    statsd(buf: Buffer, start = 0, end = buf.length) {
      context.stats.packets++;
      const text = buf.toString('utf8', start, end);
      if (text.startsWith('boom')) throw new Error('parser bug');
      got.push(text);
    },
    statsdLine: () => undefined,
    addSample: () => 'accepted',
    windowStartMs: 0,
  };
  const fe = new UdpFrontend({ port: 0, reader: 'batch' }, { target, context });
  await fe.start();
  const client = createSocket('udp4');
  t.teardown(async () => {
    client.close();
    await fe.close();
  });
  const port = portOf(fe);
  await Promise.all(Array.from({ length: 100 }, (_, i) => send(client, i % 10 === 0 ? `boom ${i}` : `ok ${i}`, port)));
  await waitFor(() => context.stats.packets === 100, '100 packets');
  t.equal(got.length, 90);
  t.equal(context.stats.dropped('internal_error'), 10);
  t.equal(lines.filter((l) => l.level === 50).length, 1, 'rate-limited: one error line');
  await send(client, 'later', port);
  await waitFor(() => got.includes('later'), 'a datagram after the failures');
});

t.test('reader dgram: the addon is never loaded, node:dgram reads', async (t) => {
  const { logger, lines } = captureLogger();
  const context = udpContext(logger);
  const seen: string[] = [];
  const target: IngestTarget = { statsd: (buf, start = 0, end = buf.length) => void seen.push(buf.toString('utf8', start, end)), statsdLine: () => undefined, addSample: () => 'accepted', windowStartMs: 0 };
  const fe = new UdpFrontend({ port: 0, reader: 'dgram', readerAddonPath: '/nonexistent/udp_batch.node' }, { target, context });
  await fe.start();
  const client = createSocket('udp4');
  t.teardown(async () => {
    client.close();
    await fe.close();
  });
  t.equal(fe.reader, 'dgram');
  t.notOk(lines.some((l) => /batch reader/.test(l.msg)), 'no fallback line: dgram was asked for');
  await send(client, 'via.dgram:1|c', portOf(fe));
  await waitFor(() => seen.length === 1, 'one datagram');
  t.same(seen, ['via.dgram:1|c']);
});

t.test('a missing addon: auto falls back to dgram with one info line saying why; batch fails start-up and frees the port', async (t) => {
  const missing = '/nonexistent/udp_batch.node';
  const { logger, lines } = captureLogger();
  const agg = new Aggregator({ hostname: 'h', selfMetrics: false, countersAs: 'count' });
  t.teardown(() => agg.close());
  const context = udpContext(logger, agg.stats);
  const auto = new UdpFrontend({ port: 0, readerAddonPath: missing }, { target: agg.target(context), context });
  await auto.start();
  t.equal(auto.reader, 'dgram');
  const info = lines.filter((l) => l.msg === 'StatsD UDP batch reader unavailable; reading with node:dgram.');
  t.equal(info.length, 1);
  t.equal(info[0]?.level, 30, 'at info');
  t.match(info[0]?.why, /could not load \/nonexistent\/udp_batch\.node/);
  t.match(lines.find((l) => l.msg === 'StatsD UDP listening.'), { reader: 'dgram' });
  const client = createSocket('udp4');
  t.teardown(() => client.close());
  await send(client, 'fallback:4|c', portOf(auto));
  await waitFor(() => context.stats.packets === 1, 'one packet through the fallback');
  const port = portOf(auto);
  await auto.close();

  const forced = new UdpFrontend({ port, reader: 'batch', readerAddonPath: missing }, { target: agg.target(context), context });
  await t.rejects(forced.start(), { code: 'MD_ERR_FRONTEND_READER', message: /could not load/ });
  t.same(forced.addresses(), []);
  // The socket the failed start bound is closed: the same port binds again.
  const again = new UdpFrontend({ port, reader: 'dgram' }, { target: agg.target(context), context });
  await again.start();
  t.equal(portOf(again), port);
  await again.close();
});

t.test('a file that is not an addon: auto falls back, naming the load error', async (t) => {
  const dir = t.testdir({});
  const bogus = join(dir, 'udp_batch.node');
  writeFileSync(bogus, 'not an ELF file\n');
  const { logger, lines } = captureLogger();
  const context = udpContext(logger);
  const fe = new UdpFrontend({ port: 0, readerAddonPath: bogus }, { target: { statsd: () => undefined, statsdLine: () => undefined, addSample: () => 'accepted', windowStartMs: 0 }, context });
  await fe.start();
  t.teardown(() => fe.close());
  t.equal(fe.reader, 'dgram');
  t.match(lines.find((l) => l.msg === 'StatsD UDP batch reader unavailable; reading with node:dgram.'), { why: /could not load .*udp_batch\.node/ });
});

t.test('an unknown reader is rejected at construction', async (t) => {
  const deps = { target: { statsd: () => undefined, statsdLine: () => undefined, addSample: () => 'accepted' as const, windowStartMs: 0 }, context: udpContext(captureLogger().logger) };
  t.throws(() => new UdpFrontend({ reader: 'fast' as never }, deps), { code: 'MD_ERR_CONFIG_INVALID', message: /reader must be auto, batch or dgram/ });
});

t.test('taking the descriptor from node:dgram raises no deprecation warning', { skip: needsAddon }, async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => void warnings.push(w);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const s = await setup(t);
  t.equal(s.fe.reader, 'batch');
  await new Promise((r) => setImmediate(r));
  t.same(
    warnings.map((w) => w.message),
    [],
  );
});

const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));

t.test('a process that closes its batch-reading front-end exits by itself: no handle is left behind', { skip: needsAddon }, async (t) => {
  // A child on the built package: the loop only ends if the addon really released its poll handle.
  const script = `
    import { UdpFrontend } from ${JSON.stringify(built)};
    import { componentContext, createRootLogger, StatsRegistry } from '@metrics-distributor/core';
    import { createSocket } from 'node:dgram';
    const context = componentContext({ logger: createRootLogger({ level: 'silent' }), stats: new StatsRegistry() }, 'statsd-udp');
    let n = 0;
    const fe = new UdpFrontend({ port: 0, reader: 'batch', closeDrainMs: 100 }, { target: { statsd: () => void n++, statsdLine() {}, addSample: () => 'accepted', windowStartMs: 0 }, context });
    await fe.start();
    const port = Number(fe.addresses()[0].split(':').at(-1));
    const c = createSocket('udp4');
    await new Promise((r) => c.send('x:1|c', port, '127.0.0.1', r));
    c.close();
    while (n === 0) await new Promise((r) => setTimeout(r, 5));
    await fe.close();
    process.stdout.write(fe.reader === undefined ? 'closed ' + n : 'still ' + fe.reader);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  t.equal(signal, null, 'not killed after 10 s: the loop ended');
  t.equal(code, 0);
  t.equal(out, 'closed 1');
});
