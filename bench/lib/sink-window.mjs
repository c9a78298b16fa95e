// One 200,000-context window through a real CLI child to a stand-in destination: the export's
// duration, what arrived, and the server's own event-loop delay while it exported. Shared by the
// per-sink scenarios (12: Prometheus, 13: OTLP and Graphite).
import { now, runSender, sleep, stopTracked, writePayload } from '../harness.mjs';
import { LPP, TMP, log, sender } from './options.mjs';
import { mixedLines } from './payloads.mjs';
import { probeFeature } from './servers.mjs';

/** Window length of these runs: long enough that a loaded machine finishes one export before the next boundary. */
export const SINK_WINDOW_S = 5;

/**
 * Runs one window. `standIn` is started first: `{ start(): Promise<{ args: string[] }>, arrivals: { t, bytes, units }[],
 * selfLoopMs(): { t, value }[], stop(): Promise<void> }`, where `args` are the CLI flags that point the
 * sink at it. Returns `{ why }` when the CLI rejects the flags, else the figures.
 */
export async function sinkWindow({ tag, standIn, feature, contexts = 200_000 }) {
  const { args } = await standIn.start();
  const base = [...args, '--flush-interval', `${SINK_WINDOW_S}s`, '--self-metrics', 'true', '--max-contexts', String(contexts + 100_000)];
  const p = await probeFeature(base, undefined, undefined, feature);
  if (p.srv === undefined) {
    await standIn.stop();
    return { why: p.why };
  }
  const srv = p.srv;
  const payload = writePayload(TMP, `${tag}.txt`, mixedLines(`bench.${tag}`, contexts, 1));
  const w = SINK_WINDOW_S * 1000;
  // Sent just after a boundary B0: the window [B0, B1) holds every context; it is exported from B1,
  // and the server's loop delay over [B1, B2) is reported in the self-metrics flushed at B2.
  await sleep(w - (Date.now() % w) + 50);
  const b1 = Math.ceil(Date.now() / w) * w;
  const sent = await runSender(sender(), { port: srv.port, payload, lpp: LPP, packets: contexts / LPP, rate: 200_000 / LPP, maxSeconds: SINK_WINDOW_S });
  const b2 = b1 + w;
  await sleep(b2 + w - Date.now() + 500);
  const ex = await stopTracked(srv.h);
  await standIn.stop();
  const during = standIn.arrivals.filter((a) => a.t >= b1 && a.t < b2);
  const last = during.length > 0 ? Math.max(...during.map((a) => a.t)) : NaN;
  const loop = standIn.selfLoopMs();
  const exportLoop = loop.filter((s) => s.t >= b2 && s.t < b2 + w).map((s) => s.value);
  const r = {
    sentLines: sent.lines,
    exportMs: last - b1,
    requests: during.length,
    bytes: during.reduce((n, a) => n + a.bytes, 0),
    units: during.reduce((n, a) => n + a.units, 0),
    loopDelayMaxMs: exportLoop.length > 0 ? Math.max(...exportLoop) : undefined,
    loopDelayAllMs: loop.map((s) => s.value),
    exit: ex,
  };
  log(`  ${tag}: export ${r.exportMs.toFixed(0)} ms, ${r.requests} request(s)/write(s), ${r.bytes} bytes, ${r.units} unit(s), loop delay during export ${r.loopDelayMaxMs?.toFixed(1) ?? 'n/a'} ms (all windows: ${r.loopDelayAllMs.map((v) => v.toFixed(0)).join(', ')})`);
  return r;
}

/** Milliseconds since the bench started, for arrivals in epoch time. */
export const epochMs = () => performance.timeOrigin + now();
