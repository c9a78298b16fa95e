import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aggregator, StatsRegistry, componentContext, createRootLogger, type IngestTarget, type Logger } from '@metrics-distributor/core';
import { UdpFrontend, dropsFor, procLocalAddress } from '../src/index.js';

const KERNEL_DROP_REASON = 'kernel_rcvbuf';

const onLinux = existsSync('/proc/net/udp');

function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createRootLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
  return { logger, lines };
}

const TABLE = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:1FBD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 111 2 0000000000000000 17
  124: 00000000:1FBD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 112 2 0000000000000000 5
  125: 0100007F:1FBE 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 113 2 0000000000000000 99
`;

t.test('reads the drops column of the socket bound to an address and port', async (t) => {
  t.equal(procLocalAddress('127.0.0.1', 8125), '0100007F:1FBD');
  t.equal(procLocalAddress('0.0.0.0', 8125), '00000000:1FBD');
  t.equal(procLocalAddress('::1', 8125), undefined, 'IPv6 is matched by port instead');
  t.equal(dropsFor(TABLE, '0100007F:1FBD'), 17, 'only 127.0.0.1:8125');
  t.equal(dropsFor(TABLE, '00000000:1FBD'), 5);
  t.equal(dropsFor(TABLE, ':1FBD'), 22, 'by port: every address on 8125');
  t.equal(dropsFor(TABLE, '0100007F:0001'), 0, 'no such socket');
  t.equal(dropsFor('garbage\n\n', ':1FBD'), 0);
});

/** Blocks this thread, so the socket's receive queue fills, until a child process says it has sent all. */
function blockUntil(file: string, maxMs: number): void {
  const until = Date.now() + maxMs;
  while (!existsSync(file) && Date.now() < until);
}

t.test('datagrams the kernel drops on a full receive buffer are counted as dropped{reason:kernel_rcvbuf} and logged', { skip: onLinux ? false : 'needs /proc/net/udp' }, async (t) => {
  const agg = new Aggregator({ hostname: 'h', selfMetrics: false, flushIntervalMs: 10_000 });
  const { logger, lines } = captureLogger();
  const context = componentContext({ logger, stats: agg.stats }, 'statsd-udp');
  // The smallest buffer the kernel allows, read every 50 ms.
  const fe = new UdpFrontend({ host: '127.0.0.1', port: 0, recvBufferBytes: 1, kernelDropsPollMs: 50 }, { target: agg.target(context), context });
  await fe.start();
  t.teardown(async () => {
    await fe.close();
    await agg.close();
  });
  const addr = fe.addresses()[0]!;
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  const local = procLocalAddress('127.0.0.1', port)!;
  t.equal(context.stats.dropped(KERNEL_DROP_REASON), 0, 'nothing dropped before any traffic');
  const done = join(mkdtempSync(join(tmpdir(), 'md-udp-')), 'sent');
  const sender = spawn(process.execPath, [
    '-e',
    `const s = require('node:dgram').createSocket('udp4'); const m = Buffer.from('k.drop:1|c'); let n = 0;
     const go = () => { for (let i = 0; i < 200; i++) s.send(m, ${port}, '127.0.0.1'); if (++n < 20) setImmediate(go); else setTimeout(() => s.close(() => require('node:fs').writeFileSync(${JSON.stringify(done)}, '')), 50); };
     go();`,
  ]);
  const exited = new Promise((r) => sender.on('exit', r));
  blockUntil(done, 10_000);
  await exited;
  const kernel = dropsFor(readFileSync('/proc/net/udp', 'utf8'), local);
  t.ok(kernel > 0, `the kernel dropped ${kernel} datagrams while the loop was blocked`);
  const deadline = Date.now() + 3000;
  while (context.stats.dropped(KERNEL_DROP_REASON) < kernel && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(context.stats.dropped(KERNEL_DROP_REASON), kernel, 'the self-metric equals the kernel counter of this socket');
  t.ok(
    lines.some((l) => l['code'] === 'MD_ERR_FRONTEND_KERNEL_DROPS' && l['level'] === 40),
    'a warning names the drops',
  );
  t.equal(lines.filter((l) => l['code'] === 'MD_ERR_FRONTEND_KERNEL_DROPS').length, 1, 'logged once (rate-limited)');
});

t.test('kernelDropsPollMs: 0 turns the watch off; a negative value is rejected', async (t) => {
  const context = componentContext({ logger: captureLogger().logger, stats: new StatsRegistry() }, 'statsd-udp');
  const target: IngestTarget = { statsd: () => undefined, statsdLine: () => undefined, addSample: () => 'accepted', windowStartMs: 0 };
  t.throws(() => new UdpFrontend({ kernelDropsPollMs: -1 }, { target, context }), /kernelDropsPollMs/);
  const fe = new UdpFrontend({ host: '127.0.0.1', port: 0, kernelDropsPollMs: 0 }, { target, context });
  await fe.start();
  await fe.close();
  t.equal(context.stats.dropped(KERNEL_DROP_REASON), 0);
});
