/**
 * Every drop path increments its counter, end to end: each reason found by `grep "drop('" / ".drop("`
 * in packages/*\/src that can be triggered from outside is triggered through the real CLI, and the
 * `metrics_distributor.dropped{component,reason}` (or `.bad`) self-metric it prints must show it.
 * Reasons that cannot be triggered from outside (bugs, races) are listed in docs/RELIABILITY.md with the
 * package test that covers them.
 */
import { createHmac } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import {
  consoleTotal,
  eventually,
  httpRequest,
  killOnTeardown,
  sendUdp,
  sleep,
  startCli,
  tcpConnect,
  tcpWrite,
  udpSocketDrops,
  waitForPhase,
  windowOf,
  type Child,
} from './helpers.js';
import { datadogArgs, startStandIn, total, type V2Series } from './stand-in-datadog.js';

const INTERVAL_MS = 1000;
const dropped = (cli: Child, component: string, reason: string) => consoleTotal(cli.lines, 'metrics_distributor.dropped', [`component:${component}`, `reason:${reason}`]);
const logged = (cli: Child, re: RegExp) => cli.logs().some((l) => typeof l['msg'] === 'string' && re.test(l['msg']));

/** Waits until the console has printed a window that closed after now, so every count so far is out. */
async function nextWindows(cli: Child, n = 2): Promise<void> {
  const after = windowOf(Date.now(), INTERVAL_MS) + (n - 1) * INTERVAL_MS;
  await eventually(() => cli.lines.some((l) => (l.timestamp ?? 0) * 1000 >= after), 10_000, () => `console window ${after}`);
}

t.test('front-end and aggregator drop paths', async (t) => {
  const cli = startCli([
    '--flush-interval', `${INTERVAL_MS}ms`, '--sink', 'console',
    '--statsd-udp-max-datagram-bytes', '100',
    '--statsd-tcp-max-line-bytes', '50',
    '--statsd-tcp-max-connections', '3',
    '--statsd-tcp-idle-timeout', '400ms',
    '--http-auth', 'u:p', '--http-max-body-bytes', '20000', '--vercel-secret', 'vs',
  ]);
  killOnTeardown(t, cli);
  await cli.listening;
  const { udp, tcp, http } = cli.ports;
  const auth = { authorization: `Basic ${Buffer.from('u:p').toString('base64')}`, 'content-type': 'text/plain' };

  // statsd-udp: truncated (the cut-off line is not parsed), bad lines; aggregator: non_finite, timestamped_type.
  await sendUdp(udp, [
    `dp.ok:1|c\n${'dp.long:1|c|#' + 'x'.repeat(120)}`,
    'dp.bad:1|zz\nnot a line\ndp.ok:1|c',
    'dp.inf:inf|g\ndp.nan:nan|g',
    'dp.ts:1|h|T1700000000',
  ]);

  // statsd-tcp: line_too_long, bad, partial_line (reset mid-line), max_connections, idle_timeout.
  const c1 = await tcpConnect(tcp);
  await tcpWrite(c1, `dp.tcp:1|c\n${'dp.tcplong:1|c|#' + 'y'.repeat(60)}\ndp.tcp:1|c\nbad tcp line\n`);
  const c2 = await tcpConnect(tcp);
  await tcpWrite(c2, 'dp.tcp:1|c\ndp.part:1');
  await sleep(100);
  c2.resetAndDestroy();
  c1.on('error', () => undefined);
  c1.destroy();
  await sleep(100);
  const held = await Promise.all([tcpConnect(tcp), tcpConnect(tcp), tcpConnect(tcp)]);
  for (const h of held) h.on('error', () => undefined);
  const refused = await tcpConnect(tcp);
  refused.on('error', () => undefined);
  await new Promise<void>((resolve) => refused.once('close', () => resolve()));
  // The held ones now idle out after 400 ms.

  // http: unauthorized, body_too_large (Content-Length and decompressed), bad_encoding,
  // unsupported_encoding, bad_signature, duplicate, bad_value, bad_name, frame_too_large, client_aborted;
  // bad lines (a bad logplex frame, bad NDJSON) count as `bad`; http-statsd: bad.
  t.equal((await httpRequest(http, '/logs', 'count#dp.h=1\n')).status, 401, 'no credentials: 401');
  t.equal((await httpRequest(http, '/logs', 'count#dp.h=1\n', { ...auth, authorization: 'Basic eDp5' })).status, 401, 'wrong credentials: 401');
  t.equal((await httpRequest(http, '/logs', 'x'.repeat(30_000), auth)).status, 413, 'over the body limit: 413');
  t.equal((await httpRequest(http, '/logs', gzipSync('count#dp.h=1\n'.repeat(3000)), { ...auth, 'content-encoding': 'gzip' })).status, 413, 'over the limit once inflated: 413');
  t.equal((await httpRequest(http, '/logs', Buffer.from('not gzip at all'), { ...auth, 'content-encoding': 'gzip' })).status, 400, 'bad gzip: 400');
  t.equal((await httpRequest(http, '/logs', 'count#dp.h=1\n', { ...auth, 'content-encoding': 'br' })).status, 415, 'unsupported encoding: 415');
  t.equal((await httpRequest(http, '/logs', 'count#dp.h=1\n', { 'content-type': 'application/json', 'x-vercel-signature': 'bad' })).status, 403, 'bad Vercel signature: 403');
  const good = '[{"message":"count#dp.vercel=1"}]';
  t.equal((await httpRequest(http, '/logs', good, { 'content-type': 'application/json', 'x-vercel-signature': createHmac('sha1', 'vs').update(good).digest('hex') })).status, 200, 'good Vercel signature: 200');
  const frame = { ...auth, 'logplex-frame-id': 'f-1', 'logplex-drain-token': 'd.1' };
  t.equal((await httpRequest(http, '/logs', 'count#dp.h=1\n', frame)).status, 200);
  t.equal((await httpRequest(http, '/logs', 'count#dp.h=1\n', frame)).status, 200, 'a duplicate frame is acknowledged');
  t.equal((await httpRequest(http, '/logs', `count#dp.h=1 count#dp.v=1,000 sample#${'n'.repeat(201)}=1\n`, auth)).status, 200, 'bad values and names: 200');
  t.equal((await httpRequest(http, '/logs', '5 <13>1 x\n', { ...auth, 'content-type': 'application/logplex-1' })).status, 200, 'bad logplex frame: 200');
  t.equal((await httpRequest(http, '/logs', '{"message":"count#dp.h=1"}\n{not json\n', { ...auth, 'content-type': 'application/x-ndjson' })).status, 200, 'bad NDJSON line: 200');
  t.equal((await httpRequest(http, '/statsd', 'dp.hs:1|c\ndp.hs:x|c\n', auth)).status, 200, 'bad StatsD over HTTP: 200');
  t.equal((await httpRequest(http, '/logs', `count#dp.h=1 ${'f'.repeat(11_000)}\n`, auth)).status, 200, 'a line over 10 KiB (logplex frame limit): 200');
  // client_aborted: a body shorter than its Content-Length, then the client goes away.
  await new Promise<void>((resolve) => {
    const req = request({ host: '127.0.0.1', port: http, method: 'POST', path: '/logs', headers: { ...auth, 'content-length': '1000' } });
    req.on('error', () => resolve());
    req.write('count#dp.h=1\n');
    setTimeout(() => {
      req.destroy();
      resolve();
    }, 100);
  });

  await sleep(600); // idle timeouts
  for (const h of held) h.destroy();
  await nextWindows(cli);

  const expect: [string, string, number][] = [
    ['statsd-udp', 'truncated', 1],
    ['aggregator', 'non_finite', 2],
    ['aggregator', 'timestamped_type', 1],
    ['statsd-tcp', 'line_too_long', 1],
    ['statsd-tcp', 'partial_line', 1],
    ['statsd-tcp', 'max_connections', 1],
    ['statsd-tcp', 'idle_timeout', 3],
    ['http', 'unauthorized', 2],
    ['http', 'body_too_large', 2],
    ['http', 'bad_encoding', 1],
    ['http', 'unsupported_encoding', 1],
    ['http', 'bad_signature', 1],
    ['http', 'duplicate', 1],
    ['http', 'bad_value', 1],
    ['http', 'bad_name', 1],
    ['http', 'frame_too_large', 1],
    ['http', 'client_aborted', 1],
  ];
  for (const [component, reason, n] of expect) t.equal(dropped(cli, component, reason), n, `dropped{component:${component},reason:${reason}} = ${n}`);
  t.equal(consoleTotal(cli.lines, 'metrics_distributor.bad', ['component:statsd-udp']), 2, 'bad{statsd-udp} = 2');
  t.equal(consoleTotal(cli.lines, 'metrics_distributor.bad', ['component:statsd-tcp']), 1, 'bad{statsd-tcp} = 1');
  t.equal(consoleTotal(cli.lines, 'metrics_distributor.bad', ['component:http-statsd']), 1, 'bad{http-statsd} = 1');
  t.equal(consoleTotal(cli.lines, 'metrics_distributor.bad', ['component:http']), 2, 'bad{http} = 2 (a bad logplex frame, a bad NDJSON line)');
  // Good lines around the bad ones were counted.
  t.equal(consoleTotal(cli.lines, 'dp.ok'), 2, 'good UDP lines next to bad ones counted');
  t.equal(consoleTotal(cli.lines, 'dp.tcp'), 3, 'good TCP lines next to bad ones counted');
  t.equal(consoleTotal(cli.lines, 'dp.h'), 3, 'good HTTP lines counted once (the duplicate frame is not)');
  t.equal(consoleTotal(cli.lines, 'dp.hs'), 1, 'good StatsD-over-HTTP line counted');
  t.equal(consoleTotal(cli.lines, 'dp.vercel'), 1, 'signed Vercel body counted');
  // Each kind of loss is logged too (rate-limited).
  t.ok(logged(cli, /maxDatagramBytes/), 'truncation logged');
  t.ok(logged(cli, /maxLineBytes/), 'long line logged');
  t.ok(logged(cli, /maxConnections/), 'refused connection logged');
  t.ok(logged(cli, /Bad StatsD lines/), 'bad lines logged');
  t.ok(logged(cli, /Dropped samples/), 'aggregator drops logged');
  t.same(await cli.stop(), { code: 0, signal: null });
});

t.test('max_contexts (--max-contexts 10) and max_events: dropped, and the drops are still reported', async (t) => {
  const cli = startCli(['--flush-interval', `${INTERVAL_MS}ms`, '--sink', 'console', '--max-contexts', '10']);
  killOnTeardown(t, cli);
  await cli.listening;
  await sendUdp(cli.ports.udp, [Array.from({ length: 30 }, (_, i) => `dp.card${i}:1|c`).join('\n')]);
  // max_events: 10,000 events and service checks per window at most; 10,005 sent early in one window.
  await waitForPhase(INTERVAL_MS, 50);
  const conn = await tcpConnect(cli.ports.tcp);
  await tcpWrite(conn, '_e{1,1}:a|b\n'.repeat(10_000) + '_sc|dp.check|0\n'.repeat(5));
  conn.end();
  await nextWindows(cli, 3);
  t.equal(dropped(cli, 'aggregator', 'max_events'), 5, 'dropped{reason:max_events} = 5');
  const names = new Set(cli.lines.filter((l) => l.metric?.startsWith('dp.card')).map((l) => l.metric));
  t.ok(names.size <= 10, `at most 10 contexts kept (${names.size})`);
  const reported = dropped(cli, 'aggregator', 'max_contexts');
  t.ok(reported >= 20, `dropped{reason:max_contexts} reported (${reported})`);
  // Self-metrics must get through even when the context table is full of user metrics.
  t.ok(cli.lines.some((l) => l.metric === 'metrics_distributor.contexts'), 'the contexts gauge is reported');
  t.ok(logged(cli, /Dropped samples/), 'logged');
  t.same(await cli.stop(), { code: 0, signal: null });
});

t.test('Datadog drop paths: bad_request, retry_buffer_full, queue_full, shutdown_unsent, shutdown', async (t) => {
  t.jobs = 3;
  t.test('400: the payload is dropped and counted as bad_request', async (t) => {
    // Only the first payload holding dp.bad400 is refused (the counter is zero-filled in later windows).
    let refused = false;
    const dd = await startStandIn((r) => {
      if (refused || (r.json as { series?: V2Series[] } | undefined)?.series?.some((s) => s.metric === 'dp.bad400') !== true) return undefined;
      refused = true;
      return { status: 400, body: '{"errors":["bad"]}' };
    });
    t.teardown(() => dd.close());
    const cli = startCli(['--flush-interval', `${INTERVAL_MS}ms`, '--sink', 'console', ...datadogArgs(dd)]);
    killOnTeardown(t, cli);
    await cli.listening;
    await sendUdp(cli.ports.udp, ['dp.bad400:1|c']);
    const items = () => dd.requests.filter((r) => r.status === 400).reduce((n, r) => n + (r.json as { series: unknown[] }).series.length, 0);
    await eventually(() => items() > 0, 5000, () => 'a 400');
    await nextWindows(cli);
    t.equal(dropped(cli, 'sink-datadog', 'bad_request'), items(), `dropped{reason:bad_request} = ${items()} items refused`);
    t.ok(logged(cli, /400 Bad Request/), 'logged');
    t.same(await cli.stop(), { code: 0, signal: null });
  });

  t.test('retry buffer full, then shutdown with payloads unsent', async (t) => {
    const dd = await startStandIn(() => ({ status: 503 }));
    t.teardown(() => dd.close());
    const cli = startCli([
      '--flush-interval', `${INTERVAL_MS}ms`, '--sink', 'console', ...datadogArgs(dd),
      '--datadog-retry-buffer-bytes', '12000', '--datadog-retry-base', '50ms', '--datadog-retry-max', '100ms', '--shutdown-timeout', '500ms',
    ]);
    killOnTeardown(t, cli);
    await cli.listening;
    for (let i = 0; i < 4; i++) {
      await sendUdp(cli.ports.udp, [Array.from({ length: 20 }, (_, j) => `dp.rb${j}:1|c`).join('\n')]);
      await sleep(INTERVAL_MS);
    }
    await nextWindows(cli);
    t.ok(dropped(cli, 'sink-datadog', 'retry_buffer_full') > 0, `dropped{reason:retry_buffer_full} = ${dropped(cli, 'sink-datadog', 'retry_buffer_full')}`);
    t.ok(consoleTotal(cli.lines, 'metrics_distributor.failed', ['component:sink-datadog-retry']) > 0, 'failed{sink-datadog-retry}: payloads evicted');
    t.ok(logged(cli, /retry buffer full/), 'logged');
    t.same(await cli.stop(), { code: 0, signal: null });
    // After the last window nothing can report a self-metric: the loss at the deadline is logged.
    t.ok(logged(cli, /shutdown deadline passed with \d+ item\(s\) undelivered/), `the payloads unsent at the shutdown deadline are logged (shutdown_unsent)\n${cli.stderr().split('\n').slice(-6).join('\n')}`);
  });

  t.test('queue_full (--sink-queue-max-batches 1, hanging Datadog), then shutdown drops the queued windows', async (t) => {
    const dd = await startStandIn((r) => (r.method === 'POST' ? { hang: true } : undefined));
    t.teardown(() => dd.close());
    const cli = startCli([
      '--flush-interval', `${INTERVAL_MS}ms`, '--sink', 'console', ...datadogArgs(dd),
      '--sink-queue-max-batches', '1', '--datadog-timeout', '30s', '--shutdown-timeout', '500ms',
    ]);
    killOnTeardown(t, cli);
    await cli.listening;
    await sendUdp(cli.ports.udp, ['dp.q:1|c']);
    await eventually(() => dropped(cli, 'sink-datadog', 'queue_full') >= 2, 8000, () => 'queue_full drops');
    t.ok(dropped(cli, 'sink-datadog', 'queue_full') >= 2, 'dropped{component:sink-datadog,reason:queue_full} counted each window');
    t.ok(logged(cli, /Sink queue full/), 'logged');
    // The console sink is unaffected: its windows keep coming.
    t.ok(cli.lines.filter((l) => l.metric === 'metrics_distributor.contexts').length >= 3, 'windows keep flushing to the other sink');
    t.same(await cli.stop(), { code: 0, signal: null });
    t.ok(logged(cli, /Shutdown deadline passed/), 'windows still queued at the deadline: dropped{reason:shutdown}, logged');
  });
});

t.test('the drop counters reach Datadog too', async (t) => {
  const dd = await startStandIn();
  t.teardown(() => dd.close());
  const cli = startCli(['--flush-interval', `${INTERVAL_MS}ms`, ...datadogArgs(dd), '--statsd-udp-max-datagram-bytes', '50']);
  killOnTeardown(t, cli);
  await cli.listening;
  await sendUdp(cli.ports.udp, [`dp.x:1|c\n${'z'.repeat(80)}`, 'bad line']);
  await eventually(() => total(dd.series(), 'metrics_distributor.dropped', ['component:statsd-udp', 'reason:truncated']) === 1, 5000, () => 'truncated at the stand-in');
  await eventually(() => total(dd.series(), 'metrics_distributor.bad', ['component:statsd-udp']) === 1, 5000, () => 'bad at the stand-in');
  t.pass('dropped{truncated} and bad reached the stand-in');
  t.same(await cli.stop(), { code: 0, signal: null });
});

/** This process's descendants (UDP workers), from /proc/<pid>/task/<tid>/children. */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(' ')) if (c !== '') out.push(Number(c));
  }
  return out;
}

for (const workers of [1, 2]) {
  t.test(`kernel drops on a full receive buffer: dropped{statsd-udp,kernel_rcvbuf} equals the kernel's count for the socket, once (--workers ${workers})`, { skip: existsSync('/proc/net/udp') ? false : 'needs /proc/net/udp' }, async (t) => {
    const cli = startCli(['--flush-interval', `${INTERVAL_MS}ms`, '--sink', 'console', '--workers', String(workers), '--statsd-udp-recv-buffer-bytes', '1', '--statsd-udp-kernel-drops-poll', '200ms']);
    killOnTeardown(t, cli);
    await cli.listening;
    const pid = cli.proc.pid!;
    const stopped = [pid, ...childPids(pid)];
    t.equal(stopped.length, workers === 1 ? 1 : 1 + workers, `${stopped.length} process(es) to pause`);
    // Paused, the server reads nothing: the kernel queue fills and the rest is dropped at the socket.
    for (const p of stopped) process.kill(p, 'SIGSTOP');
    try {
      await sendUdp(cli.ports.udp, Array.from({ length: 3000 }, () => 'dp.kernel:1|c'));
    } finally {
      for (const p of stopped) process.kill(p, 'SIGCONT');
    }
    const kernel = udpSocketDrops(cli.ports.udp);
    t.ok(kernel > 0, `the kernel dropped ${kernel} of 3000 datagrams`);
    await eventually(() => dropped(cli, 'statsd-udp', 'kernel_rcvbuf') >= kernel, 10_000, () => `kernel_rcvbuf ${dropped(cli, 'statsd-udp', 'kernel_rcvbuf')} of ${kernel}`);
    await nextWindows(cli);
    t.equal(dropped(cli, 'statsd-udp', 'kernel_rcvbuf'), kernel, 'counted exactly once');
    t.equal(consoleTotal(cli.lines, 'dp.kernel') + kernel, 3000, 'every datagram either counted as a line or as a kernel drop');
    t.ok(cli.logs().some((l) => l['code'] === 'MD_ERR_FRONTEND_KERNEL_DROPS'), 'and logged');
    t.same(await cli.stop(), { code: 0, signal: null });
  });
}
