// Scenario 9: scenario 1's load through --workers N against --workers 1.
import { writePayload } from '../harness.mjs';
import { LPP, SIZE, TMP, log } from '../lib/options.mjs';
import { best, blastFig, fmtRatio, ratio, si } from '../lib/format.mjs';
import { counterLines } from '../lib/payloads.mjs';
import { counterTally } from '../lib/tally.mjs';
import { oursUdp, slim } from '../lib/udp.mjs';

const env = process.env;

/** Scenario 1's load through `--workers N` (BENCH_WORKERS, default 2) against `--workers 1`, alternating, best of each. */
export async function scenarioWorkers() {
  const W = Number(env.BENCH_WORKERS ?? '2');
  const name = `UDP, scenario 1 load, --workers ${W} vs --workers 1`;
  const target = 'reported (no target)';
  const payload = writePayload(TMP, 's9.txt', counterLines('bench.s9', 1000));
  const warm = writePayload(TMP, 's9w.txt', counterLines('bench.warm', 1000));
  const load = { payload, warm, lpp: LPP, packets: SIZE.s1Packets, rate: 0 };
  const one = [];
  const two = [];
  for (let i = 0; i < SIZE.repeats; i++) {
    one.push(await oursUdp(load, counterTally('bench.s9.'), ['--workers', '1']));
    log(`  --workers 1: ${si(one.at(-1).linesPerSec)} lines/s`);
    two.push(await oursUdp(load, counterTally('bench.s9.'), ['--workers', String(W)]));
    log(`  --workers ${W}: ${si(two.at(-1).linesPerSec)} lines/s`);
  }
  const o1 = best(one, 'linesPerSec');
  const o2 = best(two, 'linesPerSec');
  const r = ratio(o2.linesPerSec, o1.linesPerSec);
  return {
    rows: [{ id: '9', name, ours: `--workers ${W}: ${blastFig(o2, 'linesPerSec', 'lines/s')}`, baseline: `--workers 1: ${blastFig(o1, 'linesPerSec', 'lines/s')}`, ratio: fmtRatio(r), target, met: null }],
    details: { workers: W, workers1: one.map(slim), workers2: two.map(slim) },
  };
}
