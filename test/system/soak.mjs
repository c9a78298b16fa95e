// Soak: the real CLI under mixed UDP, TCP and HTTP load for SOAK_MINUTES (default 30), with a stand-in
// Datadog on loopback. Every 10 s it samples the server's RSS (/proc/<pid>/status VmRSS), the JS heap
// (from --trace-gc), the event-loop delay of the last window (the server's own
// metrics_distributor.event_loop_delay_max_ms, read from the stand-in) and how late after its boundary
// that window reached the stand-in, then prints a table, least-squares RSS slopes and a conclusion.
// It passes when nothing was lost and RSS grows by less than 0.1 MiB/min over the second half of the
// run (the first half is left for V8's heap sizing to settle). Not part of CI: `pnpm soak` at the repo root.
//
// Environment: SOAK_MINUTES (default 30), SOAK_FLUSH (server window, default 10s), SOAK_JSON (a file to
// write the samples to), SOAK_NODE_FLAGS / SOAK_SERVER_STDOUT (diagnostics, see below). Traffic goes only to 127.0.0.1 and stops by itself.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { gunzipSync, inflateSync } from 'node:zlib';
import { dropsFor, procLocalAddress } from '@metrics-distributor/frontend-statsd-udp';

const BIN = fileURLToPath(new URL('../../packages/cli/bin/metrics-distributor.js', import.meta.url));
const MINUTES = Number(process.env.SOAK_MINUTES ?? '30');
const FLUSH = process.env.SOAK_FLUSH ?? '10s';
const FLUSH_MS = Number(/^(\d+)s$/.exec(FLUSH)?.[1] ?? '10') * 1000;
const SAMPLE_MS = 10_000;
// Load per second: UDP 2,000 lines (100 datagrams of 20), TCP 1,000 lines, HTTP 10 POSTs of 50 l2met lines.
const UDP_DGRAMS_PER_TICK = 10;
const UDP_LINES_PER_DGRAM = 20;
const TCP_LINES_PER_TICK = 100;
const HTTP_LINES_PER_POST = 50;
const TICK_MS = 100;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function udpRcvbufErrors() {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const [head, vals] = lines.map((l) => l.trim().split(/\s+/));
  const i = head.indexOf('RcvbufErrors');
  return i < 0 ? 0 : Number(vals[i]);
}

/** Kernel drops on the UDP sockets bound to 127.0.0.1:port (the `drops` column of /proc/net/udp): per
 * socket, so other programs' traffic on the machine does not count, unlike /proc/net/snmp. */
function udpSocketDrops(port) {
  return dropsFor(readFileSync('/proc/net/udp', 'utf8'), procLocalAddress('127.0.0.1', port));
}

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Least-squares slope of y over x. */
function slope(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

// ---------------------------------------------------------------- stand-in Datadog (bounded memory)
/** Per window start (s): when its first series arrived, and the totals of the soak's counters. */
const windows = new Map();
let requests = 0;
let decodeErrors = 0;
const standIn = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    requests++;
    const at = Date.now();
    if (req.method === 'POST' && req.url?.startsWith('/api/v2/series')) {
      try {
        const raw = Buffer.concat(chunks);
        const enc = req.headers['content-encoding'];
        const body = enc === 'gzip' ? gunzipSync(raw) : enc === 'deflate' ? inflateSync(raw) : raw;
        for (const s of JSON.parse(body.toString('utf8')).series) {
          const ts = s.points[0].timestamp;
          let w = windows.get(ts);
          if (w === undefined) windows.set(ts, (w = { firstAt: at, counts: {} }));
          if (s.type === 2 && s.metric.startsWith('soak.')) w.counts[s.metric] = (w.counts[s.metric] ?? 0) + s.points[0].value * s.interval;
          else if (s.metric === 'metrics_distributor.event_loop_delay_max_ms' && s.tags?.includes('component:process')) w.loopMaxMs = s.points[0].value;
        }
      } catch {
        decodeErrors++;
      }
    }
    res.writeHead(req.method === 'GET' ? 200 : 202, { 'content-type': 'application/json' });
    res.end(req.method === 'GET' ? '{"valid":true}' : '{"errors":[]}');
  });
});
await new Promise((r) => standIn.listen(0, '127.0.0.1', r));
const ddPort = standIn.address().port;

// ---------------------------------------------------------------- the server
const args = [BIN, '--flush-interval', FLUSH, '--statsd-udp', '127.0.0.1:0', '--statsd-tcp', '127.0.0.1:0', '--http', '127.0.0.1:0',
  '--sink', 'datadog', '--datadog-api-key', 'soak', '--datadog-url', `http://127.0.0.1:${ddPort}`, '--hostname', 'soak'];
const env = { ...process.env };
for (const k of Object.keys(env)) if (k.startsWith('DD_')) delete env[k];
// The server runs with --trace-gc: its stdout (unused with the Datadog sink) then carries one line per
// GC, from which the soak reads the JS heap in use after the latest GC and the heap V8 has committed.
// That tells a JS leak (heap after GC grows) from V8 or native memory settling (only RSS grows).
// SOAK_NODE_FLAGS adds node flags; SOAK_SERVER_STDOUT copies the GC trace to a file.
const nodeFlags = ['--trace-gc', ...(process.env.SOAK_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '')];
const gcCopy = process.env.SOAK_SERVER_STDOUT ? createWriteStream(process.env.SOAK_SERVER_STDOUT) : undefined;
const child = spawn(process.execPath, [...nodeFlags, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
const gc = { afterMiB: NaN, committedMiB: NaN };
let gcBuf = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (d) => {
  gcCopy?.write(d);
  gcBuf += d;
  const lines = gcBuf.split('\n');
  gcBuf = lines.pop() ?? '';
  for (const l of lines) {
    const m = /(?:Scavenge|Mark-Compact|Mark-sweep)[^,]*?-> ([\d.]+) \(([\d.]+)\) MB/.exec(l);
    if (m) {
      gc.afterMiB = Number(m[1]);
      gc.committedMiB = Number(m[2]);
    }
  }
});
let stderr = '';
child.stderr.setEncoding('utf8');
child.stderr.on('data', (d) => {
  stderr += d;
  if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
});
const listeners = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`no start-up line:\n${stderr}`)), 15_000);
  const check = () => {
    for (const l of stderr.split('\n')) {
      if (l.includes('metrics-distributor started.')) {
        clearTimeout(timer);
        resolve(JSON.parse(l).listeners);
        return;
      }
    }
    setTimeout(check, 50);
  };
  check();
  child.on('exit', (code) => reject(new Error(`server exited ${code}:\n${stderr}`)));
});
const portOf = (scheme) => Number(listeners.find((l) => l.startsWith(`${scheme}://`)).split(':').pop());
const udpPort = portOf('udp');
const tcpPort = portOf('tcp');
const httpPort = portOf('http');

// ---------------------------------------------------------------- load
const sent = { 'soak.udp': 0, 'soak.tcp': 0, 'soak.http': 0 };
let httpErrors = 0;
const udp = createSocket('udp4');
const tcp = connect(tcpPort, '127.0.0.1');
await new Promise((r) => tcp.once('connect', r));
let tick = 0;
let stopLoad = false;
const rcvbuf0 = udpRcvbufErrors();

function loadTick() {
  tick++;
  // A few hundred stable contexts, plus a churn of new names each minute that expire later (the
  // counter-expiry path): contexts come and go for the whole run.
  const minute = Math.floor(tick / (60_000 / TICK_MS));
  for (let d = 0; d < UDP_DGRAMS_PER_TICK; d++) {
    const lines = [];
    for (let i = 0; i < UDP_LINES_PER_DGRAM; i++) {
      const k = (tick * UDP_LINES_PER_DGRAM + i) % 200;
      if (i % 4 === 0) lines.push(`soak.udp:1|c|#shard:${k % 50}`);
      else if (i % 4 === 1) lines.push(`soak.udp:1|c|#churn:${minute}_${k % 20}`);
      else if (i % 4 === 2) lines.push(`soak.lat:${k}|ms|#route:r${k % 10}`);
      else lines.push(`soak.users:u${k}|s`);
    }
    sent['soak.udp'] += UDP_LINES_PER_DGRAM / 2;
    udp.send(lines.join('\n'), udpPort, '127.0.0.1');
  }
  let t = '';
  for (let i = 0; i < TCP_LINES_PER_TICK; i++) t += i % 2 === 0 ? `soak.tcp:1|c|#conn:a\n` : `soak.tcpd:${i}|d\n`;
  sent['soak.tcp'] += TCP_LINES_PER_TICK / 2;
  tcp.write(t);
  let body = '';
  for (let i = 0; i < HTTP_LINES_PER_POST; i++) body += `count#soak.http=1 sample#soak.g=${i} measure#soak.m=${i}ms\n`;
  const req = request({ host: '127.0.0.1', port: httpPort, method: 'POST', path: '/logs?app=soak', headers: { 'content-type': 'text/plain' } }, (res) => {
    res.resume();
    if (res.statusCode === 200) sent['soak.http'] += HTTP_LINES_PER_POST;
    else httpErrors++;
  });
  req.on('error', () => httpErrors++);
  req.end(body);
}

const loadTimer = setInterval(() => {
  if (!stopLoad) loadTick();
}, TICK_MS);

// ---------------------------------------------------------------- sampling
const t0 = Date.now();
const samples = [];
let socketDrops = 0;
const end = t0 + MINUTES * 60_000;
process.stdout.write(`soak: ${MINUTES} min, window ${FLUSH}, server pid ${child.pid}, stand-in :${ddPort}\n`);
process.stdout.write('| t (min) | RSS (MiB) | JS heap after last GC (MB) | JS heap committed (MB) | last window flushed late by (ms) | event-loop delay, max over the last window (ms) | windows received |\n|---:|---:|---:|---:|---:|---:|---:|\n');
while (Date.now() < end) {
  await sleep(SAMPLE_MS);
  socketDrops = udpSocketDrops(udpPort);
  const rss = rssKb(child.pid);
  const done = [...windows.entries()].filter(([ts]) => ts * 1000 + FLUSH_MS <= Date.now() - 1000).sort((a, b) => a[0] - b[0]);
  const last = done.at(-1);
  const lateMs = last === undefined ? NaN : last[1].firstAt - (last[0] * 1000 + FLUSH_MS);
  const loopMaxMs = last?.[1].loopMaxMs ?? NaN;
  const s = { tMin: (Date.now() - t0) / 60_000, rssKb: rss, heapAfterGcMB: gc.afterMiB, heapCommittedMB: gc.committedMiB, lateMs, loopMaxMs, windows: windows.size };
  samples.push(s);
  process.stdout.write(
    `| ${s.tMin.toFixed(2)} | ${(rss / 1024).toFixed(1)} | ${s.heapAfterGcMB} | ${s.heapCommittedMB} | ${Number.isNaN(lateMs) ? '-' : lateMs} | ${Number.isNaN(loopMaxMs) ? '-' : loopMaxMs} | ${s.windows} |\n`,
  );
}

// ---------------------------------------------------------------- stop and check
stopLoad = true;
clearInterval(loadTimer);
await sleep(500);
socketDrops = udpSocketDrops(udpPort);
tcp.end();
await sleep(200);
child.kill('SIGTERM');
const code = await new Promise((r) => child.on('exit', (c) => r(c)));
udp.close();
await sleep(200);
standIn.close();

const received = { 'soak.udp': 0, 'soak.tcp': 0, 'soak.http': 0 };
const lateness = [];
for (const [ts, w] of windows) {
  for (const k of Object.keys(received)) received[k] += w.counts[k] ?? 0;
  lateness.push(w.firstAt - (ts * 1000 + FLUSH_MS));
}
lateness.sort((a, b) => a - b);
// The final partial window is flushed at SIGTERM, before its boundary: leave negative values out.
const onTime = lateness.filter((x) => x >= 0);
const pct = (q) => onTime[Math.min(onTime.length - 1, Math.floor(q * onTime.length))];
const warm = samples.filter((s) => s.tMin >= Math.min(5, MINUTES / 3));
const all = slope(samples.map((s) => s.tMin), samples.map((s) => s.rssKb / 1024));
const after = warm.length >= 3 ? slope(warm.map((s) => s.tMin), warm.map((s) => s.rssKb / 1024)) : NaN;
const rss = samples.map((s) => s.rssKb / 1024);
// The second half of the run: growth that is still going on once everything has had time to settle.
const late = samples.filter((s) => s.tMin >= MINUTES / 2);
const lateSlope = late.length >= 3 ? slope(late.map((s) => s.tMin), late.map((s) => s.rssKb / 1024)) : NaN;
const loops = samples.map((s) => s.loopMaxMs).filter(Number.isFinite).sort((a, b) => a - b);
const loopPct = (q) => loops[Math.min(loops.length - 1, Math.floor(q * loops.length))];
const loopLate = late.filter((s) => Number.isFinite(s.loopMaxMs));
const loopSlope = loopLate.length >= 3 ? slope(loopLate.map((s) => s.tMin), loopLate.map((s) => s.loopMaxMs)) : NaN;
const heapWarm = warm.filter((s) => Number.isFinite(s.heapAfterGcMB));
const heapSlope = heapWarm.length >= 3 ? slope(heapWarm.map((s) => s.tMin), heapWarm.map((s) => s.heapAfterGcMB)) : NaN;
const rcvbufDelta = udpRcvbufErrors() - rcvbuf0;

const summary = {
  minutes: MINUTES,
  exitCode: code,
  rssMiB: { min: Math.min(...rss), max: Math.max(...rss), first: rss[0], last: rss.at(-1) },
  rssSlopeMiBPerMin: all,
  rssSlopeAfterWarmupMiBPerMin: after,
  rssSlopeSecondHalfMiBPerMin: lateSlope,
  eventLoopDelayMaxMs: { p50: loopPct(0.5), p99: loopPct(0.99), max: loops.at(-1), samples: loops.length, slopeSecondHalfMsPerMin: loopSlope },
  heapAfterGcSlopeAfterWarmupMBPerMin: heapSlope,
  flushLateMs: { p50: pct(0.5), p99: pct(0.99), max: onTime.at(-1), windows: onTime.length },
  sent,
  received: Object.fromEntries(Object.entries(received).map(([k, v]) => [k, Math.round(v)])),
  httpErrors,
  udpSocketDrops: socketDrops,
  udpRcvbufErrorsDeltaMachineWide: rcvbufDelta,
  standInRequests: requests,
  decodeErrors,
};
process.stdout.write(`\n${JSON.stringify(summary, null, 2)}\n`);
const lost = Object.keys(sent).filter((k) => Math.round(received[k]) !== sent[k]);
const growth = Number.isFinite(lateSlope) ? lateSlope : all;
const ok = code === 0 && lost.length === 0 && decodeErrors === 0 && socketDrops === 0 && growth < 0.1;
process.stdout.write(
  `\nconclusion: RSS slope ${all.toFixed(3)} MiB/min over the run (${Number.isFinite(after) ? after.toFixed(3) : '-'} MiB/min after warm-up), ` +
    `${Number.isFinite(lateSlope) ? lateSlope.toFixed(3) : '-'} MiB/min over the second half; ` +
    `RSS ${summary.rssMiB.min.toFixed(1)}–${summary.rssMiB.max.toFixed(1)} MiB; event-loop delay per window p50 ${loopPct(0.5) ?? '-'} ms, p99 ${loopPct(0.99) ?? '-'} ms, max ${loops.at(-1) ?? '-'} ms; JS heap after GC slope ${Number.isFinite(heapSlope) ? heapSlope.toFixed(3) : '-'} MB/min after warm-up; windows late by p50 ${summary.flushLateMs.p50} ms, p99 ${summary.flushLateMs.p99} ms, max ${summary.flushLateMs.max} ms; ` +
    `${lost.length === 0 ? 'every counter sent arrived' : `counters lost: ${lost.join(', ')}`}; kernel drops on the server's UDP socket ${socketDrops} (machine-wide RcvbufErrors delta ${rcvbufDelta}, other programs included). ${ok ? 'PASS' : 'FAIL'}\n`,
);
if (process.env.SOAK_JSON) writeFileSync(process.env.SOAK_JSON, JSON.stringify({ summary, samples }, null, 2));
process.exit(ok ? 0 : 1);
