// The receivers under test: our CLI, etsy statsd and the null receivers; and starting our CLI with flags it may not know yet.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, ETSY_MAIN, cleanEnv, freePort, sleep, spawnTracked, stopTracked, udpSockets, waitFor, within } from '../harness.mjs';
import { CLI_BIN, OUR_BASE, TMP, UDP_RECV_BUFFER, log } from './options.mjs';

const env = process.env;

/** Starts our CLI. Resolves { ok, h, pid, listeners } or { ok: false, code, message } (e.g. exit 2 on an unknown flag). */
export async function startOurs(extra, onSeries, { env: extraEnv } = {}) {
  const prof = env.BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', env.BENCH_CPU_PROF];
  const h = spawnTracked(process.execPath, [...prof, CLI_BIN, ...OUR_BASE, ...extra], {
    env: cleanEnv(extraEnv),
    onLine: (l) => {
      if (l.charCodeAt(0) !== 123) return;
      let o;
      try {
        o = JSON.parse(l);
      } catch {
        return;
      }
      onSeries?.(o);
    },
  });
  const listeners = await h.until(() => {
    for (const l of h.stderr().split('\n')) {
      if (!l.includes('metrics-distributor started.')) continue;
      try {
        return JSON.parse(l).listeners;
      } catch {
        return undefined;
      }
    }
    return undefined;
  }, 20_000);
  if (listeners === undefined) {
    const ex = (await within(h.exited, 3000)) ?? (await stopTracked(h, { timeoutMs: 3000 }));
    const lines = h.stderr().trim().split('\n').filter(Boolean);
    return { ok: false, code: ex.code, message: (lines.find((l) => l.startsWith('metrics-distributor:')) ?? lines.at(-1) ?? '').slice(0, 300) };
  }
  const portOf = (scheme) => {
    const l = listeners.find((x) => x.startsWith(`${scheme}://`));
    return l === undefined ? undefined : Number(l.slice(l.lastIndexOf(':') + 1));
  };
  return { ok: true, h, pid: h.pid, listeners, portOf, port: portOf('udp') };
}

/** Starts etsy statsd with the bench backend. Resolves { h, pid, port, flushes }. */
export async function startEtsy({ prefix, timerPrefix, flushInterval = 1000 }) {
  const port = await freePort('udp');
  const mgmt = await freePort('tcp');
  const cfg = join(TMP, `etsy-${port}.js`);
  const conf = {
    port,
    address: '127.0.0.1',
    mgmt_port: mgmt,
    mgmt_address: '127.0.0.1',
    flushInterval,
    deleteIdleStats: true,
    automaticConfigReload: false,
    backends: [join(BENCH_DIR, 'etsy-backend.cjs')],
    benchBackend: { prefix, timerPrefix: timerPrefix ?? prefix },
  };
  writeFileSync(cfg, JSON.stringify(conf, null, 2));
  const flushes = [];
  const h = spawnTracked(process.execPath, [ETSY_MAIN, cfg], {
    cwd: join(BENCH_DIR, 'node_modules/statsd'),
    onLine: (l) => {
      if (l.charCodeAt(0) === 123) flushes.push(JSON.parse(l));
    },
  });
  const up = await waitFor(() => udpSockets().has(port) || h.exitInfo() !== undefined, 15_000, 20);
  if (up === undefined || h.exitInfo() !== undefined) throw new Error(`etsy statsd did not start: ${h.stderr().slice(-500)}`);
  // The backend loads right after the bind; give it a moment.
  await sleep(200);
  return { h, pid: h.pid, port, flushes };
}

/** Starts a null receiver (udp or tcp). Resolves { h, pid, port, result() } where result() stops it and returns its counts. */
export async function startNull(mode) {
  const lines = [];
  const h = spawnTracked(process.execPath, [join(BENCH_DIR, 'null-receiver.mjs'), mode, String(UDP_RECV_BUFFER)], { onLine: (l) => lines.push(JSON.parse(l)) });
  const first = await h.until(() => lines.find((l) => l.listening !== undefined), 10_000);
  if (first === undefined) throw new Error(`null receiver did not start: ${h.stderr()}`);
  return {
    h,
    pid: h.pid,
    port: first.listening,
    recvBufferBytes: first.recvBufferBytes,
    /** Counts so far, without stopping. */
    async snapshot() {
      const n = lines.length;
      h.proc.kill('SIGUSR1');
      return (await h.until(() => lines.slice(n).find((l) => l.final === false), 5000)) ?? { datagrams: NaN, bytes: NaN };
    },
    async result() {
      await stopTracked(h, { timeoutMs: 5000 });
      return lines.find((l) => l.final === true) ?? { datagrams: NaN, bytes: NaN };
    },
  };
}

/** A skipped row with the reason. */
export function skipped(id, name, target, why) {
  log(`  skipped: ${why}`);
  return { rows: [{ id, name, ours: 'skipped: not available', baseline: '—', ratio: '—', target, met: null, note: why }], details: { skipped: why } };
}

/** Starts our CLI with extra flags that may not exist yet; returns the server or a skip reason. */
export async function probeFeature(extra, scheme, onSeries, feature) {
  const srv = await startOurs(extra, onSeries);
  if (!srv.ok) {
    return { why: srv.code === 2 ? `the CLI rejects ${feature} (exit 2: ${srv.message})` : `the CLI did not start (exit ${srv.code}: ${srv.message})` };
  }
  if (scheme !== undefined && srv.portOf(scheme) === undefined) {
    await stopTracked(srv.h);
    return { why: `${feature} is accepted, but no ${scheme}:// listener started (listeners: ${srv.listeners.join(', ')}): not wired into the CLI yet` };
  }
  return { srv };
}
