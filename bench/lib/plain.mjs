// Helpers of the plain-sender scenarios (P1–P4, issue 16): a fixed-duration blast without GSO, the
// median of repeats, and the one-line summary of a run that the notes print.
import { loadavg } from 'node:os';
import { QUICK } from './options.mjs';
import { fmtRatio, pct, ratio, si } from './format.mjs';

/** Seconds of each plain-sender blast: the independent measurement's 5 s (2 s quick). */
export const PLAIN_BLAST_SECONDS = Number(process.env.BENCH_PLAIN_SECONDS ?? (QUICK ? 2 : 5));
/** Repeats of each receiver in P1 and P2 (alternating); the median is judged. */
export const PLAIN_REPEATS = Math.max(1, Number(process.env.BENCH_PLAIN_REPEATS ?? (QUICK ? 1 : 3)));

/**
 * A blast bounded by time, not count: far more packets than any sender can send in `seconds`, so the
 * sender stops at its deadline, as a `timeout 5 sender …` run does.
 */
export function blastLoad(payload, warm, lpp, { seconds = PLAIN_BLAST_SECONDS, gso = false } = {}) {
  return { payload, warm, lpp, packets: 1e9, rate: 0, maxSeconds: seconds, gso };
}

/** Median by `key` (the lower middle for an even count, so it is always a real run). */
export function median(runs, key) {
  const s = [...runs].sort((a, b) => a[key] - b[key]);
  return s[Math.floor((s.length - 1) / 2)];
}

/** Lines/s, share delivered and per-CPU-second figures of one run, for the log and the notes. */
export const runLine = (r) =>
  `${si(r.linesPerSec)} lines/s, ${pct(r.receivedFraction)} of ${si(r.offeredLinesPerSec)} offered delivered, ${si(r.linesPerCpuSecond)} lines per server CPU-second (server CPU ${(r.serverCpuBusy * 100).toFixed(0)}%; primary process ${pct(r.primaryCpuSplit.system / (r.primaryCpuSplit.user + r.primaryCpuSplit.system))} system time)`;

/** The 1-, 5- and 15-minute load averages, as a string for the notes: the machine is shared. */
export const loadAvg = () => loadavg().map((x) => x.toFixed(1)).join(' / ');

const cpuOf = (r) => `${si(r.linesPerCpuSecond)} lines/CPU-s`;

/** The RESULTS.md notes of scenarios P1–P4 (issue 16), from the run's details. */
export function plainNotes(d) {
  const out = [];
  const p1 = d.P1;
  if (p1?.medians !== undefined) {
    const m = p1.medians;
    const who = [['ours --workers 1', m.w1], ['ours --workers 2', m.w2], ['collectd', m.collectd], ['etsy statsd', m.etsy]].filter(([, r]) => r !== undefined);
    out.push(`- Scenario P1 (load average 1/5/15 min at its end ${p1.loadAverage}): medians of ${p1.runs.w1.length} — ${who.map(([n, r]) => `${n} ${si(r.linesPerSec)} lines/s, ${pct(r.receivedFraction)} of ${si(r.offeredLinesPerSec)} offered delivered, ${cpuOf(r)}, server CPU ${(r.serverCpuBusy * 100).toFixed(0)}%`).join('; ')}. Per server CPU-second, ours --workers 1 is ${fmtRatio(ratio(m.w1.linesPerCpuSecond, m.collectd?.linesPerCpuSecond))} collectd and ${fmtRatio(ratio(m.w1.linesPerCpuSecond, m.etsy.linesPerCpuSecond))} etsy statsd.`);
  }
  if (d.P2?.median !== undefined) out.push(`- Scenario P2 (load average 1/5/15 min at its end ${d.P2.loadAverage}): ${runLine(d.P2.median)}; cross-checks consistent: ${d.P2.median.consistent ? 'yes' : 'NO'}.`);
  if (d.P3?.ours !== undefined) {
    const s = (b) => (b === undefined ? 'skipped' : b.steps.map((x) => `${si(x.askedLinesPerSec)}→${pct(x.run.receivedFraction)}`).join(', '));
    out.push(`- Scenario P3 (load average 1/5/15 min at its end ${d.P3.loadAverage}): steps of ${d.P3.stepSeconds} s, rate asked → share delivered: ours ${s(d.P3.ours)}; ours with the default receive buffer ${s(d.P3.oursDefault)}; etsy statsd ${s(d.P3.etsy)}; collectd ${s(d.P3.collectd)}.`);
  }
  if (d.P4?.runs !== undefined) {
    const r = d.P4.runs;
    const c = d.P4.counting;
    out.push(`- Scenario P4 (load average 1/5/15 min at its end ${d.P4.loadAverage}): offered by the plain sender ${si(r.plain.offeredLinesPerSec)} lines/s, by the GSO sender ${si(r.gso.offeredLinesPerSec)}; per server CPU-second: plain ${cpuOf(r.plain)}, GSO ${cpuOf(r.gso)}, GSO fixed count ${cpuOf(r.gsoCount)}, default receive buffer ${cpuOf(r.defaultRcvbuf)}, 10 s flush ${cpuOf(r.flush10s)}. The plain run counted other ways: flushed ÷ (sender + drain) ${si(c.flushedOverSenderAndDrain)}, flushed ÷ nominal ${si(c.flushedOverNominalSeconds)}, accepted by the socket ${si(c.acceptedBySocket)}, offered ${si(c.offered)} lines/s.`);
  }
  return out;
}
