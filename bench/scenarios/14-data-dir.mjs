// Scenario 14 (issue 15): the disk buffer's cost. Scenario 1's load and scenario 7's load, each with
// and without `--data-dir`, in the same run. Every window is then encoded, written and fdatasynced
// before its sink sees it: for 1 that is a 1 s window of 1,000 counters (the console sink), for 7 a
// 200k-context window to the stand-in Datadog. Targets: ≥ 0.95× without; 7 still flushes ≤ 2 s with
// loop delay ≤ 50 ms.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writePayload } from '../harness.mjs';
import { LPP, SIZE, TMP, log } from '../lib/options.mjs';
import { best, blastFig, fmtRatio, ratio, si } from '../lib/format.mjs';
import { counterLines } from '../lib/payloads.mjs';
import { counterTally } from '../lib/tally.mjs';
import { oursUdp, slim } from '../lib/udp.mjs';
import { scenario7 } from './7-flush-under-load.mjs';

/** A fresh data directory per run, so no run replays another's windows. */
const dataDir = () => ['--data-dir', mkdtempSync(join(TMP, 's14-data-'))];

async function counters() {
  const payload = writePayload(TMP, 's14.txt', counterLines('bench.s14', 1000));
  const warm = writePayload(TMP, 's14w.txt', counterLines('bench.warm', 1000));
  const load = { payload, warm, lpp: LPP, packets: SIZE.s1Packets, rate: 0 };
  const plain = [];
  const disk = [];
  for (let i = 0; i < SIZE.repeats; i++) {
    plain.push(await oursUdp(load, counterTally('bench.s14.')));
    log(`  without --data-dir: ${si(plain.at(-1).linesPerSec)} lines/s, ${si(plain.at(-1).linesPerCpuSecond)} per CPU-second`);
    const args = dataDir();
    disk.push(await oursUdp(load, counterTally('bench.s14.'), args));
    rmSync(args[1], { recursive: true, force: true });
    log(`  with --data-dir: ${si(disk.at(-1).linesPerSec)} lines/s, ${si(disk.at(-1).linesPerCpuSecond)} per CPU-second`);
  }
  const p = best(plain, 'linesPerSec');
  const d = best(disk, 'linesPerSec');
  const r = ratio(d.linesPerSec, p.linesPerSec);
  const perCpu = ratio(best(disk, 'linesPerCpuSecond').linesPerCpuSecond, best(plain, 'linesPerCpuSecond').linesPerCpuSecond);
  return {
    row: {
      id: '14a',
      name: 'Scenario 1 load (UDP counters, blast) with --data-dir',
      ours: blastFig(d, 'linesPerSec', 'lines/s'),
      baseline: `without ${blastFig(p, 'linesPerSec', 'lines/s')}`,
      ratio: `${fmtRatio(r)} (per CPU-second ${fmtRatio(perCpu)})`,
      target: '≥ 0.95× without',
      met: r >= 0.95,
    },
    details: { plain: plain.map(slim), dataDir: disk.map(slim), ratio: r, perCpuRatio: perCpu },
  };
}

async function flushes() {
  const plain = await scenario7();
  const args = dataDir();
  const disk = await scenario7(args);
  rmSync(args[1], { recursive: true, force: true });
  const p = plain.details;
  const d = disk.details;
  if (p === undefined || d === undefined) return { row: { ...disk.rows[0], id: '14b' }, details: { plain, disk } };
  const received = (x) => x.receivedLines / (x.sender.seconds ?? 1);
  const r = ratio(d.receivedLines, p.receivedLines);
  const loop = d.worstSelfLoopDelayMs;
  return {
    row: {
      id: '14b',
      name: 'Scenario 7 load (200k contexts to a stand-in Datadog) with --data-dir',
      ours: `flush ${d.flushMs.toFixed(0)} ms; loop delay ${loop?.toFixed(0) ?? 'n/a'} ms; lost ${d.lostLines}`,
      baseline: `without: flush ${p.flushMs.toFixed(0)} ms; loop delay ${p.worstSelfLoopDelayMs?.toFixed(0) ?? 'n/a'} ms; lost ${p.lostLines}`,
      ratio: `${fmtRatio(r)} lines delivered`,
      target: '≥ 0.95× without; flush ≤ 2 s; loop delay ≤ 50 ms',
      met: r >= 0.95 && d.flushMs <= 2000 && (loop === undefined ? null : loop <= 50),
    },
    details: { plain: p, dataDir: d, ratio: r, linesPerSecond: { plain: received(p), dataDir: received(d) } },
  };
}

/** Both halves, one row each. */
export async function scenarioDataDir() {
  const a = await counters();
  const b = await flushes();
  return { rows: [a.row, b.row], details: { counters: a.details, flush: b.details } };
}
