// Scenario 10: scenario 1's load with 50 mapping rules and a 100-entry filter list loaded, against the
// same run without them. The transform runs once per new name (the raw index then finds the mapped
// context), so the steady state should cost (almost) nothing: target ≥ 0.9×.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writePayload } from '../harness.mjs';
import { LPP, SIZE, TMP, log } from '../lib/options.mjs';
import { best, blastFig, fmtRatio, ratio, si } from '../lib/format.mjs';
import { counterLines } from '../lib/payloads.mjs';
import { counterTally } from '../lib/tally.mjs';
import { oursUdp, slim } from '../lib/udp.mjs';

/**
 * A config of 50 mappings (49 that never match, wildcard and regex mixed, tried first, then the one
 * that maps every bench name) and 100 blocked prefixes, none of which the bench names hit.
 */
function transformConfig() {
  const mappings = [];
  for (let i = 0; i < 49; i++) {
    mappings.push(i % 2 === 0 ? { match: `bench.s10.never${i}.*.*`, name: `never.${i}.$1`, tags: { part: '$2' } } : { match: `bench\\.s10\\.never${i}\\.([a-z]+)\\.(\\d+)`, match_type: 'regex', name: `never.${i}`, tags: { a: '$1', b: '$2' } });
  }
  mappings.push({ match: 'bench.s10.*', name: 'bench.s10m.$1', tags: { mapped: 'yes' } });
  const config = {
    dogstatsd_mapper_profiles: [{ name: 'bench', prefix: 'bench.', mappings }],
    metric_filterlist: Array.from({ length: 100 }, (_, i) => `blocked.prefix${i}.`),
    metric_filterlist_match_prefix: true,
  };
  const path = join(TMP, 's10-transform.json');
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/** Alternates runs with and without the transform, best of each. */
export async function scenarioTransform() {
  const payload = writePayload(TMP, 's10.txt', counterLines('bench.s10', 1000));
  const warm = writePayload(TMP, 's10w.txt', counterLines('bench.warm', 1000));
  const load = { payload, warm, lpp: LPP, packets: SIZE.s1Packets, rate: 0 };
  const config = transformConfig();
  const plain = [];
  const mapped = [];
  for (let i = 0; i < SIZE.repeats; i++) {
    plain.push(await oursUdp(load, counterTally('bench.s10.')));
    log(`  no transform: ${si(plain.at(-1).linesPerSec)} lines/s, ${si(plain.at(-1).linesPerCpuSecond)} per CPU-second`);
    mapped.push(await oursUdp(load, counterTally('bench.s10m.'), ['--config', config]));
    log(`  50 mappings + 100 filters: ${si(mapped.at(-1).linesPerSec)} lines/s, ${si(mapped.at(-1).linesPerCpuSecond)} per CPU-second`);
  }
  const p = best(plain, 'linesPerSec');
  const m = best(mapped, 'linesPerSec');
  const r = ratio(m.linesPerSec, p.linesPerSec);
  const perCpu = ratio(best(mapped, 'linesPerCpuSecond').linesPerCpuSecond, best(plain, 'linesPerCpuSecond').linesPerCpuSecond);
  return {
    rows: [
      {
        id: '10',
        name: 'UDP, scenario 1 load, 50 mapping rules + 100-entry filter list',
        ours: blastFig(m, 'linesPerSec', 'lines/s'),
        baseline: `no transform ${blastFig(p, 'linesPerSec', 'lines/s')}`,
        ratio: fmtRatio(r),
        target: '≥ 0.9× without',
        met: r >= 0.9,
        note: `per server CPU-second: ${si(best(mapped, 'linesPerCpuSecond').linesPerCpuSecond)} with the transform, ${si(best(plain, 'linesPerCpuSecond').linesPerCpuSecond)} without (${fmtRatio(perCpu)}).`,
      },
    ],
    details: { plain: plain.map(slim), mapped: mapped.map(slim), perCpuSecondRatio: perCpu },
  };
}
