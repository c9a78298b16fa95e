// collectd 5.12's statsd plugin (C, Debian `collectd-core`) as a second baseline: installing it when
// missing, starting it on a free port with the csv writer, and summing its counter totals.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, sleep, spawnTracked, stopTracked, udpSockets, waitFor } from '../harness.mjs';
import { TMP, log } from './options.mjs';
import { rates, udpLoad, warmUp } from './udp.mjs';

const COLLECTD_BIN = '/usr/sbin/collectd';
const STATSD_SO = '/usr/lib/collectd/statsd.so';
/** collectd's read interval; the statsd plugin dispatches its counters once per interval. */
const INTERVAL_SECONDS = 1;

let checked;
/**
 * collectd, installed with apt-get when missing (as etsy statsd comes from npm). Resolves
 * { ok: true, version } or { ok: false, why }; tried once per run.
 */
export function collectdAvailable() {
  if (checked !== undefined) return checked;
  if (!existsSync(COLLECTD_BIN) || !existsSync(STATSD_SO)) {
    log('  collectd is missing: apt-get install -y collectd-core');
    const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
    const cmd = [...sudo, 'apt-get', 'install', '-y', '--no-install-recommends', 'collectd-core'];
    const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 300_000 });
    if (r.status !== 0 || !existsSync(STATSD_SO)) {
      checked = { ok: false, why: `collectd-core is not installed and apt-get failed (${r.error?.message ?? `exit ${r.status}`}: ${(r.stderr ?? '').trim().split('\n').at(-1) ?? ''})` };
      return checked;
    }
  }
  const v = spawnSync(COLLECTD_BIN, ['-h'], { encoding: 'utf8' });
  const version = /collectd (\d+(?:\.\d+)*)/.exec(`${v.stdout}${v.stderr}`)?.[1] ?? 'unknown';
  checked = { ok: true, version };
  return checked;
}

/** Starts collectd with only the statsd and csv plugins on a free port. Resolves { h, pid, port, csvDir }. */
export async function startCollectd() {
  const port = await freePort('udp');
  const dir = join(TMP, `collectd-${port}`);
  const csvDir = join(dir, 'csv');
  mkdirSync(csvDir, { recursive: true });
  const conf = join(dir, 'collectd.conf');
  writeFileSync(conf, [
    `Interval ${INTERVAL_SECONDS}`,
    `BaseDir "${dir}"`,
    `PIDFile "${join(dir, 'collectd.pid')}"`,
    'PluginDir "/usr/lib/collectd"',
    'TypesDB "/usr/share/collectd/types.db"',
    'FQDNLookup false',
    'Hostname "bench"',
    'LoadPlugin statsd',
    'LoadPlugin csv',
    '<Plugin statsd>',
    '  Host "127.0.0.1"',
    `  Port "${port}"`,
    // Cumulative counters: the last csv line of a name is its total since start.
    '  DeleteCounters false',
    '</Plugin>',
    '<Plugin csv>',
    `  DataDir "${csvDir}"`,
    '  StoreRates false',
    '</Plugin>',
    '',
  ].join('\n'));
  const h = spawnTracked(COLLECTD_BIN, ['-f', '-C', conf]);
  const up = await waitFor(() => udpSockets().has(port) || h.exitInfo() !== undefined, 15_000, 20);
  if (up === undefined || h.exitInfo() !== undefined) throw new Error(`collectd did not start: ${h.stderr().slice(-500)}`);
  return { h, pid: h.pid, port, csvDir };
}

/** Sum over names under `prefix` of the last (cumulative) value collectd's csv writer holds for each. */
export function collectdCounterTotal(csvDir, prefix) {
  const dir = join(csvDir, 'bench', 'statsd');
  if (!existsSync(dir)) return 0;
  const latest = new Map(); // name → { date, value }: a run across midnight has two files per name
  const head = `derive-${prefix}`;
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(head)) continue;
    const date = f.slice(-10);
    const name = f.slice('derive-'.length, -11);
    const rows = readFileSync(join(dir, f), 'utf8').trim().split('\n');
    const value = Number(rows.at(-1).split(',')[1]);
    const prev = latest.get(name);
    if (Number.isFinite(value) && (prev === undefined || date >= prev.date)) latest.set(name, { date, value });
  }
  let total = 0;
  for (const { value } of latest.values()) total += value;
  return total;
}

/**
 * One UDP load against collectd. Its statsd plugin does not dispatch on shutdown, so after the drain
 * it gets 2.5 intervals to dispatch and write what it read before SIGTERM (none of it is then lost).
 */
export async function collectdUdp(load, { prefix }) {
  const srv = await startCollectd();
  await warmUp(srv, load);
  const run = await udpLoad({ pid: srv.pid, port: srv.port }, load);
  await sleep(INTERVAL_SECONDS * 2500);
  const ex = await stopTracked(srv.h, { timeoutMs: 10_000 });
  if (ex.code !== 0) log(`warning: collectd exited ${ex.code}${ex.killed ? ' (killed)' : ''}`);
  const lines = Math.round(collectdCounterTotal(srv.csvDir, prefix));
  return rates(run, { lines, packets: lines / load.lpp });
}
