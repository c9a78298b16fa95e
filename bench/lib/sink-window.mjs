// One 200,000-context window through a real CLI child to a stand-in destination: the export's
// duration, what arrived, and the server's own event-loop delay while it exported. Shared by the
// per-sink scenarios (13: OTLP and Graphite).
import { cpuSeconds, now, runSender, sleep, stopTracked, writePayload } from '../harness.mjs';
import { LPP, TMP, log, sender } from './options.mjs';
import { mixedLines } from './payloads.mjs';
import { probeFeature } from './servers.mjs';

/** Window length of these runs; an export may take longer, it is followed to its end. */
export const SINK_WINDOW_S = 5;
/** The export is over once none of its window's data has arrived for this long. */
const QUIET_MS = 2000;
/** An export still going after this long is reported as it stands. */
const MAX_EXPORT_MS = 120_000;

/**
 * Runs one window. `standIn` is started first: `{ start(): Promise<{ args: string[] }>,
 * arrivals: { t, bytes, units, windowMs? }[], selfLoopMs(): { t, value, windowMs? }[], stop(): Promise<void> }`,
 * where `args` are the CLI flags that point the sink at it and `windowMs` is the start (epoch ms,
 * from the data's own timestamps) of the window an arrival's data or a loop-delay value belongs to.
 * Without `windowMs`, only what arrives before the next boundary counts, as these runs did first.
 * Returns `{ why }` when the CLI rejects the flags, else the figures.
 *
 * The window [B0, B1) holds every context; its export runs from B1 to the last arrival of that
 * window's data, however many windows later. Its loop delay is the largest the server reported for
 * any window from B1 to that last arrival, and its CPU the server's over the same time.
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
  await sleep(Math.max(0, b1 - Date.now()));
  const cpu = [{ t: Date.now(), s: cpuSeconds(srv.pid) }];
  const tagged = standIn.arrivals.length === 0 || standIn.arrivals.some((a) => a.windowMs !== undefined);
  const exported = () => standIn.arrivals.filter((a) => a.windowMs === b1 - w);
  let last = NaN;
  if (tagged) {
    // Followed to its end: quiet for QUIET_MS, and the loop delay of the window it ended in reported.
    for (;;) {
      await sleep(200);
      cpu.push({ t: Date.now(), s: cpuSeconds(srv.pid) });
      const mine = exported();
      last = mine.length > 0 ? Math.max(...mine.map((a) => a.t)) : NaN;
      const endWindow = Math.floor(last / w) * w;
      const reported = standIn.selfLoopMs().some((s) => s.windowMs !== undefined && s.windowMs >= endWindow);
      if (Date.now() - b1 > MAX_EXPORT_MS) break;
      if (Number.isFinite(last) && Date.now() - last >= QUIET_MS && reported) break;
    }
  } else {
    await sleep(b1 + 2 * w - Date.now() + 500);
    const before = standIn.arrivals.filter((a) => a.t >= b1 && a.t < b1 + w);
    last = before.length > 0 ? Math.max(...before.map((a) => a.t)) : NaN;
  }
  const ex = await stopTracked(srv.h);
  await standIn.stop();
  const during = tagged ? exported() : standIn.arrivals.filter((a) => a.t >= b1 && a.t <= last);
  const loop = standIn.selfLoopMs();
  const exportLoop = (tagged ? loop.filter((s) => s.windowMs >= b1 && s.windowMs <= last) : loop.filter((s) => s.t >= b1 + w && s.t < b1 + 2 * w)).map((s) => s.value);
  const cpuEnd = cpu.find((c) => c.t >= last) ?? cpu.at(-1);
  const slices = (standIn.selfSliceMs?.() ?? []).filter((s) => s.windowMs >= b1 && s.windowMs <= last + w).map((s) => s.value);
  const r = {
    sentLines: sent.lines,
    exportMs: last - b1,
    exportCpuMs: tagged ? (cpuEnd.s - cpu[0].s) * 1000 : undefined,
    windows: Math.floor(last / w) - b1 / w + 1,
    requests: during.length,
    bytes: during.reduce((n, a) => n + a.bytes, 0),
    units: during.reduce((n, a) => n + a.units, 0),
    loopDelayMaxMs: exportLoop.length > 0 ? Math.max(...exportLoop) : undefined,
    loopDelayAllMs: loop.map((s) => s.value),
    // The sink's own longest slice, where it reports one: set when an export ends, so read up to a window after.
    sliceMaxMs: slices.length > 0 ? Math.max(...slices) : undefined,
    exit: ex,
  };
  log(`  ${tag}: export ${r.exportMs.toFixed(0)} ms over ${r.windows} window(s), server CPU ${r.exportCpuMs?.toFixed(0) ?? 'n/a'} ms, ${r.requests} request(s)/write(s), ${r.bytes} bytes, ${r.units} unit(s), loop delay during export ${r.loopDelayMaxMs?.toFixed(1) ?? 'n/a'} ms (all windows: ${r.loopDelayAllMs.map((v) => v.toFixed(0)).join(', ')})`);
  return r;
}

/** Milliseconds since the bench started, for arrivals in epoch time. */
export const epochMs = () => performance.timeOrigin + now();
