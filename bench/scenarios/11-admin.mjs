// Scenario 11: what the admin listener costs. Scenario 1's load (UDP counters, 20 lines per packet,
// 1,000 names, blast) against our server with the admin listener off, on and polled every second
// (/api/status and /metrics, as a status page and a Prometheus scrape would), and polled with one tap
// (/api/tap) connected; the runs interleave so the machine's load drifts over all three alike.
import { get } from 'node:http';
import { writePayload } from '../harness.mjs';
import { LPP, SIZE, TMP, log } from '../lib/options.mjs';
import { best, fmtRatio, ratio, si } from '../lib/format.mjs';
import { counterLines } from '../lib/payloads.mjs';
import { counterTally } from '../lib/tally.mjs';
import { oursUdp, slim } from '../lib/udp.mjs';

/** The admin address from the start-up log line. */
function adminOf(srv) {
  const line = srv.h.stderr().split('\n').find((l) => l.includes('metrics-distributor started.'));
  const admin = line === undefined ? undefined : JSON.parse(line).admin;
  if (admin === undefined) throw new Error('the admin listener did not start (no "admin" in the start-up line)');
  return admin;
}

/** Polls /api/status and /metrics every second; counts answers. Returns its stop function. */
function poller(admin, stats) {
  const poll = async () => {
    for (const path of ['/api/status', '/metrics']) {
      try {
        const res = await fetch(`${admin}${path}`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.ok) stats.polls++;
        else stats.pollErrors++;
      } catch {
        stats.pollErrors++;
      }
    }
  };
  const timer = setInterval(() => void poll(), 1000);
  void poll();
  return () => clearInterval(timer);
}

/** Opens one tap stream and reads it; counts the samples shown and skipped. Returns its stop function. */
function tap(admin, stats) {
  let buf = '';
  const req = get(`${admin}/api/tap`, (res) => {
    res.setEncoding('utf8');
    res.on('data', (d) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.sample !== undefined) stats.tapSamples++;
        else if (msg.skipped !== undefined) stats.tapSkipped += msg.skipped;
      }
    });
  });
  req.on('error', () => stats.pollErrors++);
  return () => req.destroy();
}

const VARIANTS = [
  { key: 'off', flags: ['--admin', 'off'], poll: false, tap: false },
  { key: 'polled', flags: ['--admin', '127.0.0.1:0'], poll: true, tap: false },
  { key: 'tap', flags: ['--admin', '127.0.0.1:0'], poll: true, tap: true },
];

export async function scenarioAdmin() {
  const payload = writePayload(TMP, 's10.txt', counterLines('bench.s1', 1000));
  const warm = writePayload(TMP, 's10w.txt', counterLines('bench.warm', 1000));
  const load = { payload, warm, lpp: LPP, packets: SIZE.s1Packets, rate: 0 };
  const runs = { off: [], polled: [], tap: [] };
  const clients = { off: [], polled: [], tap: [] };
  for (let i = 0; i < SIZE.repeats; i++) {
    for (const v of VARIANTS) {
      const stats = { polls: 0, pollErrors: 0, tapSamples: 0, tapSkipped: 0 };
      const alongside = !v.poll
        ? undefined
        : async (srv) => {
            const admin = adminOf(srv);
            const stops = [poller(admin, stats), ...(v.tap ? [tap(admin, stats)] : [])];
            return () => stops.forEach((s) => s());
          };
      runs[v.key].push(await oursUdp(load, counterTally('bench.s1.'), v.flags, alongside));
      clients[v.key].push(stats);
      const r = runs[v.key].at(-1);
      log(`  admin ${v.key}: ${si(r.linesPerSec)} lines/s, ${si(r.linesPerCpuSecond)} lines/CPU-s${v.poll ? ` (${stats.polls} polls, ${stats.pollErrors} errors${v.tap ? `, tap ${stats.tapSamples} shown, ${si(stats.tapSkipped)} skipped` : ''})` : ''}`);
    }
  }
  const b = Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, best(rs, 'linesPerSec')]));
  const c = Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, best(rs, 'linesPerCpuSecond')]));
  const polled = ratio(b.polled.linesPerSec, b.off.linesPerSec);
  const tapped = ratio(b.tap.linesPerSec, b.off.linesPerSec);
  const fig = (k) => `${si(b[k].linesPerSec)} lines/s (${si(c[k].linesPerCpuSecond)} lines/CPU-s)`;
  return {
    rows: [
      { id: '11a', name: 'scenario 1 with the admin listener polled every second (/api/status + /metrics)', ours: fig('polled'), baseline: `--admin off ${fig('off')}`, ratio: fmtRatio(polled), target: '≥ 0.99× (≤ 1 % cost)', met: polled >= 0.99 },
      { id: '11b', name: 'scenario 1, admin polled and one tap connected', ours: fig('tap'), baseline: `--admin off ${fig('off')}`, ratio: fmtRatio(tapped), target: '≥ 0.95× (≤ 5 % cost)', met: tapped >= 0.95 },
    ],
    details: {
      runs: Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, rs.map(slim)])),
      clients,
      perCpuSecondRatios: { polled: ratio(c.polled.linesPerCpuSecond, c.off.linesPerCpuSecond), tap: ratio(c.tap.linesPerCpuSecond, c.off.linesPerCpuSecond) },
    },
  };
}
