// Scenario 12 (issue 12): a 200k-context window into `--sink prometheus`, scrape mode and remote write
// to a stand-in receiver at once. Rows: the server's own worst event-loop delay in the window of the
// export (target ≤ 50 ms), the export's CPU and duration, the scrape of the whole state (time and bytes,
// text 0.0.4 and OpenMetrics), and remote write (requests, bytes). Self-metrics are read from the
// exposition itself: `metrics_distributor_event_loop_delay_max_ms` of each window.
import { createServer, request } from 'node:http';
import { cpuSeconds, now, runSender, sleep, stopTracked, writePayload } from '../harness.mjs';
import { LPP, TMP, log, sender } from '../lib/options.mjs';
import { mixedLines } from '../lib/payloads.mjs';
import { probeFeature, skipped } from '../lib/servers.mjs';

/** A remote-write receiver answering 204, recording each request's arrival time and body size. */
async function standInReceiver() {
  const requests = [];
  const srv = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c) => (bytes += c.length));
    req.on('end', () => {
      requests.push({ at: Date.now(), bytes });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { requests, url: `http://127.0.0.1:${srv.address().port}/api/v1/write`, close: () => new Promise((r) => srv.close(r)) };
}

/** One GET of the exposition: wall time, body bytes and the body (for the self-metrics in it). */
function scrape(url, accept) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const chunks = [];
    const req = request(url, { headers: accept === undefined ? {} : { accept }, agent: false }, (res) => {
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ ms: now() - t0, bytes: body.length, body: body.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of the self-metric `metrics_distributor_<name>` in an exposition, if there. */
function selfMetricOf(body, name) {
  const m = new RegExp(`^metrics_distributor_${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(body);
  return m === null ? undefined : Number(m[1]);
}

/** The value of `metrics_distributor_event_loop_delay_max_ms` in an exposition, if there. */
function loopDelayOf(body) {
  return selfMetricOf(body, 'event_loop_delay_max_ms');
}

/**
 * The sink's own longest synchronous slice of its last export or scrape, wall and CPU time: the CPU
 * figure does not depend on the machine's load, the event-loop delay does.
 */
function slicesOf(body, of) {
  return { wallMs: selfMetricOf(body, `prometheus_${of}_longest_slice_ms`), cpuMs: selfMetricOf(body, `prometheus_${of}_longest_slice_cpu_ms`) };
}

export async function scenarioPrometheus() {
  const name = 'Prometheus sink: a 200k-context window, scrape and remote write';
  const target = 'loop delay ≤ 50 ms in the export window';
  // Long enough that a scrape of the whole state (seconds on a loaded machine) fits in one window.
  const interval = 10;
  const rw = await standInReceiver();
  const base = ['--sink', 'prometheus', '--prometheus-listen', '127.0.0.1:0', '--prometheus-remote-write-url', rw.url, '--prometheus-max-series', '2000000', '--max-contexts', '300000', '--flush-interval', `${interval}s`, '--self-metrics', 'true'];
  const p = await probeFeature(base, undefined, undefined, '--sink prometheus with --prometheus-remote-write-url');
  if (p.srv === undefined) {
    await rw.close();
    return skipped('12', name, target, p.why);
  }
  const srv = p.srv;
  const scrapeUrl = srv.listeners.find((l) => l.startsWith('http://') && l.endsWith('/metrics'));
  const contexts = 200_000;
  const payload = writePayload(TMP, 's12.txt', mixedLines('bench.s12', contexts, 1));
  const packets = Math.ceil(contexts / LPP);
  // Send the whole window early in one interval, so that the next boundary closes all 200k contexts.
  const ms = Date.now();
  await sleep(interval * 1000 - (ms % (interval * 1000)) + 50);
  const sent = await runSender(sender(), { port: srv.port, payload, lpp: LPP, packets, rate: 20_000, maxSeconds: interval });
  const boundary = Math.ceil(Date.now() / (interval * 1000)) * interval * 1000;
  await sleep(Math.max(0, boundary - Date.now() - 200));
  const cpu0 = cpuSeconds(srv.pid);
  const before = rw.requests.length;
  // The export and its remote write are over once requests came and then none for a second.
  await sleep(Math.max(0, boundary - Date.now()));
  for (let t = 0; rw.requests.length === before && t < interval * 10; t++) await sleep(100);
  for (let last = -1; last !== rw.requests.length; ) {
    last = rw.requests.length;
    await sleep(1000);
  }
  const reqs = rw.requests.slice(before).filter((r) => r.at >= boundary);
  const exportCpuS = cpuSeconds(srv.pid) - cpu0;
  const exportMs = reqs.length > 0 ? Math.max(...reqs.map((r) => r.at)) - boundary : NaN;
  const rwBytes = reqs.reduce((a, r) => a + r.bytes, 0);
  // The export ran in the window after the boundary; its self-metrics arrive at the boundary after that.
  await sleep(Math.max(0, boundary + interval * 1000 + 700 - Date.now()));
  const text = await scrape(scrapeUrl);
  const exportLoopMs = loopDelayOf(text.body);
  const exportSlice = slicesOf(text.body, 'export');
  const om = await scrape(scrapeUrl, 'application/openmetrics-text;version=1.0.0');
  const series = text.body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
  // The two scrapes ran in this window: its loop delay shows up at the next boundary.
  const scrapeBoundary = Math.ceil(Date.now() / (interval * 1000)) * interval * 1000;
  await sleep(Math.max(0, scrapeBoundary + 700 - Date.now()));
  const after = await scrape(scrapeUrl);
  const scrapeLoopMs = loopDelayOf(after.body);
  const scrapeSlice = slicesOf(after.body, 'scrape');
  const serverErrors = srv.h.stderr().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-5);
  const ex = await stopTracked(srv.h);
  await rw.close();
  const f = (x, d = 0) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(d));
  const mib = (b) => (b / 1048576).toFixed(1);
  const sl = (x) => `${f(x.wallMs, 1)} ms (${f(x.cpuMs, 1)} ms CPU)`;
  log(`  export: ${f(exportMs)} ms to the last remote-write request, ${f(exportCpuS * 1000)} ms CPU; loop delay ${f(exportLoopMs, 1)} ms; longest slice of the sink ${sl(exportSlice)}; remote write ${reqs.length} requests, ${mib(rwBytes)} MiB`);
  log(`  scrape of ${series} samples: text ${f(text.ms)} ms ${mib(text.bytes)} MiB, OpenMetrics ${f(om.ms)} ms ${mib(om.bytes)} MiB; loop delay in that window ${f(scrapeLoopMs, 1)} ms; longest slice of the last scrape ${sl(scrapeSlice)}`);
  const details = { contexts, sender: { ...sent, exitAt: undefined }, interval, exportMs, exportCpuS, exportLoopDelayMaxMs: exportLoopMs, exportLongestSlice: exportSlice, remoteWrite: { requests: reqs.length, bytes: rwBytes }, scrape: { samples: series, textMs: text.ms, textBytes: text.bytes, openMetricsMs: om.ms, openMetricsBytes: om.bytes, loopDelayMaxMs: scrapeLoopMs, longestSlice: scrapeSlice }, exit: ex, serverErrors };
  return {
    rows: [
      { id: '12', name: `${name}: loop delay in the export window`, ours: `${f(exportLoopMs, 1)} ms (export + remote write: ${f(exportCpuS * 1000)} ms CPU, ${f(exportMs)} ms to the last request)`, baseline: '—', ratio: '—', target, met: exportLoopMs === undefined ? null : exportLoopMs <= 50 },
      { id: '12', name: `${name}: remote write`, ours: `${reqs.length} requests, ${mib(rwBytes)} MiB snappy`, baseline: '—', ratio: '—', target: 'every sample sent', met: reqs.length > 0 },
      { id: '12', name: `${name}: scrape of ${series} samples`, ours: `text ${f(text.ms)} ms / ${mib(text.bytes)} MiB; OpenMetrics ${f(om.ms)} ms / ${mib(om.bytes)} MiB; loop delay ${f(scrapeLoopMs, 1)} ms`, baseline: '—', ratio: '—', target: 'loop delay ≤ 50 ms while scraped', met: scrapeLoopMs === undefined ? null : scrapeLoopMs <= 50 },
    ],
    details,
  };
}
