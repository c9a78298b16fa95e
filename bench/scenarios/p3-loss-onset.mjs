// Scenario P3 (issue 16): the rate at which loss begins, for ours (--workers 1), etsy statsd and
// collectd: the plain sender paced at a fixed rate for a few seconds, bisected geometrically.
import { writePayload } from '../harness.mjs';
import { LPP, QUICK, TMP, log } from '../lib/options.mjs';
import { collectdAvailable, collectdUdp } from '../lib/collectd.mjs';
import { fmtRatio, pct, ratio, si } from '../lib/format.mjs';
import { loadAvg } from '../lib/plain.mjs';
import { counterLines } from '../lib/payloads.mjs';
import { counterTally } from '../lib/tally.mjs';
import { etsyUdp, oursUdp, slim } from '../lib/udp.mjs';

const env = process.env;
/** Seconds per paced step. */
const STEP_SECONDS = Number(env.BENCH_ONSET_SECONDS ?? (QUICK ? 1.5 : 3));
/** Bisection steps per receiver after the two bounds are checked. */
const STEPS = Number(env.BENCH_ONSET_STEPS ?? (QUICK ? 3 : 5));
/** A step counts as lossy above this share of sent lines lost. */
const LOSS_THRESHOLD = 0.001;
/** A step only counts if the sender reached this share of the asked rate; else the machine, not the receiver, limited it. */
const SENDER_OK = 0.97;

/**
 * Geometric bisection between a rate assumed clean and one assumed lossy (both checked first).
 * Resolves { cleanLinesPerSec, lossyLinesPerSec, deliveredAtLossy, steps }.
 */
async function bisect(label, runAt, lo, hi) {
  const steps = [];
  const step = async (lps) => {
    const r = await runAt(lps);
    const lossy = r.lostLines / r.sender.lines > LOSS_THRESHOLD;
    const paced = r.offeredLinesPerSec >= SENDER_OK * lps;
    steps.push({ askedLinesPerSec: lps, lossy, senderReachedRate: paced, run: slim(r) });
    log(`  ${label} at ${si(lps)} lines/s (sender ${si(r.offeredLinesPerSec)}): ${pct(r.receivedFraction)} delivered, socket drops ${r.socketDrops}${lossy ? ' — LOSS' : ''}${paced ? '' : ' (sender short of the rate)'}`);
    return { lossy, r };
  };
  let clean = { lps: lo, r: undefined };
  let lossy = { lps: hi, r: undefined };
  const first = await step(lo);
  if (first.lossy) return { cleanLinesPerSec: 0, lossyLinesPerSec: lo, deliveredAtLossy: first.r.receivedFraction, steps };
  clean.r = first.r;
  const top = await step(hi);
  if (!top.lossy) return { cleanLinesPerSec: hi, lossyLinesPerSec: undefined, deliveredAtLossy: undefined, steps };
  lossy.r = top.r;
  for (let i = 0; i < STEPS; i++) {
    const mid = Math.round(Math.sqrt(clean.lps * lossy.lps) / 10_000) * 10_000;
    if (mid <= clean.lps || mid >= lossy.lps) break;
    const s = await step(mid);
    if (s.lossy) lossy = { lps: mid, r: s.r };
    else clean = { lps: mid, r: s.r };
  }
  return { cleanLinesPerSec: clean.lps, lossyLinesPerSec: lossy.lps, deliveredAtLossy: lossy.r.receivedFraction, cleanLinesPerCpuSecond: clean.r.linesPerCpuSecond, steps };
}

const fig = (b) => (b.lossyLinesPerSec === undefined ? `no loss up to ${si(b.cleanLinesPerSec)}` : `loss begins between ${si(b.cleanLinesPerSec)} and ${si(b.lossyLinesPerSec)} lines/s (${pct(b.deliveredAtLossy)} delivered at ${si(b.lossyLinesPerSec)})`);

export async function scenarioLossOnset() {
  const payload = writePayload(TMP, 'p3.txt', counterLines('bench.p3', 1000));
  const warm = writePayload(TMP, 'p3w.txt', counterLines('bench.warm', 1000));
  const load = (lps) => ({ payload, warm, lpp: LPP, packets: Math.round((lps / LPP) * STEP_SECONDS), rate: Math.round(lps / LPP), maxSeconds: STEP_SECONDS * 2 + 5, gso: false });
  const ours = await bisect('ours', (lps) => oursUdp(load(lps), counterTally('bench.p3.'), ['--workers', '1']), 200_000, 6_000_000);
  // Ours again with the kernel-default receive buffer, the one etsy statsd and collectd run with.
  const oursDefault = await bisect('ours, default receive buffer', (lps) => oursUdp(load(lps), counterTally('bench.p3.'), ['--workers', '1', '--statsd-udp-recv-buffer-bytes', '0']), 20_000, 6_000_000);
  const etsy = await bisect('etsy statsd', (lps) => etsyUdp(load(lps), { prefix: 'bench.p3.' }), 50_000, 2_000_000);
  const cd = collectdAvailable();
  const collectd = cd.ok ? await bisect('collectd', (lps) => collectdUdp(load(lps), { prefix: 'bench.p3.' }), 20_000, 6_000_000) : undefined;
  const onset = (b) => b?.cleanLinesPerSec;
  return {
    rows: [{
      id: 'P3',
      name: `UDP counters, plain sender paced for ${STEP_SECONDS} s a step: highest rate with ≤ 0.1 % lost, --workers 1`,
      ours: `${fig(ours)}; with the default receive buffer: ${fig(oursDefault)}`,
      baseline: `etsy statsd: ${fig(etsy)}; collectd: ${collectd === undefined ? `skipped (${cd.why})` : fig(collectd)}`,
      ratio: `${fmtRatio(ratio(onset(ours), onset(etsy)))} etsy; ${fmtRatio(ratio(onset(ours), onset(collectd)))} collectd`,
      target: 'reported (no target)',
      met: null,
    }],
    details: { loadAverage: loadAvg(), stepSeconds: STEP_SECONDS, lossThreshold: LOSS_THRESHOLD, ours, oursDefault, etsy, collectd },
  };
}
