// Scenario P2 (issue 16): scenario 2's mixed DogStatsD packets from the plain sendmmsg sender, fixed
// time, ours only: etsy statsd and collectd cannot take DogStatsD tags.
import { writePayload } from '../harness.mjs';
import { LPP, TMP, log } from '../lib/options.mjs';
import { si } from '../lib/format.mjs';
import { mixedLines } from '../lib/payloads.mjs';
import { PLAIN_BLAST_SECONDS, PLAIN_REPEATS, blastLoad, loadAvg, median, runLine } from '../lib/plain.mjs';
import { mixedTally } from '../lib/tally.mjs';
import { oursUdp, slim } from '../lib/udp.mjs';

export async function scenarioPlainMixed() {
  const payload = writePayload(TMP, 'p2.txt', mixedLines('bench.p2', 1000, 20));
  const warm = writePayload(TMP, 'p2w.txt', mixedLines('bench.warm', 1000, 20));
  const load = blastLoad(payload, warm, LPP);
  const ours = [];
  for (let i = 0; i < PLAIN_REPEATS; i++) {
    ours.push(await oursUdp(load, mixedTally('bench.p2'), ['--workers', '1']));
    log(`  ours --workers 1: ${runLine(ours.at(-1))} (consistent: ${ours.at(-1).consistent})`);
  }
  const o = median(ours, 'linesPerSec');
  return {
    rows: [{ id: 'P2', name: `UDP, mixed DogStatsD (c g ms@0.5 h s d, 2 tags), plain sendmmsg, ${PLAIN_BLAST_SECONDS} s blast, --workers 1, median of ${PLAIN_REPEATS}`, ours: `${si(o.linesPerSec)} lines/s`, baseline: 'none (etsy and collectd cannot parse DogStatsD tags)', ratio: '—', target: '≥ 1.5M lines/s', met: o.linesPerSec >= 1.5e6 && o.consistent }],
    details: { loadAverage: loadAvg(), median: slim(o), runs: ours.map(slim) },
  };
}
