// Scenario 5: TCP, 4 connections writing 64 KiB blocks of counter lines; ours against the null net receiver.
import { connect } from 'node:net';
import { cpuSeconds, now, stopTracked, tcpSockets, waitFor } from '../harness.mjs';
import { SIZE, log } from '../lib/options.mjs';
import { fmtRatio, ratio, si } from '../lib/format.mjs';
import { counterLines } from '../lib/payloads.mjs';
import { probeFeature, skipped, startNull } from '../lib/servers.mjs';
import { counterTally } from '../lib/tally.mjs';

/** Writes `chunk` `times` times on each of `connections` TCP connections, then waits until every byte is read by the server. */
async function tcpLoad(port, { connections, chunk, times, maxSeconds }) {
  const t0 = now();
  const deadline = t0 + maxSeconds * 1000;
  const socks = [];
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const s = connect({ host: '127.0.0.1', port });
      socks.push(s);
      s.on('error', () => undefined);
      await new Promise((res, rej) => {
        s.once('connect', res);
        s.once('error', rej);
      });
      for (let i = 0; i < times && now() < deadline; i++) {
        if (!s.write(chunk)) await new Promise((res) => s.once('drain', res));
      }
      await new Promise((res) => s.end(res));
    }),
  );
  const written = socks.reduce((a, s) => a + s.bytesWritten, 0);
  const doneAt = await waitFor(() => {
    const rows = tcpSockets().filter((r) => r.localPort === port || r.remotePort === port);
    return rows.every((r) => r.rxQueue === 0 && r.txQueue === 0) ? now() : undefined;
  }, 60_000, 5);
  for (const s of socks) s.destroy();
  return { seconds: ((doneAt ?? now()) - t0) / 1000, bytes: written, timedOut: doneAt === undefined };
}

export async function scenario5() {
  const name = 'TCP, 4 connections, counter lines';
  const target = '≥ 2M lines/s';
  const tally = counterTally('bench.s5.');
  const p = await probeFeature(['--statsd-tcp', '127.0.0.1:0'], 'tcp', tally.onSeries, '--statsd-tcp');
  if (p.srv === undefined) return skipped('5', name, target, p.why);
  const lines = counterLines('bench.s5', 1000);
  const block = `${lines.join('\n')}\n`;
  const reps = Math.max(1, Math.floor(65536 / Buffer.byteLength(block)));
  const chunk = Buffer.from(block.repeat(reps));
  const linesPerChunk = 1000 * reps;
  const connections = 4;
  const times = Math.ceil(SIZE.s5Lines / connections / linesPerChunk);
  const c0 = cpuSeconds(p.srv.pid);
  const run = await tcpLoad(p.srv.portOf('tcp'), { connections, chunk, times, maxSeconds: SIZE.s5MaxSeconds });
  const cpu = cpuSeconds(p.srv.pid) - c0;
  await stopTracked(p.srv.h);
  const sentLines = Math.round(run.bytes / chunk.length) * linesPerChunk;
  const got = tally.result(1).lines;
  const o = { ...run, sentLines, receivedLines: got, lostLines: sentLines - got, linesPerSec: got / run.seconds, serverCpuSeconds: cpu };
  log(`  ours: ${si(o.linesPerSec)} lines/s (lost ${o.lostLines})`);
  const nul = await startNull('tcp');
  const nrun = await tcpLoad(nul.port, { connections, chunk, times, maxSeconds: SIZE.s5MaxSeconds });
  const nres = await nul.result();
  const n = { ...nrun, receivedLines: (nres.bytes / chunk.length) * linesPerChunk, linesPerSec: ((nres.bytes / chunk.length) * linesPerChunk) / nrun.seconds };
  log(`  null net receiver: ${si(n.linesPerSec)} lines/s`);
  return {
    rows: [{ id: '5', name, ours: `${si(o.linesPerSec)} lines/s`, baseline: `null net ${si(n.linesPerSec)} lines/s`, ratio: fmtRatio(ratio(o.linesPerSec, n.linesPerSec)), target, met: o.linesPerSec >= 2e6 && o.lostLines === 0 }],
    details: { ours: o, nullReceiver: n },
  };
}
