// Process, socket and /proc helpers for run.mjs. Everything talks to 127.0.0.1 only.
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, setPriority } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(BENCH_DIR, '..');
export const CLI_BIN = join(ROOT, 'packages/cli/bin/metrics-distributor.js');
export const CLI_DIST = join(ROOT, 'packages/cli/dist/bin.js');
export const ETSY_MAIN = join(BENCH_DIR, 'node_modules/statsd/stats.js');
export const FASTIFY_FROM = join(ROOT, 'packages/frontend-http/node_modules/fastify/package.json');

/** Nice level of the load generator. */
const SENDER_NICE = 5;

/** Linux's USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every mainstream build). */
const CLOCK_TICKS = 100;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Resolves with `promise`'s value, or undefined after `ms`; the timer never holds the process open. */
export function within(promise, ms) {
  let timer;
  return Promise.race([promise, new Promise((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}
export const now = () => performance.now();

/** Polls `probe` every `intervalMs` until it returns something other than undefined/false, or times out (returns undefined). */
export async function waitFor(probe, timeoutMs, intervalMs = 10) {
  const end = now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (now() > end) return undefined;
    await sleep(intervalMs);
  }
}

/** Environment for spawned servers: no DD_* settings from the developer's shell. */
export function cleanEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('DD_')) delete env[k];
  return { ...env, ...extra };
}

/**
 * Spawns a process with piped stdio. stdout is split into lines for `onLine`; stderr is kept (capped).
 * `exited` resolves with { code, signal } and never rejects.
 */
export function spawnTracked(cmd, args, { onLine, env, cwd, keepStdout = false } = {}) {
  const proc = spawn(cmd, args, { env: env ?? cleanEnv(), cwd: cwd ?? BENCH_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  let partial = '';
  const stdoutLines = [];
  const waiters = new Set();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d) => {
    partial += d;
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      if (keepStdout) stdoutLines.push(line);
      if (onLine !== undefined && line.length > 0) onLine(line);
    }
    if (keepStdout && out.length < 1e6) out += d;
    wake();
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    if (err.length < 2e6) err += d;
    wake();
  });
  let exitInfo;
  const exited = new Promise((resolveExit) => {
    proc.on('error', (e) => {
      err += `\nspawn error: ${e.message}`;
      exitInfo ??= { code: -1, signal: null };
      resolveExit(exitInfo);
      wake();
    });
    proc.on('close', (code, signal) => {
      exitInfo ??= { code, signal };
      resolveExit(exitInfo);
      wake();
    });
  });
  /** Resolves with probe()'s value once defined, or undefined on exit or timeout. */
  const until = (probe, timeoutMs) =>
    new Promise((resolveUntil) => {
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      const finish = (v) => {
        clearTimeout(timer);
        waiters.delete(check);
        resolveUntil(v);
      };
      const check = () => {
        const v = probe();
        if (v !== undefined) finish(v);
        else if (exitInfo !== undefined) finish(undefined);
      };
      waiters.add(check);
      check();
    });
  return { proc, pid: proc.pid, exited, stderr: () => err, stdoutLines, exitInfo: () => exitInfo, until };
}

/** Sends `signal`, waits up to `timeoutMs` for the exit, then SIGKILLs. Returns { code, signal, killed }. */
export async function stopTracked(h, { signal = 'SIGTERM', timeoutMs = 20_000 } = {}) {
  if (h.exitInfo() === undefined) {
    try {
      h.proc.kill(signal);
    } catch {
      // Already gone.
    }
  }
  const res = await within(h.exited, timeoutMs);
  if (res !== undefined) return { ...res, killed: false };
  try {
    h.proc.kill('SIGKILL');
  } catch {
    // Already gone.
  }
  return { ...(await h.exited), killed: true };
}

/** Hex `0100007F:1F90` → port. */
function hexPort(addr) {
  return parseInt(addr.slice(addr.indexOf(':') + 1), 16);
}

/**
 * /proc/net/udp and udp6 by local port: queues in bytes (skb truesize) and drops, summed over every
 * socket bound to that port (several with SO_REUSEPORT or a multi-worker server).
 */
export function udpSockets() {
  const out = new Map();
  for (const f of procRows(['/proc/net/udp', '/proc/net/udp6'], 13)) {
    const [tx, rx] = f[4].split(':').map((x) => parseInt(x, 16));
    const port = hexPort(f[1]);
    const prev = out.get(port) ?? { txQueue: 0, rxQueue: 0, drops: 0, sockets: 0 };
    out.set(port, { txQueue: prev.txQueue + tx, rxQueue: prev.rxQueue + rx, drops: prev.drops + Number(f[f.length - 1]), sockets: prev.sockets + 1 });
  }
  return out;
}

/** The whitespace-split fields of every row (header skipped) with at least `minFields` fields, over the readable files. */
function* procRows(files, minFields) {
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n');
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i].trim().split(/\s+/);
      if (f.length >= minFields) yield f;
    }
  }
}

/** Rows of /proc/net/tcp: local and remote ports with send/receive queue bytes. */
export function tcpSockets() {
  const out = [];
  for (const f of procRows(['/proc/net/tcp', '/proc/net/tcp6'], 10)) {
    const [tx, rx] = f[4].split(':').map((x) => parseInt(x, 16));
    out.push({ localPort: hexPort(f[1]), remotePort: hexPort(f[2]), state: f[3], txQueue: tx, rxQueue: rx });
  }
  return out;
}

/** Udp counters from /proc/net/snmp (and Udp6 ones from /proc/net/snmp6). */
export function udpSnmp() {
  const res = {};
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const names = lines[0].split(/\s+/).slice(1);
    const values = lines[1].split(/\s+/).slice(1).map(Number);
    names.forEach((n, i) => (res[n] = values[i]));
  } catch {
    // No /proc: counters stay empty and are reported as unavailable.
  }
  try {
    for (const l of readFileSync('/proc/net/snmp6', 'utf8').split('\n')) {
      const [k, v] = l.trim().split(/\s+/);
      if (k !== undefined && k.startsWith('Udp6')) res[k] = Number(v);
    }
  } catch {
    // No IPv6.
  }
  return res;
}

/** RcvbufErrors over IPv4 and IPv6 between two udpSnmp() snapshots. */
export function rcvbufDelta(a, b) {
  const v4 = (b.RcvbufErrors ?? 0) - (a.RcvbufErrors ?? 0);
  const v6 = (b.Udp6RcvbufErrors ?? 0) - (a.Udp6RcvbufErrors ?? 0);
  return v4 + v6;
}

/**
 * CPU seconds (user + system) used so far by `pid` and its live descendants, from /proc/<pid>/stat:
 * with `--workers n` the receiving is done by child processes, which the parent's own figure misses.
 */
export function cpuSeconds(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    let total = (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
    for (const child of childPids(pid)) {
      const c = cpuSeconds(child);
      if (Number.isFinite(c)) total += c;
    }
    return total;
  } catch {
    return NaN;
  }
}

/** Live child pids of `pid` over all its threads (/proc/<pid>/task/<tid>/children). */
function childPids(pid) {
  const out = [];
  let tasks = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(' ')) if (c !== '') out.push(Number(c));
    } catch {
      // The thread exited between the listing and the read.
    }
  }
  return out;
}

/** VmRSS and VmHWM of `pid` in bytes, from /proc/<pid>/status. */
export function memBytes(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** A port that was free a moment ago on 127.0.0.1 (for etsy statsd, which cannot report an ephemeral one). */
export function freePort(kind) {
  return new Promise((res, rej) => {
    if (kind === 'udp') {
      const s = createSocket('udp4');
      s.once('error', rej);
      s.bind(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => res(p));
      });
    } else {
      const srv = createServer();
      srv.once('error', rej);
      srv.listen(0, '127.0.0.1', () => {
        const p = srv.address().port;
        srv.close(() => res(p));
      });
    }
  });
}

/** Machine facts for the report. */
export function machine() {
  let cpu = 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch {
    // Not Linux.
  }
  const read = (p) => {
    try {
      return readFileSync(p, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  return {
    nproc: availableParallelism(),
    cpu,
    node: process.version,
    kernel: read('/proc/sys/kernel/osrelease'),
    rmemMax: Number(read('/proc/sys/net/core/rmem_max') ?? NaN),
    rmemDefault: Number(read('/proc/sys/net/core/rmem_default') ?? NaN),
  };
}

/**
 * Builds the C sender with the machine's `cc -O2` into .build/ (only when the source is newer).
 * Falls back to the Node sender when there is no compiler or the build fails.
 */
export function buildSender() {
  const src = join(BENCH_DIR, 'sender.c');
  const out = join(BENCH_DIR, '.build', 'sender');
  mkdirSync(dirname(out), { recursive: true });
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return { kind: 'c', cmd: out, args: [], note: 'C sender (sendmmsg + UDP GSO), cc -O2' };
  const cc = process.env.CC ?? 'cc';
  const r = spawnSync(cc, ['-O2', '-o', out, src], { encoding: 'utf8' });
  if (r.status === 0) return { kind: 'c', cmd: out, args: [], note: `C sender (sendmmsg + UDP GSO), ${cc} -O2` };
  const why = r.error !== undefined ? `${cc} not found` : `${cc} failed: ${(r.stderr ?? '').trim().split('\n')[0]}`;
  return {
    kind: 'node',
    cmd: process.execPath,
    args: [join(BENCH_DIR, 'node-sender.mjs')],
    note: `NODE FALLBACK SENDER (${why}): it may itself be the bottleneck, so "as fast as possible" figures are lower bounds`,
  };
}

/** Runs the sender once (`gso: false` = plain sendmmsg) and resolves with its JSON report plus `exitAt` (performance.now() at exit). */
export async function runSender(sender, { port, payload, lpp, packets, rate = 0, maxSeconds = 120, gso = true }) {
  // gso: false is the plain sendmmsg sender (one datagram per message), the way real clients send.
  const env = gso ? undefined : cleanEnv({ NO_GSO: '1' });
  const h = spawnTracked(sender.cmd, [...sender.args, '127.0.0.1', String(port), payload, String(lpp), String(Math.round(packets)), String(rate), String(maxSeconds)], { keepStdout: true, env });
  // Niced, so that on a small shared machine the receiver under test, not the sender, wins the CPU
  // when other processes compete; the sender still offers far more than any receiver takes.
  try {
    setPriority(h.pid, SENDER_NICE);
  } catch {
    // Not permitted here: run at normal priority.
  }
  const killer = setTimeout(() => h.proc.kill('SIGKILL'), (maxSeconds + 30) * 1000);
  const ex = await h.exited;
  clearTimeout(killer);
  const exitAt = now();
  const line = h.stdoutLines.find((l) => l.startsWith('{'));
  if (ex.code !== 0 || line === undefined) throw new Error(`sender failed (${ex.code}): ${h.stderr()}`);
  return { ...JSON.parse(line), exitAt };
}

/** Writes lines to a payload file under `dir` and returns its path. */
export function writePayload(dir, name, lines) {
  const p = join(dir, name);
  writeFileSync(p, `${lines.join('\n')}\n`);
  return p;
}
