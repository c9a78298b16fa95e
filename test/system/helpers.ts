/**
 * Shared pieces of the system tests: spawning the real CLI (the committed bin shim, exactly as users run
 * it), reading its listeners, sending over UDP/TCP/HTTP on loopback, and reading kernel UDP drops.
 * Adapted from packages/cli/test/helpers.ts (system tests do not import another package's test files).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dropsFor, procLocalAddress } from '@metrics-distributor/frontend-statsd-udp';

/** The committed bin shim of the CLI. */
export const BIN = fileURLToPath(new URL('../../packages/cli/bin/metrics-distributor.js', import.meta.url));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One console-sink JSON line. */
export interface OutLine {
  metric?: string;
  type?: string;
  value?: number;
  interval?: number;
  timestamp?: number;
  tags?: string[];
  host?: string;
  /** When the test process read the line (ms). */
  _at?: number;
  [k: string]: unknown;
}

/** A spawned server. */
export interface Child {
  proc: ChildProcessWithoutNullStreams;
  /** Parsed stdout lines (console sink) that passed `keep`. */
  lines: OutLine[];
  /** All console-sink lines seen, kept or not. */
  seen(): number;
  /** Stderr, up to its first {@link STDERR_KEEP_CHARS} characters. */
  stderr(): string;
  /** Parsed JSON log lines from stderr. */
  logs(): Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  listening: Promise<string[]>;
  /** Ports of the listeners, once `listening` resolved (0 when the listener is off). */
  ports: { udp: number; tcp: number; http: number };
  /** Sends `sig` (default SIGTERM) and resolves with the exit. */
  stop(sig?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Options of {@link startCli}. */
export interface StartOptions {
  /** Extra environment variables. */
  env?: NodeJS.ProcessEnv;
  /** Stores only the stdout lines for which this is true, so a flood of unique names is not held in memory. */
  keep?: (l: OutLine) => boolean;
}

/** Stderr kept per server: enough for every log line a test reads, bounded under a flood of warnings. */
const STDERR_KEEP_CHARS = 4_000_000;

/**
 * Spawns the CLI. Every listener is on 127.0.0.1:0 unless `args` say otherwise (the last flag wins),
 * the host is `sys`, and DD_* variables of the developer never leak in.
 */
export function startCli(args: string[], { env = {}, keep = () => true }: StartOptions = {}): Child {
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('DD_')) delete base[k];
  const proc = spawn(
    process.execPath,
    [BIN, '--statsd-udp', '127.0.0.1:0', '--statsd-tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--hostname', 'sys', ...args],
    { env: { ...base, ...env }, stdio: 'pipe' },
  );
  const lines: OutLine[] = [];
  let seen = 0;
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d: string) => {
    out += d;
    let i;
    while ((i = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      if (line.trim() === '') continue;
      seen++;
      const parsed = JSON.parse(line) as OutLine;
      if (keep(parsed)) lines.push({ ...parsed, _at: Date.now() });
    }
    wake();
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d: string) => {
    if (err.length < STDERR_KEEP_CHARS) err += d;
    wake();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      resolve({ code, signal });
      wake();
    }),
  );
  const ports = { udp: 0, tcp: 0, http: 0 };
  const listening = new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for the start-up line; stderr:\n${err}`)), 20_000);
    const check = () => {
      for (const l of err.split('\n')) {
        if (!l.includes('metrics-distributor started.')) continue;
        clearTimeout(timer);
        const listeners = (JSON.parse(l) as { listeners: string[] }).listeners;
        for (const scheme of ['udp', 'tcp', 'http'] as const) {
          const a = listeners.find((x) => x.startsWith(`${scheme}://`));
          if (a !== undefined) ports[scheme] = Number(a.slice(a.lastIndexOf(':') + 1));
        }
        resolve(listeners);
        return;
      }
      if (proc.exitCode !== null) {
        clearTimeout(timer);
        reject(new Error(`server exited (${proc.exitCode}) before start-up; stderr:\n${err}`));
        return;
      }
      waiters.push(check);
    };
    check();
  });
  listening.catch(() => undefined);
  return {
    proc,
    lines,
    seen: () => seen,
    stderr: () => err,
    logs: () =>
      err
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        }),
    exited,
    listening,
    ports,
    stop: (sig = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
      return exited;
    },
  };
}

/** Kills the server if a test failed half-way, so no process outlives its test. */
export function killOnTeardown(t: { teardown: (fn: () => unknown) => void }, child: Child): void {
  t.teardown(() => {
    if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
  });
}

/** A UDP sender to 127.0.0.1:port that awaits each datagram's send callback. */
export class UdpSender {
  private readonly sock: UdpSocket = createSocket('udp4');
  constructor(private readonly port: number) {}
  send(payload: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.sock.send(payload, this.port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  }
  close(): void {
    this.sock.close();
  }
}

/** Sends each payload as one datagram. */
export async function sendUdp(port: number, payloads: (string | Buffer)[]): Promise<void> {
  const s = new UdpSender(port);
  for (const p of payloads) await s.send(p);
  s.close();
}

/** Opens a TCP connection to 127.0.0.1:port. */
export function tcpConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Writes and resolves once the data has been handed to the kernel. */
export function tcpWrite(s: Socket, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => s.write(data, (e) => (e ? reject(e) : resolve())));
}

/** One HTTP request to 127.0.0.1:port; resolves with the status and body. */
export function httpRequest(
  port: number,
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = { 'content-type': 'text/plain' },
  method = 'POST',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Kernel drops on the UDP socket(s) bound to 127.0.0.1:port: the `drops` column of /proc/net/udp. It is
 * per socket, so traffic of other tests running in parallel does not count (unlike /proc/net/snmp's
 * machine-wide RcvbufErrors). Read it while the server is still running.
 */
export function udpSocketDrops(port: number): number {
  return dropsFor(readFileSync('/proc/net/udp', 'utf8'), procLocalAddress('127.0.0.1', port)!);
}

/** Machine-wide UDP RcvbufErrors from /proc/net/snmp (other processes included). */
export function udpRcvbufErrors(): number {
  const rows = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const head = rows[0]?.trim().split(/\s+/) ?? [];
  const vals = rows[1]?.trim().split(/\s+/) ?? [];
  const i = head.indexOf('RcvbufErrors');
  return i < 0 ? 0 : Number(vals[i]);
}

/** Start of the window holding `ms`. */
export const windowOf = (ms: number, intervalMs: number): number => ms - (ms % intervalMs);

/** Waits until `at` ms past a window boundary (and at least `minLeftMs` before the next one). */
export async function waitForPhase(intervalMs: number, atMs: number): Promise<number> {
  const now = Date.now();
  let target = windowOf(now, intervalMs) + atMs;
  if (target <= now) target += intervalMs;
  await sleep(target - Date.now());
  return windowOf(target, intervalMs);
}

/**
 * Sends `n` windows of `intervalMs` to UDP `port`, each its own metric `<prefix><k>` (3 × `:1|c` to
 * each of `width` contexts `i:<i>`), early in its window; returns each name with when it was sent.
 */
export async function sendWindows(port: number, intervalMs: number, prefix: string, n: number, width = 1): Promise<{ name: string; at: number }[]> {
  const sender = new UdpSender(port);
  const sent: { name: string; at: number }[] = [];
  for (let k = 0; k < n; k++) {
    await waitForPhase(intervalMs, 60);
    const name = `${prefix}${k}`;
    const at = Date.now();
    for (let r = 0; r < 3; r++) {
      const lines = Array.from({ length: width }, (_, i) => `${name}:1|c|#i:${i}`);
      for (let i = 0; i < lines.length; i += 100) await sender.send(lines.slice(i, i + 100).join('\n'));
    }
    sent.push({ name, at });
    await sleep(intervalMs - 60);
  }
  sender.close();
  return sent;
}

/** Polls `pred` every 20 ms until it holds or `timeoutMs` passes; rejects with `what`. */
export async function eventually(pred: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting: ${what()}`);
    await sleep(20);
  }
}

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Σ value × interval of console-sink rate/count lines of `metric` whose tags include all of `tags`. */
export function consoleTotal(lines: readonly OutLine[], metric: string, tags: readonly string[] = []): number {
  let sum = 0;
  for (const l of lines) {
    if (l.metric !== metric || (l.type !== 'rate' && l.type !== 'count')) continue;
    if (!tags.every((t) => (l.tags ?? []).includes(t))) continue;
    sum += l.type === 'rate' ? (l.value ?? 0) * (l.interval ?? 0) : (l.value ?? 0);
  }
  return Math.round(sum * 1e6) / 1e6;
}

/** Port of the first listener with the given scheme (`udp://127.0.0.1:1234`). */
export function portOf(listeners: string[], scheme: string): number {
  const l = listeners.find((x) => x.startsWith(`${scheme}://`));
  if (l === undefined) throw new Error(`no ${scheme} listener in ${listeners.join(', ')}`);
  return Number(l.slice(l.lastIndexOf(':') + 1));
}

/** Resident set size of a process in KiB (VmRSS), or undefined once it is gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Samples `rssKiB(pid)` every `everyMs` until stopped; returns the peak and every sample. */
export function sampleRss(pid: number, everyMs = 100): { stop(): { peakKiB: number; samples: number[] } } {
  const samples: number[] = [];
  const take = () => {
    const v = rssKiB(pid);
    if (v !== undefined) samples.push(v);
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { peakKiB: Math.max(...samples), samples };
    },
  };
}

/** The soft limit on open files of this process (`ulimit -n`). */
export function fdLimit(): number {
  const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m === null || m[1] === 'unlimited' ? 1_000_000 : Number(m[1]);
}
