/**
 * Conservation: a known mix over UDP, TCP and HTTP at the same time, for several windows, through the
 * real CLI to the stand-in Datadog. Summed over every flushed window, what arrives equals what was
 * sent, exactly: counters as rate × interval, histogram `.count` totals; set cardinalities are at most
 * the distinct members per window and exact within a single window.
 */
import t, { type Test } from 'tap';
import { httpRequest, killOnTeardown, sleep, startCli, tcpConnect, tcpWrite, UdpSender, udpRcvbufErrors, udpSocketDrops, waitForPhase, windowOf, eventually } from './helpers.js';
import { datadogArgs, duplicates, startStandIn, total, type V2Series } from './stand-in-datadog.js';

const INTERVAL_MS = 1000;
const TICK_MS = 50;
const TICKS = 60; // 3 s of traffic: several windows

async function conservation(t: Test, workers: number): Promise<void> {
  const dd = await startStandIn();
  t.teardown(() => dd.close());
  const cli = startCli(['--flush-interval', `${INTERVAL_MS}ms`, '--workers', String(workers), ...datadogArgs(dd)]);
  killOnTeardown(t, cli);
  await cli.listening;
  const { udp, tcp, http } = cli.ports;
  const drops0 = udpSocketDrops(udp);
  const snmp0 = udpRcvbufErrors();

  const sent = { udpC: 0, tcpC: 0, httpC: 0, httpStatsdC: 0, udpH: 0, udpHh: 0, tcpH: 0, httpH: 0 };
  const setMembers = new Set<string>();
  const udpSender = new UdpSender(udp);
  const conns = await Promise.all([tcpConnect(tcp), tcpConnect(tcp)]);

  // All three protocols at once, each on its own loop.
  const udpLoop = async () => {
    for (let i = 0; i < TICKS; i++) {
      for (let d = 0; d < 5; d++) {
        const lines: string[] = [];
        for (let j = 0; j < 10; j++) {
          const k = i * 50 + d * 10 + j;
          switch (j % 5) {
            case 0:
              lines.push(`sys.c:1|c|#src:udp`);
              sent.udpC += 1;
              break;
            case 1:
              lines.push(`sys.c:3|c|@0.25|#src:udp`); // counts as 12
              sent.udpC += 12;
              break;
            case 2:
              lines.push(`sys.h:${k % 97}|ms|#src:udp`);
              sent.udpH++;
              break;
            case 3:
              lines.push(`sys.hh:${k % 13}|h|@0.5|#src:udp`); // counts as 2 samples
              sent.udpHh += 2;
              break;
            default:
              lines.push(`sys.set:u${k % 40}|s`);
              setMembers.add(`u${k % 40}`);
          }
        }
        await udpSender.send(lines.join('\n'));
      }
      await sleep(TICK_MS);
    }
  };
  const tcpLoop = async (conn: (typeof conns)[number], id: number) => {
    for (let i = 0; i < TICKS; i++) {
      let buf = '';
      for (let j = 0; j < 20; j++) {
        buf += `sys.c:2|c|#src:tcp\nsys.h:${j}|ms|#src:tcp\nsys.set:t${id}_${j % 15}|s\n`;
        sent.tcpC += 2;
        sent.tcpH++;
        setMembers.add(`t${id}_${j % 15}`);
      }
      // Split mid-line on purpose: framing must not lose or double anything.
      const cut = 7 + (i % 30);
      await tcpWrite(conn, buf.slice(0, cut));
      await tcpWrite(conn, buf.slice(cut));
      await sleep(TICK_MS);
    }
  };
  const httpLoop = async () => {
    for (let i = 0; i < TICKS / 2; i++) {
      let logs = '';
      for (let j = 0; j < 10; j++) logs += `count#sys.c=3 measure#sys.h=${j}ms\n`;
      const a = await httpRequest(http, '/logs?app=sys', logs);
      if (a.status !== 200) throw new Error(`POST /logs answered ${a.status}`);
      sent.httpC += 30;
      sent.httpH += 10;
      const statsd = `sys.c:5|c|#src:http\nsys.set:h${i % 10}|s\n`;
      const b = await httpRequest(http, '/statsd', statsd);
      if (b.status !== 200) throw new Error(`POST /statsd answered ${b.status}`);
      sent.httpStatsdC += 5;
      setMembers.add(`h${i % 10}`);
      await sleep(TICK_MS * 2);
    }
  };
  await Promise.all([udpLoop(), tcpLoop(conns[0], 0), tcpLoop(conns[1], 1), httpLoop()]);

  // One burst of a second set, early in a window, so it lands in a single window.
  const burstWindow = await waitForPhase(INTERVAL_MS, 100);
  const burst = Array.from({ length: 37 }, (_, i) => `m${i}`);
  await udpSender.send(burst.map((m) => `sys.set1:${m}|s`).join('\n'));
  await tcpWrite(conns[0], burst.slice(0, 20).map((m) => `sys.set1:${m}|s\n`).join(''));
  await httpRequest(http, '/statsd', burst.slice(10).map((m) => `sys.set1:${m}|s`).join('\n'));
  for (const c of conns) c.end();
  udpSender.close();
  const lastSend = Date.now();
  t.ok(lastSend < burstWindow + INTERVAL_MS - 100, 'the burst was sent within one window');

  // Everything sent lands in the window of its arrival, or (a worker's late part) the next one.
  const settled = windowOf(lastSend, INTERVAL_MS) + 2 * INTERVAL_MS;
  await eventually(() => dd.series().some((s) => (s.points[0]?.timestamp ?? 0) * 1000 >= settled), 10_000, () => `window ${settled} at the stand-in`);
  const drops = udpSocketDrops(udp) - drops0;
  const snmp = udpRcvbufErrors() - snmp0;
  const series = dd.series();

  t.equal(drops, 0, `the kernel dropped no datagram on the server's socket (machine-wide RcvbufErrors delta ${snmp}, other programs included)`);
  if (drops !== 0) t.fail(`UDP loss on loopback (${drops} datagrams): the test rate is too high for this machine, totals cannot be exact`);
  t.same(duplicates(series), [], 'no point was delivered twice');
  t.equal(total(series, 'sys.c', ['src:udp']), sent.udpC, 'UDP counters, with sample rates');
  t.equal(total(series, 'sys.c', ['src:tcp']), sent.tcpC, 'TCP counters');
  t.equal(total(series, 'sys.c', ['app:sys']), sent.httpC, 'HTTP l2met counters');
  t.equal(total(series, 'sys.c', ['src:http']), sent.httpStatsdC, 'HTTP StatsD counters');
  t.equal(total(series, 'sys.h.count', ['src:udp']), sent.udpH, 'UDP histogram/timer .count');
  t.equal(total(series, 'sys.hh.count', ['src:udp']), sent.udpHh, 'UDP histogram .count, with a sample rate');
  t.equal(total(series, 'sys.h.count', ['src:tcp']), sent.tcpH, 'TCP timer .count');
  t.equal(total(series, 'sys.h.count', ['app:sys']), sent.httpH, 'HTTP l2met measure .count');

  const sets = series.filter((s: V2Series) => s.metric === 'sys.set');
  t.ok(sets.length >= 3, `the set was flushed in several windows (${sets.length})`);
  for (const s of sets) t.ok((s.points[0]?.value ?? Infinity) <= setMembers.size, `set cardinality ${s.points[0]?.value} ≤ ${setMembers.size} distinct`);
  t.ok(sets.reduce((a, s) => a + (s.points[0]?.value ?? 0), 0) >= setMembers.size, 'every member counted in some window');
  const set1 = series.filter((s) => s.metric === 'sys.set1');
  t.same(
    set1.map((s) => [s.points[0]?.timestamp, s.points[0]?.value]),
    [[burstWindow / 1000, burst.length]],
    'a set sent within one window over three protocols: its exact distinct count',
  );
  // The server's own accounting agrees with the client's.
  const tcpLines = 3 * (sent.tcpC / 2) + 20; // 3 lines (c, h, set) per counter line, plus the burst
  t.equal(total(series, 'metrics_distributor.received', ['component:statsd-tcp']), tcpLines, 'statsd-tcp received every line');
  t.equal(total(series, 'metrics_distributor.bad', ['component:statsd-tcp']), 0, 'no TCP line was bad');

  const exit = await cli.stop();
  t.same(exit, { code: 0, signal: null }, 'clean exit on SIGTERM');
  t.equal(total(dd.series(), 'sys.c', ['src:udp']), sent.udpC, 'nothing added at shutdown');
}

t.test('UDP + TCP + HTTP for several windows: every count arrives exactly once', (t) => conservation(t, 1));
t.test('the same with --workers 2 (windows merged from two UDP processes)', (t) => conservation(t, 2));
