// The report: the console table, the RESULTS.md table and its notes.
import { LPP, SUSTAINED_RATE, SUSTAINED_SECONDS, UDP_RECV_BUFFER } from './options.mjs';
import { best, fmtRatio, kib, mib, ratio, si } from './format.mjs';
import { plainNotes } from './plain.mjs';

export function table(rows) {
  const cols = [
    ['#', (r) => r.id],
    ['Scenario', (r) => r.name],
    ['Ours', (r) => r.ours],
    ['Baseline', (r) => r.baseline],
    ['Ratio', (r) => r.ratio],
    ['Target', (r) => r.target],
    ['Met', (r) => (r.met === true ? 'yes' : r.met === false ? 'no' : '—')],
  ];
  const cells = rows.map((r) => cols.map(([, f]) => String(f(r))));
  const widths = cols.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (vals) => vals.map((v, i) => v.padEnd(widths[i])).join('  ');
  return [line(cols.map(([h]) => h)), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export function markdownTable(rows) {
  const esc = (s) => String(s).replace(/\|/g, '\\|');
  const out = ['| # | Scenario | Ours | Baseline (same run) | Ratio | Target | Met |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) out.push(`| ${r.id} | ${esc(r.name)} | ${esc(r.ours)} | ${esc(r.baseline)} | ${esc(r.ratio)} | ${esc(r.target)} | ${r.met === true ? 'yes' : r.met === false ? 'no' : '—'} |`);
  return out.join('\n');
}

export function resultsMarkdown(report) {
  const m = report.machine;
  const notes = [];
  notes.push(`- Load generator: ${report.sender}.`);
  notes.push(`- UDP receive buffers: ours and the null receiver ask for ${UDP_RECV_BUFFER} bytes; the kernel granted ${report.grantedRecvBuffer ?? 'n/a'} (net.core.rmem_max = ${m.rmemMax}). etsy statsd has no such option and runs with the default (${m.rmemDefault}).`);
  for (const r of report.rows) if (r.note !== undefined) notes.push(`- Scenario ${r.id} skipped: ${r.note}`);
  const d = report.details;
  const cpuNote = (x, unit = 'lines') => `${si(x.linesPerCpuSecond)} ${unit} per server CPU-second (CPU ${(x.serverCpuBusy * 100).toFixed(0)}% of the run, all threads)`;
  if (d['1']?.ours !== undefined) {
    const o = best(d['1'].ours, 'linesPerSec');
    const e = best(d['1'].etsy, 'linesPerSec');
    notes.push(`- Scenario 1: offered ${si(o.offeredLinesPerSec)} lines/s. Ours ${cpuNote(o)}; etsy statsd ${cpuNote(e)} (per CPU-second ratio ${fmtRatio(ratio(o.linesPerCpuSecond, e.linesPerCpuSecond))}). The null dgram receiver reached ${si(d['1'].nullReceiver.linesPerSec)} lines/s; ours is ${fmtRatio(d['1'].oursVsNull)} of it. Every sent line was either flushed or counted as a kernel drop (unaccounted: ${o.unaccountedLines}).`);
  }
  if (d['2']?.ours !== undefined) {
    const o = best(d['2'].ours, 'linesPerSec');
    notes.push(`- Scenario 2: ours ${cpuNote(o)}, ${fmtRatio(d['2'].oursVsNull)} of the null receiver (${si(d['2'].nullReceiver.linesPerSec)} lines/s). Received lines = 20 × (Σ\`c\` / 4), cross-checked with the \`h\`/\`ms\` \`.count\` and \`d\` counts (consistent: ${o.consistent ? 'yes' : 'NO'}).`);
  }
  if (d['3']?.ours !== undefined) {
    const o = best(d['3'].ours, 'packetsPerSec');
    const n = best(d['3'].nullReceiver, 'packetsPerSec');
    notes.push(`- Scenario 3: offered ${si(o.offeredPacketsPerSec)} packets/s. Ours ${cpuNote(o, 'packets')}; null receiver ${cpuNote(n, 'packets')} (per CPU-second ratio ${fmtRatio(ratio(o.linesPerCpuSecond, n.linesPerCpuSecond))}).`);
  }
  if (d['4']?.ours !== undefined) {
    const o = d['4'].ours;
    const e = d['4'].etsy;
    notes.push(`- Scenario 4: the sender achieved ${si(o.offeredLinesPerSec)} lines/s. Ours: ${o.lostLines} lost of ${o.sender.lines}, socket drops ${o.socketDrops}, machine-wide RcvbufErrors delta ${o.kernelRcvbufErrors}, peak receive queue ${mib(o.maxRxQueueBytes)}, server CPU ${(o.serverCpuBusy * 100).toFixed(0)}% of the run. etsy statsd (${d['4'].etsySeconds} s, default receive buffer): ${e.lostLines} lost of ${e.sender.lines}, socket drops ${e.socketDrops}.`);
  }
  if (d['5']?.ours !== undefined) notes.push(`- Scenario 5: ${si(d['5'].ours.sentLines)} lines written on 4 connections, ${d['5'].ours.lostLines} lost; server CPU ${d['5'].ours.serverCpuSeconds.toFixed(1)} s over ${d['5'].ours.seconds.toFixed(1)} s. The null receiver is bound by the Node client writing 64 KiB blocks; the target is absolute.`);
  if (d['6']?.ours !== undefined) notes.push(`- Scenario 6: ours answered ${JSON.stringify(d['6'].ours.statuses)} to ${d['6'].ours.issued} requests and flushed ${d['6'].ours.receivedLogLines} of ${d['6'].ours.sentLogLines} log lines (server CPU ${d['6'].ours.serverCpuSeconds.toFixed(1)} s over ${d['6'].ours.seconds.toFixed(1)} s)${d['6'].fastify !== undefined ? `; the empty fastify ${d['6'].fastify.fastify} route answered ${JSON.stringify(d['6'].fastify.statuses)} in ${d['6'].fastify.seconds.toFixed(1)} s` : ''}.`);
  if (d['7'] !== undefined && d['7'].flushes !== undefined) {
    const f7 = d['7'];
    notes.push(`- Scenario 7: flush duration = arrival of the window's last payload at the stand-in minus the window boundary (per window: ${f7.flushes.map((f) => `${f.durationMs.toFixed(0)} ms`).join(', ')}; ${f7.flushes.map((f) => si(f.series)).join(', ')} series); in-process flush_duration_ms self-metric: ${f7.selfFlushDurationMs.length > 0 ? f7.selfFlushDurationMs.map((x) => x.toFixed(0)).join(', ') + ' ms' : 'not found in the payloads'}. Sent ${f7.sender.lines} lines; socket drops ${f7.socketDrops} datagrams (${f7.socketDrops * LPP} lines); peak receive queue per window ${f7.flushes.map((f) => mib(f.maxRxQueueBytes)).join(', ')} of the ${mib(report.grantedRecvBuffer)} buffer.${f7.worstSelfLoopDelayMs !== undefined ? ` Event-loop delay (judged) is the server's own metrics_distributor.event_loop_delay_max_ms (perf_hooks, max per window, net of its 10 ms sampling period): ${f7.selfLoopDelayMaxMs.map((x) => x.toFixed(0)).join(', ')} ms.` : ''}${f7.worstHealthzMs !== undefined ? ` The worst GET /healthz round trip (every 10 ms on one keep-alive connection, so it adds HTTP handling and the probe's own scheduling) was ${f7.worstHealthzMs.toFixed(0)} ms.` : ''}${f7.worstSelfLoopDelayMs === undefined && f7.worstHealthzMs === undefined ? ' Event-loop delay could not be measured.' : ''}`);
  }
  if (d['8']?.contexts !== undefined) notes.push(`- Scenario 8a: RSS read from /proc/<pid>/status 1.5 s after the last line, in one open 1-hour window; idle RSS ${mib(d['8'].contexts.ours.idleRss)} (etsy statsd ${mib(d['8'].contexts.etsy.idleRss)}), so about ${si(d['8'].contexts.ours.bytesPerContext)} bytes per context (etsy statsd ${si(d['8'].contexts.etsy.bytesPerContext)}; it keeps \`h\` and \`d\` lines as plain counters).`);
  if (d['8']?.heavyHistogram !== undefined) {
    const hh = d['8'].heavyHistogram;
    notes.push(`- Scenario 8b: the server's RSS grew ${kib(hh.server.delta)} over 1M \`h\` samples to one context, ${Number.isFinite(hh.control.delta) ? `and ${kib(hh.control.delta)} over 1M counter lines (control)` : '(no control run in a quick run)'}: V8 heap growth from parsing dominates, so one histogram cannot be resolved from RSS. The judged figure is in-process, after a full GC: the array buffers retained per HistogramAgg fed 1M samples (${kib(hh.inProcess.arrayBufferBytesPerInstance)}, exact, over ${hh.inProcess.instances} instances) plus its JS objects on the V8 heap (${kib(hh.inProcess.heapBytesPerInstance)}, over 2,000 instances in the same sketch mode).`);
  }
  if (d['9']?.workers1 !== undefined) {
    const o1 = best(d['9'].workers1, 'linesPerSec');
    const o2 = best(d['9'].workers2, 'linesPerSec');
    notes.push(`- Scenario 9: the C sender takes one of the ${m.nproc} cores, so both workers and the primary share what is left. --workers 1: ${cpuNote(o1)}, ${o1.lostLines} lines lost. --workers ${d['9'].workers}: ${cpuNote(o2)} (primary and workers), ${o2.lostLines} lines lost.`);
  }
  notes.push(...plainNotes(d));
  return `# Benchmark results

Generated by \`bench/run.mjs\` on ${report.date}${report.quick ? ' (BENCH_QUICK=1: shortened run)' : ''}. Every figure is measured in the
same run as its baseline; compare ratios, not absolute numbers, across machines.

**Machine:** ${m.nproc} CPUs (nproc), ${m.cpu}, Node ${m.node}, Linux ${m.kernel ?? 'n/a'}.

**Commands:**

\`\`\`sh
npx -y pnpm@10.34.9 install --frozen-lockfile
npx -y pnpm@10.34.9 bench                  # full run, about 10 minutes
BENCH_QUICK=1 npx -y pnpm@10.34.9 bench    # shortened, about 4 minutes
\`\`\`

This run: \`${['node bench/run.mjs', ...report.args].join(' ')}\`${report.quick ? ' with BENCH_QUICK=1' : ''}${process.env.BENCH_SERVER_ARGS ? ` and BENCH_SERVER_ARGS="${process.env.BENCH_SERVER_ARGS}"` : ''} (sustained ${si(SUSTAINED_RATE)} lines/s for ${SUSTAINED_SECONDS} s), ${report.totalSeconds.toFixed(0)} s in all.

${markdownTable(report.rows)}

Notes:

${notes.join('\n')}

How each figure is measured and how loss is counted: [README.md](README.md). Raw figures: \`bench/results/latest.json\` (not committed).
`;
}
