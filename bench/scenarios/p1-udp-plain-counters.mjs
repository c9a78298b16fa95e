// Scenario P1 (issue 16): scenario 1's lines from a plain sendmmsg sender (no GSO), blasted for a fixed
// time; ours with --workers 1 and 2 against etsy statsd and collectd's statsd plugin, alternating.
import { writePayload } from '../harness.mjs';
import { LPP, TMP, log } from '../lib/options.mjs';
import { collectdAvailable, collectdUdp } from '../lib/collectd.mjs';
import { fmtRatio, ratio, si } from '../lib/format.mjs';
import { counterLines } from '../lib/payloads.mjs';
import { PLAIN_BLAST_SECONDS, PLAIN_REPEATS, blastLoad, loadAvg, median, runLine } from '../lib/plain.mjs';
import { counterTally } from '../lib/tally.mjs';
import { etsyUdp, oursUdp, slim } from '../lib/udp.mjs';

export async function scenarioPlainCounters() {
  const payload = writePayload(TMP, 'p1.txt', counterLines('bench.p1', 1000));
  const warm = writePayload(TMP, 'p1w.txt', counterLines('bench.warm', 1000));
  const load = blastLoad(payload, warm, LPP);
  const cd = collectdAvailable();
  if (!cd.ok) log(`  collectd baseline skipped: ${cd.why}`);
  const runs = { w1: [], w2: [], etsy: [], collectd: [] };
  for (let i = 0; i < PLAIN_REPEATS; i++) {
    runs.w1.push(await oursUdp(load, counterTally('bench.p1.'), ['--workers', '1']));
    log(`  ours --workers 1: ${runLine(runs.w1.at(-1))}`);
    if (cd.ok) {
      runs.collectd.push(await collectdUdp(load, { prefix: 'bench.p1.' }));
      log(`  collectd ${cd.version}: ${runLine(runs.collectd.at(-1))}`);
    }
    runs.w2.push(await oursUdp(load, counterTally('bench.p1.'), ['--workers', '2']));
    log(`  ours --workers 2: ${runLine(runs.w2.at(-1))}`);
    runs.etsy.push(await etsyUdp(load, { prefix: 'bench.p1.' }));
    log(`  etsy statsd: ${runLine(runs.etsy.at(-1))}`);
  }
  const m = Object.fromEntries(Object.entries(runs).filter(([, v]) => v.length > 0).map(([k, v]) => [k, median(v, 'linesPerSec')]));
  const vsEtsy = ratio(m.w1.linesPerSec, m.etsy.linesPerSec);
  const vsCd = ratio(m.w1.linesPerSec, m.collectd?.linesPerSec);
  const vsCd2 = ratio(m.w2.linesPerSec, m.collectd?.linesPerSec);
  const name = `UDP, 20 counter lines/packet, 1,000 names, plain sendmmsg (no GSO), ${PLAIN_BLAST_SECONDS} s blast, median of ${PLAIN_REPEATS}`;
  const cdFig = m.collectd === undefined ? `collectd skipped (${cd.why})` : `collectd ${si(m.collectd.linesPerSec)} lines/s`;
  return {
    rows: [
      { id: 'P1', name: `${name}, --workers 1`, ours: `${si(m.w1.linesPerSec)} lines/s`, baseline: `etsy statsd ${si(m.etsy.linesPerSec)} lines/s; ${cdFig}`, ratio: `${fmtRatio(vsEtsy)} etsy; ${fmtRatio(vsCd)} collectd`, target: '≥ 5× etsy statsd, ≥ 1.0× collectd', met: vsEtsy >= 5 && vsCd >= 1 },
      { id: 'P1', name: `${name}, --workers 2`, ours: `${si(m.w2.linesPerSec)} lines/s`, baseline: cdFig, ratio: `${fmtRatio(vsCd2)} collectd`, target: 'reported (no target)', met: null },
    ],
    details: { loadAverage: loadAvg(), blastSeconds: PLAIN_BLAST_SECONDS, collectd: cd, medians: Object.fromEntries(Object.entries(m).map(([k, v]) => [k, slim(v)])), runs: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map(slim)])) },
  };
}
