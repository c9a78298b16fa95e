/**
 * Sink faults. The stand-in Datadog answers 500 for a while, hangs, resets connections, or answers 403
 * and 413, while UDP traffic keeps coming. In every case:
 *  - windows keep closing on time (read from a second sink, the console, which no Datadog fault touches);
 *  - the kernel drops no datagram;
 *  - after a retryable fault everything sent arrives exactly once (deduplicated by metric + timestamp +
 *    host + tags, and the counts add up);
 *  - every loss is counted (`metrics_distributor.dropped` / `failed`, as printed by the console sink)
 *    and logged once per rate-limit period (stderr).
 *
 * The 60 s of 500s is scaled down: `--datadog-retry-base 100ms --datadog-retry-max 400ms` and a
 * 3 s outage walk through the same backoff states in less time (see docs/RELIABILITY.md).
 */
import t, { type Test } from 'tap';
import { consoleTotal, eventually, killOnTeardown, sleep, startCli, UdpSender, udpSocketDrops, waitForPhase, windowOf, type Child } from './helpers.js';
import { datadogArgs, duplicates, startStandIn, total, type Received, type Reply, type StandIn, type V2Series } from './stand-in-datadog.js';

const INTERVAL_MS = 1000;
// Each case has its own server and stand-in: run three at a time to keep the wall time short.
t.jobs = 3;
const FAST_RETRY = ['--datadog-retry-base', '100ms', '--datadog-retry-max', '400ms', '--datadog-timeout', '1s'];

interface FaultRun {
  dd: StandIn;
  cli: Child;
  sent: number;
  faultFrom: number;
  faultTo: number;
  lastSend: number;
  udpDrops: number;
}

/**
 * Starts the stand-in and the CLI (console + datadog sinks), sends `sf.c:1|c` over UDP for one window,
 * `faultMs` of fault (the stand-in answers POSTs with `fault(req)`), and one more window.
 */
async function withFault(t: Test, faultMs: number, fault: (r: Received) => Reply | undefined, extra: string[] = []): Promise<FaultRun> {
  let faulty = false;
  const dd = await startStandIn((r) => (faulty && r.method === 'POST' ? fault(r) : undefined));
  t.teardown(() => dd.close());
  const cli = startCli(['--flush-interval', `${INTERVAL_MS}ms`, '--sink', 'console', ...datadogArgs(dd), ...FAST_RETRY, ...extra]);
  killOnTeardown(t, cli);
  await cli.listening;
  const drops0 = udpSocketDrops(cli.ports.udp);
  const sender = new UdpSender(cli.ports.udp);
  await waitForPhase(INTERVAL_MS, 100);
  const start = Date.now();
  const faultFrom = start + INTERVAL_MS;
  const faultTo = faultFrom + faultMs;
  const end = faultTo + INTERVAL_MS;
  let sent = 0;
  while (Date.now() < end) {
    const now = Date.now();
    faulty = now >= faultFrom && now < faultTo;
    await sender.send(Array.from({ length: 10 }, (_, i) => `sf.c:1|c|#i:${i % 2}`).join('\n'));
    sent += 10;
    await sleep(20);
  }
  faulty = false;
  sender.close();
  const lastSend = Date.now();
  // Wait for the console's window after the last send: by then the server has closed every window of the run.
  const settled = windowOf(lastSend, INTERVAL_MS) + INTERVAL_MS;
  await eventually(() => cli.lines.some((l) => (l.timestamp ?? 0) * 1000 >= settled), 10_000, () => 'the console window after the run');
  return { dd, cli, sent, faultFrom, faultTo, lastSend, udpDrops: udpSocketDrops(cli.ports.udp) - drops0 };
}

/** The checks every fault shares: windows on time and no UDP loss, while the fault lasted. */
function onTimeAndNoUdpLoss(t: Test, run: FaultRun): void {
  t.equal(run.udpDrops, 0, 'UDP loss 0 on the server socket');
  // Every window closed during the run reached the console sink on time, whatever Datadog did.
  const windows = new Map<number, number>();
  for (const l of run.cli.lines) {
    if (l.metric !== 'sf.c' || l.timestamp === undefined || l._at === undefined) continue;
    windows.set(l.timestamp * 1000, Math.min(windows.get(l.timestamp * 1000) ?? Infinity, l._at));
  }
  const late = [...windows].map(([w, at]) => at - (w + INTERVAL_MS));
  t.ok(windows.size >= Math.floor((run.lastSend - run.faultFrom) / INTERVAL_MS), `a window every second (${windows.size})`);
  t.ok(Math.max(...late) < 500, `windows flushed on time during the fault (latest ${Math.max(...late)} ms after its boundary)`);
  // Counted by the server itself, across all windows: the console has them all.
  t.equal(consoleTotal(run.cli.lines, 'sf.c'), run.sent, 'the console sink saw every UDP line');
}

const logsMatching = (cli: Child, re: RegExp) => cli.logs().filter((l) => typeof l['msg'] === 'string' && re.test(l['msg']));

/** After a retryable fault, every point reaches the stand-in exactly once. */
async function allArriveOnce(t: Test, run: FaultRun): Promise<V2Series[]> {
  await eventually(() => total(run.dd.series(), 'sf.c') >= run.sent, 15_000, () => `${total(run.dd.series(), 'sf.c')} of ${run.sent} at the stand-in`);
  await sleep(300); // anything more would be a duplicate
  const series = run.dd.series();
  t.same(duplicates(series), [], 'no point delivered twice');
  t.equal(total(series, 'sf.c'), run.sent, `all ${run.sent} counted lines arrived after recovery`);
  for (const w of new Set(run.cli.lines.filter((l) => l.metric === 'sf.c').map((l) => l.timestamp))) {
    t.equal(
      total(series.filter((s) => s.points[0]?.timestamp === w), 'sf.c'),
      consoleTotal(run.cli.lines.filter((l) => l.timestamp === w), 'sf.c'),
      `window ${w}: Datadog got what the console got`,
    );
  }
  const lost = consoleTotal(run.cli.lines, 'metrics_distributor.dropped', ['component:sink-datadog']);
  t.equal(lost, 0, 'no loss counted');
  return series;
}

t.test('500 for a period, then recovery: everything in the retry buffer arrives, once', async (t) => {
  const run = await withFault(t, 3000, () => ({ status: 500 }));
  onTimeAndNoUdpLoss(t, run);
  const failed = run.dd.requests.filter((r) => r.status === 500);
  t.ok(failed.length >= 3, `the stand-in refused ${failed.length} requests`);
  t.ok(failed.at(-1)!.at - failed[0]!.at > 1500, 'the sink kept retrying through the outage');
  await allArriveOnce(t, run);
  t.ok(consoleTotal(run.cli.lines, 'metrics_distributor.received', ['component:sink-datadog-retry']) > 0, 'retries counted (sink-datadog-retry received)');
  t.equal(logsMatching(run.cli, /kept for retry/).length, 1, 'one warning for the whole outage (rate-limited)');
});

t.test('hanging requests (--datadog-timeout 1s): timed out, retried, all arrive once', async (t) => {
  const run = await withFault(t, 3000, () => ({ hang: true }));
  onTimeAndNoUdpLoss(t, run);
  t.ok(run.dd.requests.some((r) => r.outcome === 'hung'), 'requests were left hanging');
  await allArriveOnce(t, run);
  t.ok(consoleTotal(run.cli.lines, 'metrics_distributor.received', ['component:sink-datadog-http-error']) > 0, 'timeouts counted (sink-datadog-http-error)');
  t.equal(logsMatching(run.cli, /kept for retry/).length, 1, 'one warning (rate-limited)');
});

t.test('connection resets: retried, all arrive once', async (t) => {
  const run = await withFault(t, 3000, () => ({ reset: true }));
  onTimeAndNoUdpLoss(t, run);
  t.ok(run.dd.requests.filter((r) => r.outcome === 'reset').length >= 2, 'connections were reset');
  await allArriveOnce(t, run);
  t.ok(consoleTotal(run.cli.lines, 'metrics_distributor.received', ['component:sink-datadog-http-error']) > 0, 'resets counted (sink-datadog-http-error)');
  t.equal(logsMatching(run.cli, /kept for retry/).length, 1, 'one warning (rate-limited)');
});

t.test('403: windows during the fault are dropped, every dropped item counted and logged once', async (t) => {
  const run = await withFault(t, 2500, () => ({ status: 403, body: '{"errors":["Forbidden"]}' }));
  onTimeAndNoUdpLoss(t, run);
  const refused = run.dd.requests.filter((r) => r.status === 403 && r.path === '/api/v2/series');
  t.ok(refused.length >= 2, `${refused.length} series payloads refused`);
  const refusedItems = refused.reduce((n, r) => n + (r.json as { series: unknown[] }).series.length, 0);
  const refusedCount = refused.reduce((n, r) => n + total((r.json as { series: V2Series[] }).series, 'sf.c'), 0);
  // Wait for the window that reports the last drop.
  await eventually(
    () => consoleTotal(run.cli.lines, 'metrics_distributor.dropped', ['component:sink-datadog', 'reason:forbidden']) >= refusedItems,
    5000,
    () => `dropped{forbidden} ${consoleTotal(run.cli.lines, 'metrics_distributor.dropped', ['component:sink-datadog', 'reason:forbidden'])} of ${refusedItems}`,
  );
  t.equal(consoleTotal(run.cli.lines, 'metrics_distributor.dropped', ['component:sink-datadog', 'reason:forbidden']), refusedItems, 'dropped{reason:forbidden} = items refused');
  t.equal(consoleTotal(run.cli.lines, 'metrics_distributor.failed', ['component:sink-datadog-series']), refusedItems, 'failed{component:sink-datadog-series} = items refused');
  t.equal(consoleTotal(run.cli.lines, 'metrics_distributor.failed', ['component:sink-datadog']), refused.length, 'failed{component:sink-datadog}: one per window with a loss');
  // What was not refused arrived; what was refused is exactly the difference.
  await eventually(() => total(run.dd.series(), 'sf.c') + refusedCount >= run.sent, 5000, () => 'the rest at the stand-in');
  t.equal(total(run.dd.series(), 'sf.c') + refusedCount, run.sent, 'accepted + refused = sent: nothing lost silently');
  t.same(duplicates(run.dd.series()), [], 'no point twice');
  t.ok(total(run.dd.series(), 'metrics_distributor.dropped', ['reason:forbidden']) > 0, 'the loss also reaches Datadog once it accepts again');
  const errors = logsMatching(run.cli, /403 Forbidden/);
  t.equal(errors.length, 1, 'one error line for the whole period (rate-limited to one a minute)');
  t.match(errors[0], { level: 50, key: '***' }, 'logged at error, key masked');
});

t.test('413: payloads split until they fit; an item too large alone is dropped, counted and logged', async (t) => {
  // The stand-in plays a proxy with a small limit: more than 4 series is too large, and any payload
  // holding `sf.huge` is too large whatever its size.
  const run = await withFault(t, 3000, (r) => {
    const series = (r.json as { series?: V2Series[] } | undefined)?.series ?? [];
    return series.length > 4 || series.some((s) => s.metric === 'sf.huge') ? { status: 413 } : undefined;
  });
  onTimeAndNoUdpLoss(t, run);
  t.ok(run.dd.requests.filter((r) => r.status === 413).length >= 3, 'the stand-in answered 413');
  await allArriveOnce(t, run);
  const small = run.dd.requests.filter((r) => r.status === 202 && r.path === '/api/v2/series' && r.at >= run.faultFrom && r.at < run.faultTo);
  t.ok(small.length >= 3 && small.every((r) => (r.json as { series: unknown[] }).series.length <= 4), `split payloads of at most 4 series accepted during the fault (${small.length})`);
});

t.test('413 for one item: that item only is dropped and counted as payload_too_large', async (t) => {
  const dd = await startStandIn((r) => {
    const series = (r.json as { series?: V2Series[] } | undefined)?.series ?? [];
    return series.some((s) => s.metric === 'sf.huge') ? { status: 413 } : undefined;
  });
  t.teardown(() => dd.close());
  const cli = startCli(['--flush-interval', `${INTERVAL_MS}ms`, '--sink', 'console', ...datadogArgs(dd), ...FAST_RETRY]);
  killOnTeardown(t, cli);
  await cli.listening;
  const sender = new UdpSender(cli.ports.udp);
  await waitForPhase(INTERVAL_MS, 100);
  await sender.send('sf.huge:1|c\nsf.ok:1|c\nsf.ok:2|c|#x:y');
  sender.close();
  await eventually(
    () => consoleTotal(cli.lines, 'metrics_distributor.dropped', ['component:sink-datadog', 'reason:payload_too_large']) >= 1,
    5000,
    () => 'dropped{payload_too_large}',
  );
  await eventually(() => total(dd.series(), 'metrics_distributor.dropped', ['reason:payload_too_large']) >= 1, 5000, () => 'the drop reported to Datadog');
  t.equal(consoleTotal(cli.lines, 'metrics_distributor.dropped', ['component:sink-datadog', 'reason:payload_too_large']), 1, 'one item dropped');
  t.equal(total(dd.series(), 'sf.ok'), 3, 'the other items of that window arrived');
  t.equal(total(dd.series(), 'sf.huge'), 0, 'the item too large did not');
  const errors = logsMatching(cli, /too large/);
  t.equal(errors.length, 1, 'logged once');
  t.match(errors[0], { level: 50, item: /sf\.huge/ }, 'the log names the item');
  t.same(await cli.stop(), { code: 0, signal: null });
});
