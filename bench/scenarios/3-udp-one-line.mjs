// Scenario 3: UDP, one line per packet, blast; ours against the null dgram receiver.
import { writePayload } from '../harness.mjs';
import { SIZE, TMP, log } from '../lib/options.mjs';
import { best, blastFig, fmtRatio, ratio, si } from '../lib/format.mjs';
import { counterLines } from '../lib/payloads.mjs';
import { counterTally } from '../lib/tally.mjs';
import { nullUdp, oursUdp, slim } from '../lib/udp.mjs';

export async function scenario3() {
  const payload = writePayload(TMP, 's3.txt', counterLines('bench.s3', 1000));
  const warm = writePayload(TMP, 's3w.txt', counterLines('bench.warm', 1000));
  const load = { payload, warm, lpp: 1, packets: SIZE.s3Packets, rate: 0 };
  const ours = [];
  const nul = [];
  for (let i = 0; i < SIZE.repeats; i++) {
    ours.push(await oursUdp(load, counterTally('bench.s3.')));
    log(`  ours: ${si(ours.at(-1).packetsPerSec)} packets/s`);
    nul.push(await nullUdp(load));
    log(`  null dgram receiver: ${si(nul.at(-1).packetsPerSec)} packets/s`);
  }
  const o = best(ours, 'packetsPerSec');
  const n = best(nul, 'packetsPerSec');
  const r = ratio(o.packetsPerSec, n.packetsPerSec);
  return {
    rows: [{ id: '3', name: 'UDP, 1 line/packet, blast', ours: blastFig(o, 'packetsPerSec', 'packets/s'), baseline: `null dgram ${blastFig(n, 'packetsPerSec', 'packets/s')}`, ratio: fmtRatio(r), target: '≥ 0.9× null receiver', met: r >= 0.9 }],
    details: { ours: ours.map(slim), nullReceiver: nul.map(slim) },
  };
}
