// Scenario 8: memory: (a) RSS with 100k live contexts against etsy statsd, (b) one heavy histogram.
import { join } from 'node:path';
import { BENCH_DIR, memBytes, sleep, spawnTracked, stopTracked, writePayload } from '../harness.mjs';
import { LPP, QUICK, SIZE, TMP, log } from '../lib/options.mjs';
import { fmtRatio, kib, mib, ratio, si } from '../lib/format.mjs';
import { mixedLines } from '../lib/payloads.mjs';
import { startEtsy, startOurs } from '../lib/servers.mjs';
import { udpLoad } from '../lib/udp.mjs';

/** Wait between the last line and an RSS reading. */
const SETTLE_MS = 1500;

export async function scenario8() {
  const rows = [];
  const details = {};
  // (a) RSS with 100,000 live contexts: mixed types, 2 tags, each context sent twice, one 1-hour window.
  const contexts = SIZE.s8Contexts;
  const payload = writePayload(TMP, 's8.txt', mixedLines('bench.s8', contexts, 2));
  const load = { payload, lpp: LPP, packets: (contexts * 2) / LPP, rate: 5000 };
  const seen = new Set();
  const srv = await startOurs(['--flush-interval', '1h'], (o) => {
    const m = /^bench\.s8\.(\w+)\.(\d+)/.exec(o.metric ?? '');
    if (m !== null) seen.add(`${m[1]}.${m[2]}`);
  });
  if (!srv.ok) throw new Error(`metrics-distributor did not start: ${srv.message}`);
  const idle = memBytes(srv.pid);
  const run = await udpLoad({ pid: srv.pid, port: srv.port }, load);
  await sleep(SETTLE_MS);
  const mem = memBytes(srv.pid);
  await stopTracked(srv.h, { timeoutMs: 30_000 });
  const ours = { idleRss: idle.rss, rss: mem.rss, hwm: mem.hwm, liveContexts: seen.size, socketDrops: run.socketDrops, bytesPerContext: (mem.rss - idle.rss) / contexts };
  log(`  ours: RSS ${mib(mem.rss)} with ${seen.size} contexts (idle ${mib(idle.rss)})`);
  const es = await startEtsy({ prefix: 'bench.s8.', flushInterval: 3_600_000 });
  const eIdle = memBytes(es.pid);
  const erun = await udpLoad({ pid: es.pid, port: es.port }, load);
  await sleep(SETTLE_MS);
  const emem = memBytes(es.pid);
  await stopTracked(es.h);
  const etsy = { idleRss: eIdle.rss, rss: emem.rss, hwm: emem.hwm, socketDrops: erun.socketDrops, bytesPerContext: (emem.rss - eIdle.rss) / contexts };
  log(`  etsy statsd: RSS ${mib(emem.rss)}`);
  rows.push({ id: '8a', name: `Memory: RSS with ${si(contexts)} live contexts (mixed, 2 tags)`, ours: `${mib(mem.rss)} (${si(seen.size)} contexts flushed)`, baseline: `etsy statsd ${mib(emem.rss)}`, ratio: fmtRatio(ratio(mem.rss, emem.rss)), target: '≤ 150 MB', met: mem.rss <= 150e6 && seen.size >= contexts });
  details.contexts = { ours, etsy };

  // (b) One heavy histogram: 1M samples in one window to one `h` context, as the RSS growth over a
  // control run that sends the same number of counter lines, and in-process with HistogramAgg.
  const n = SIZE.s8HeavySamples;
  const heavyLines = Array.from({ length: 1000 }, (_, i) => `bench.s8h.heavy:${String(100 + ((i * 7919) % 9900)).padStart(5, '0')}.${String(i % 10)}|h`);
  const ctlLines = Array.from({ length: 1000 }, (_, i) => `bench.s8h.ctl${String(i % 10)}:1|c`);
  const growth = async (lines, label) => {
    const file = writePayload(TMP, `s8-${label}.txt`, lines);
    let count = 0;
    const s = await startOurs(['--flush-interval', '1h'], (o) => {
      if (o.metric === 'bench.s8h.heavy.count') count += o.value * o.interval;
    });
    if (!s.ok) throw new Error(`metrics-distributor did not start: ${s.message}`);
    // Warm up: the context exists and its sketch is in use before the first reading.
    await udpLoad({ pid: s.pid, port: s.port }, { payload: file, lpp: LPP, packets: 5000 / LPP, rate: 5000 });
    await sleep(QUICK ? 500 : 1000);
    const m0 = memBytes(s.pid);
    const r = await udpLoad({ pid: s.pid, port: s.port }, { payload: file, lpp: LPP, packets: n / LPP, rate: 500_000 / LPP });
    await sleep(QUICK ? 500 : 1000);
    const m1 = memBytes(s.pid);
    await stopTracked(s.h);
    return { rssBefore: m0.rss, rssAfter: m1.rss, delta: m1.rss - m0.rss, count: Math.round(count), drops: r.socketDrops };
  };
  const heavy = await growth(heavyLines, 'heavy');
  // The control run only explains the RSS figure; the quick run leaves it out.
  const ctl = QUICK ? { delta: NaN, skipped: 'BENCH_QUICK' } : await growth(ctlLines, 'control');
  const rssPerHeavy = heavy.delta - ctl.delta;
  const hm = spawnTracked(process.execPath, ['--expose-gc', join(BENCH_DIR, 'hist-mem.mjs'), String(n), String(SIZE.histInstances)], { keepStdout: true });
  await hm.exited;
  const inproc = JSON.parse(hm.stdoutLines.find((l) => l.startsWith('{')) ?? '{}');
  const retained = inproc.retainedBytesPerInstance ?? NaN;
  log(`  heavy histogram: RSS growth ${kib(heavy.delta)} (control ${Number.isFinite(ctl.delta) ? kib(ctl.delta) : 'not run'}), in-process byteSize ${kib(inproc.byteSize)}, retained ${kib(retained)}`);
  rows.push({
    id: '8b',
    name: `Memory: one heavy histogram (${si(n)} samples, one window)`,
    ours: `${kib(retained)} retained (in-process, after GC)`,
    baseline: `HistogramAgg.byteSize() ${kib(inproc.byteSize)}`,
    ratio: fmtRatio(ratio(retained, inproc.byteSize)),
    target: '≤ 64 KiB',
    met: retained <= 65536 && inproc.byteSize <= 65536,
  });
  details.heavyHistogram = { server: heavy, control: ctl, rssPerHeavy, inProcess: inproc, retainedBytes: retained };
  return { rows, details };
}
