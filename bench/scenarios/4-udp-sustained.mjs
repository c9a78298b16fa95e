// Scenario 4: sustained UDP load at a paced rate; nothing may be lost.
import { writePayload } from '../harness.mjs';
import { LPP, SIZE, SUSTAINED_RATE, SUSTAINED_SECONDS, TMP, log } from '../lib/options.mjs';
import { fmtRatio, pct, ratio, si } from '../lib/format.mjs';
import { counterLines } from '../lib/payloads.mjs';
import { counterTally } from '../lib/tally.mjs';
import { etsyUdp, oursUdp, slim } from '../lib/udp.mjs';

export async function scenario4() {
  const payload = writePayload(TMP, 's4.txt', counterLines('bench.s4', 1000));
  const pps = SUSTAINED_RATE / LPP;
  const load = { payload, lpp: LPP, packets: Math.round(pps * SUSTAINED_SECONDS), rate: pps, maxSeconds: SUSTAINED_SECONDS * 1.5 + 10 };
  const o = await oursUdp(load, counterTally('bench.s4.'));
  log(`  ours: sent ${si(o.sender.lines)} lines at ${si(o.offeredLinesPerSec)}/s, lost ${o.lostLines}, kernel drops ${o.socketDrops}`);
  const etsySeconds = Math.min(SUSTAINED_SECONDS, SIZE.etsySustainedMax);
  const e = await etsyUdp({ ...load, packets: Math.round(pps * etsySeconds), maxSeconds: etsySeconds * 1.5 + 10 }, { prefix: 'bench.s4.' });
  log(`  etsy statsd (${etsySeconds} s): lost ${e.lostLines} of ${e.sender.lines} (${pct(1 - e.receivedFraction)})`);
  const rateOk = o.offeredLinesPerSec >= SUSTAINED_RATE * 0.98;
  return {
    rows: [{
      id: '4',
      name: `UDP sustained ${si(SUSTAINED_RATE)} lines/s for ${SUSTAINED_SECONDS} s`,
      ours: `lost ${o.lostLines} of ${si(o.sender.lines)} (${pct(1 - o.receivedFraction)})`,
      baseline: `etsy statsd lost ${pct(1 - e.receivedFraction)} (${etsySeconds} s)`,
      ratio: `${fmtRatio(ratio(o.receivedFraction, e.receivedFraction))} delivered`,
      target: '0 lost',
      met: o.lostLines === 0 && rateOk,
    }],
    details: { ours: slim(o), etsy: slim(e), senderReachedRate: rateOk, etsySeconds },
  };
}
