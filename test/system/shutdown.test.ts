/**
 * Shutdown. SIGTERM at random moments within a window loses nothing that was received: every line a
 * TCP client wrote before the signal (and so every line the server could read) is counted, and so is
 * every UDP datagram the kernel queued for the server. SIGKILL loses at most the open window: every
 * window closed (and delivered) before the kill is there, complete. The bound is in docs/RELIABILITY.md.
 *
 * The console sink is used: 300 ms windows keep each run short, and Datadog timestamps are whole seconds
 * (so sub-second windows would share one); the console sink prints the window's real interval.
 */
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { consoleTotal, eventually, killOnTeardown, rng, sendUdp, sleep, startCli, tcpConnect, tcpWrite, UdpSender, udpSocketDrops, waitForPhase } from './helpers.js';

const INTERVAL_MS = 300;
const RUNS = 20;
const seed = Number(process.env['SHUTDOWN_SEED'] ?? Date.now() % 1_000_000);

/** One SIGTERM run: traffic on TCP and UDP for a random time, the signal, then an exact count. */
async function sigtermRun(t: Test, run: number, random: () => number, workers: number): Promise<void> {
  const cli = startCli(['--flush-interval', `${INTERVAL_MS}ms`, '--workers', String(workers), '--sink', 'console']);
  killOnTeardown(t, cli);
  await cli.listening;
  const { udp, tcp } = cli.ports;
  const drops0 = udpSocketDrops(udp);
  const conn = await tcpConnect(tcp);
  conn.on('error', () => undefined);
  const sender = new UdpSender(udp);
  // Sending lasts one to three windows, and the signal comes at a random phase of the last one.
  const until = Date.now() + INTERVAL_MS * (1 + 2 * random());
  let tcpSent = 0;
  let udpSent = 0;
  let i = 0;
  while (Date.now() < until) {
    // Some lines go out in pieces, so the signal can also fall between two halves of a line's bytes.
    const batch = Array.from({ length: 20 }, (_, j) => `sd.tcp:1|c|#run:${run},j:${j % 3}\n`).join('');
    const cut = Math.floor(random() * batch.length);
    await tcpWrite(conn, batch.slice(0, cut));
    await tcpWrite(conn, batch.slice(cut));
    tcpSent += 20;
    await sender.send(Array.from({ length: 10 }, () => `sd.udp:1|c|#run:${run}`).join('\n'));
    udpSent += 10;
    // About 20,000 TCP and 10,000 UDP lines a second: a modest rate, so the kernel drops no datagram.
    if (++i % 2 === 0) await sleep(2);
  }
  // A last burst sent without pacing, so datagrams are still queued in the kernel when the signal lands.
  const burst = 300;
  await Promise.all(Array.from({ length: burst }, () => sender.send(Array.from({ length: 10 }, () => `sd.udp:1|c|#run:${run}`).join('\n'))));
  udpSent += burst * 10;
  const drops = udpSocketDrops(udp) - drops0;
  const signalAt = Date.now();
  const exit = await cli.stop('SIGTERM');
  sender.close();
  conn.destroy();
  const lines = cli.lines;
  const phase = signalAt % INTERVAL_MS;
  t.same(exit, { code: 0, signal: null }, `exit 0 (signal at ${phase} ms into a window)`);
  t.equal(drops, 0, 'no kernel drop on the UDP socket');
  t.equal(consoleTotal(lines, 'sd.tcp', [`run:${run}`]), tcpSent, `all ${tcpSent} TCP lines written before SIGTERM were counted`);
  t.equal(consoleTotal(lines, 'sd.udp', [`run:${run}`]), udpSent, `all ${udpSent} UDP lines queued before SIGTERM were counted (a burst of ${burst} datagrams just before it)`);
  t.equal(consoleTotal(lines, 'metrics_distributor.dropped', ['component:statsd-tcp']), 0, 'no TCP line dropped');
  t.equal(consoleTotal(lines, 'metrics_distributor.bad', ['component:statsd-tcp']), 0, 'no TCP line cut in two');
}

t.test(`SIGTERM at random moments in a window loses nothing received (${RUNS} runs, seed ${seed})`, async (t) => {
  // Four at a time to keep the wall time down; every fourth run through --workers 2. Each run has its
  // own random stream, so a seed replays every run whatever the order they finish in.
  t.jobs = 4;
  for (let run = 0; run < RUNS; run++) {
    const workers = run % 4 === 3 ? 2 : 1;
    t.test(`run ${run}${workers > 1 ? ' (--workers 2)' : ''}`, (t) => sigtermRun(t, run, rng(seed * 100 + run), workers));
  }
});

t.test('SIGKILL loses at most the open window: every window closed before the kill arrived complete', async (t) => {
  const random = rng(seed + 1);
  for (let run = 0; run < 3; run++) {
    await t.test(`run ${run}`, async (t) => {
      const cli = startCli(['--flush-interval', `${INTERVAL_MS}ms`, '--sink', 'console']);
      killOnTeardown(t, cli);
      await cli.listening;
      const conn = await tcpConnect(cli.ports.tcp);
      conn.on('error', () => undefined);
      // Batches at 1/3 and 2/3 of each window, tagged with the window they were sent in.
      const sentPerWindow = new Map<number, number>();
      const windows = 3 + Math.floor(random() * 3);
      for (let w = 0; w < windows * 2; w++) {
        const win = await waitForPhase(INTERVAL_MS, w % 2 === 0 ? 100 : 200);
        const n = 10 + Math.floor(random() * 40);
        await tcpWrite(conn, `sk.c:1|c|#w:${win}\n`.repeat(n));
        sentPerWindow.set(win, (sentPerWindow.get(win) ?? 0) + n);
      }
      // The kill falls at a random moment of the window after the last batch, or later in it.
      await sleep(random() * INTERVAL_MS);
      const killAt = Date.now();
      const exit = await cli.stop('SIGKILL');
      conn.destroy();
      t.equal(exit.signal, 'SIGKILL', 'killed');
      const lines = cli.lines;
      let lost = 0;
      let lostWindows = 0;
      for (const [win, n] of sentPerWindow) {
        const got = consoleTotal(lines, 'sk.c', [`w:${win}`]);
        const arrived = lines.filter((l) => l.metric === 'sk.c' && (l.tags ?? []).includes(`w:${win}`) && (l.value ?? 0) > 0);
        if (got > 0) {
          t.equal(got, n, `window ${win}: complete (${n})`);
          t.equal(arrived.length, 1, `window ${win}: in one window`);
        } else {
          lost += n;
          lostWindows++;
          // Only the open window at the kill, or one closed so recently that the sink had not delivered it yet.
          t.ok(win + INTERVAL_MS > killAt - INTERVAL_MS, `window ${win} lost only because it was open (or just closed) at the kill (killed ${killAt - win} ms after its start)`);
        }
      }
      t.ok(lostWindows <= 2, `at most the open window (and one just closed) lost: ${lostWindows} windows, ${lost} lines`);
      // Windows that ended more than a window before the kill must be there.
      for (const [win] of sentPerWindow) if (win + 2 * INTERVAL_MS <= killAt) t.ok(consoleTotal(lines, 'sk.c', [`w:${win}`]) > 0, `window ${win} (closed before the kill) arrived`);
    });
  }
});

t.test('a UDP worker killed: logged, restarted, the other worker and later traffic unaffected', async (t) => {
  const cli = startCli(['--flush-interval', '1s', '--workers', '2', '--sink', 'console']);
  killOnTeardown(t, cli);
  await cli.listening;
  const children = () =>
    readFileSync(`/proc/${cli.proc.pid}/task/${cli.proc.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((x) => x !== '')
      .map(Number);
  const before = children();
  t.equal(before.length, 2, 'two workers');
  process.kill(before[0]!, 'SIGKILL');
  await eventually(() => cli.stderr().includes('UDP worker died'), 5000, () => 'the death log line');
  await eventually(() => children().length === 2 && !children().includes(before[0]!), 5000, () => 'a new worker');
  // Traffic after the restart is counted exactly, whichever worker receives it.
  await sleep(200);
  await sendUdp(cli.ports.udp, Array.from({ length: 50 }, () => 'wd.c:1|c'));
  await sleep(100);
  t.same(await cli.stop(), { code: 0, signal: null }, 'clean exit');
  t.equal(consoleTotal(cli.lines, 'wd.c'), 50, 'every datagram after the restart counted');
  t.match(cli.logs().find((l) => l['msg'] === 'UDP worker died; its open window is lost. Restarting it.'), { level: 50, signal: 'SIGKILL' }, 'logged at error with the signal');
  t.equal(consoleTotal(cli.lines, 'metrics_distributor.worker_deaths', ['component:workers']), 1, 'counted: metrics_distributor.worker_deaths{component:workers}');
});
