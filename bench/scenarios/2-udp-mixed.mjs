// Scenario 2: UDP mixed DogStatsD (c g ms@0.5 h s d, 2 tags), 20 lines per packet, blast.
import { writePayload } from '../harness.mjs';
import { LPP, SIZE, TMP, log } from '../lib/options.mjs';
import { best, blastFig, fmtRatio, ratio, si } from '../lib/format.mjs';
import { mixedLines } from '../lib/payloads.mjs';
import { mixedTally } from '../lib/tally.mjs';
import { etsyUdp, nullUdp, oursUdp, slim } from '../lib/udp.mjs';

export async function scenario2() {
  const payload = writePayload(TMP, 's2.txt', mixedLines('bench.s2', 1000, 20));
  const warm = writePayload(TMP, 's2w.txt', mixedLines('bench.warm', 1000, 20));
  const load = { payload, warm, lpp: LPP, packets: SIZE.s2Packets, rate: 0 };
  const ours = [];
  const etsy = [];
  for (let i = 0; i < SIZE.repeats; i++) {
    ours.push(await oursUdp(load, mixedTally('bench.s2')));
    log(`  ours: ${si(ours.at(-1).linesPerSec)} lines/s (checks ${JSON.stringify(ours.at(-1).checks)} vs ${ours.at(-1).packets} packets)`);
    etsy.push(await etsyUdp(load, { prefix: 'bench.s2.c.', timerPrefix: 'bench.s2.ms.', mixed: true }));
    log(`  etsy statsd: ${si(etsy.at(-1).linesPerSec)} lines/s`);
  }
  const nul = await nullUdp(load);
  log(`  null dgram receiver: ${si(nul.linesPerSec)} lines/s`);
  const o = best(ours, 'linesPerSec');
  const e = best(etsy, 'linesPerSec');
  return {
    rows: [{ id: '2', name: 'UDP, mixed DogStatsD (c g ms@0.5 h s d, 2 tags), 20 lines/packet, blast', ours: blastFig(o, 'linesPerSec', 'lines/s'), baseline: `etsy statsd ${blastFig(e, 'linesPerSec', 'lines/s')}`, ratio: fmtRatio(ratio(o.linesPerSec, e.linesPerSec)), target: '≥ 1.5M lines/s', met: o.linesPerSec >= 1.5e6 && o.consistent }],
    details: { ours: ours.map(slim), etsy: etsy.map(slim), nullReceiver: slim(nul), oursVsNull: ratio(o.linesPerSec, nul.linesPerSec) },
  };
}
