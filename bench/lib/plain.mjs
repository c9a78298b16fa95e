// Helpers of the plain-sender scenarios (P1–P4, issue 16): a fixed-duration blast without GSO, the
// median of repeats, and the one-line summary of a run that the notes print.
import { QUICK } from './options.mjs';
import { pct, si } from './format.mjs';

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
  `${si(r.linesPerSec)} lines/s, ${pct(r.receivedFraction)} of ${si(r.offeredLinesPerSec)} offered delivered, ${si(r.linesPerCpuSecond)} lines per server CPU-second (server CPU ${(r.serverCpuBusy * 100).toFixed(0)}%)`;
