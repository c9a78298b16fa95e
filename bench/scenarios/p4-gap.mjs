// Scenario P4 (issue 16): why scenario 1 (GSO sender) and the plain-sender figures differ. Ours with
// --workers 1 under one load per candidate, changing one thing at a time from the plain 5 s blast.
// The last two rows are the candidate of the fix: the UDP reader (`auto`, the reference, runs the batch
// reader where its addon is built), forced to node:dgram and to the recvmmsg batch reader.
import { writePayload } from '../harness.mjs';
import { LPP, SIZE, TMP, log } from '../lib/options.mjs';
import { fmtRatio, ratio, si } from '../lib/format.mjs';
import { counterLines } from '../lib/payloads.mjs';
import { PLAIN_BLAST_SECONDS, blastLoad, loadAvg, runLine } from '../lib/plain.mjs';
import { counterTally } from '../lib/tally.mjs';
import { oursUdp, slim } from '../lib/udp.mjs';

export async function scenarioGap() {
  const payload = writePayload(TMP, 'p4.txt', counterLines('bench.p4', 1000));
  const warm = writePayload(TMP, 'p4w.txt', counterLines('bench.warm', 1000));
  const plain = blastLoad(payload, warm, LPP);
  const variants = [
    ['plain', `plain sendmmsg, ${PLAIN_BLAST_SECONDS} s blast (the reference)`, plain, []],
    ['gso', `GSO sender, same ${PLAIN_BLAST_SECONDS} s blast`, { ...plain, gso: true }, []],
    ['gsoCount', 'GSO sender, scenario 1 as shipped (fixed packet count)', { payload, warm, lpp: LPP, packets: SIZE.s1Packets, rate: 0, gso: true }, []],
    ['defaultRcvbuf', 'plain, kernel-default receive buffer', plain, ['--statsd-udp-recv-buffer-bytes', '0']],
    ['flush10s', 'plain, --flush-interval 10s', plain, ['--flush-interval', '10s']],
    ['dgramReader', 'plain, dgram reader (--statsd-udp-reader dgram)', plain, ['--statsd-udp-reader', 'dgram']],
    ['batchReader', 'plain, batch reader (--statsd-udp-reader batch)', plain, ['--statsd-udp-reader', 'batch']],
  ];
  const runs = {};
  for (const [key, label, load, extra] of variants) {
    runs[key] = await oursUdp(load, counterTally('bench.p4.'), ['--workers', '1', ...extra]);
    log(`  ${label}: ${runLine(runs[key])}`);
  }
  const p = runs.plain;
  // The same plain run counted three other ways: over the nominal blast length only, datagrams the
  // socket accepted (sent − kernel drops) instead of lines flushed, and lines offered.
  const counting = {
    flushedOverSenderAndDrain: p.linesPerSec,
    flushedOverNominalSeconds: p.lines / PLAIN_BLAST_SECONDS,
    acceptedBySocket: (p.sender.lines - p.socketDrops * LPP) / p.seconds,
    offered: p.offeredLinesPerSec,
  };
  const rel = Object.fromEntries(Object.entries(runs).map(([k, r]) => [k, ratio(r.linesPerSec, p.linesPerSec)]));
  const [br, dr] = [runs.batchReader, runs.dgramReader];
  const summary = variants.map(([k, label]) => `${label}: ${si(runs[k].linesPerSec)} (${fmtRatio(rel[k])})`).join('; ');
  return {
    rows: [
      { id: 'P4', name: `UDP counters, --workers 1: one candidate changed at a time from the plain ${PLAIN_BLAST_SECONDS} s blast`, ours: summary, baseline: `plain sendmmsg ${si(p.linesPerSec)} lines/s`, ratio: `GSO ${fmtRatio(rel.gso)}`, target: 'reported (explains scenario 1 vs P1)', met: null },
      { id: 'P4', name: `UDP counters, --workers 1, plain ${PLAIN_BLAST_SECONDS} s blast: batch reader (recvmmsg addon) against the dgram reader`, ours: `batch ${si(br.linesPerSec)} lines/s, ${si(br.linesPerCpuSecond)} lines/CPU-s`, baseline: `dgram ${si(dr.linesPerSec)} lines/s, ${si(dr.linesPerCpuSecond)} lines/CPU-s`, ratio: `${fmtRatio(ratio(br.linesPerSec, dr.linesPerSec))} (${fmtRatio(ratio(br.linesPerCpuSecond, dr.linesPerCpuSecond))} per CPU-s)`, target: 'reported (the fix of issue 16)', met: null },
    ],
    details: { loadAverage: loadAvg(), runs: Object.fromEntries(Object.entries(runs).map(([k, r]) => [k, slim(r)])), relativeToPlain: rel, counting },
  };
}
