// Scenario 1: UDP counters, 20 lines per packet over 1,000 names, blast; ours against etsy statsd.
import { writePayload } from '../harness.mjs';
import { LPP, SIZE, TMP, log } from '../lib/options.mjs';
import { best, blastFig, fmtRatio, ratio, si } from '../lib/format.mjs';
import { counterLines } from '../lib/payloads.mjs';
import { counterTally } from '../lib/tally.mjs';
import { etsyUdp, nullUdp, oursUdp, slim } from '../lib/udp.mjs';

export async function scenario1() {
  const payload = writePayload(TMP, 's1.txt', counterLines('bench.s1', 1000));
  const warm = writePayload(TMP, 's1w.txt', counterLines('bench.warm', 1000));
  const load = { payload, warm, lpp: LPP, packets: SIZE.s1Packets, rate: 0 };
  const ours = [];
  const etsy = [];
  for (let i = 0; i < SIZE.repeats; i++) {
    ours.push(await oursUdp(load, counterTally('bench.s1.')));
    log(`  ours: ${si(ours.at(-1).linesPerSec)} lines/s`);
    etsy.push(await etsyUdp(load, { prefix: 'bench.s1.' }));
    log(`  etsy statsd: ${si(etsy.at(-1).linesPerSec)} lines/s`);
  }
  const nul = await nullUdp(load);
  log(`  null dgram receiver: ${si(nul.linesPerSec)} lines/s`);
  const o = best(ours, 'linesPerSec');
  const e = best(etsy, 'linesPerSec');
  const r = ratio(o.linesPerSec, e.linesPerSec);
  return {
    rows: [{ id: '1', name: 'UDP, 20 counter lines/packet, 1,000 names, blast', ours: blastFig(o, 'linesPerSec', 'lines/s'), baseline: `etsy statsd ${blastFig(e, 'linesPerSec', 'lines/s')}`, ratio: fmtRatio(r), target: '≥ 4× etsy statsd', met: r >= 4 }],
    details: { ours: ours.map(slim), etsy: etsy.map(slim), nullReceiver: slim(nul), oursVsNull: ratio(o.linesPerSec, nul.linesPerSec) },
  };
}
