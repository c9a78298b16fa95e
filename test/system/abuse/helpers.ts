/**
 * Helpers for the abuse tests: spawn the real CLI and read its start-up line and console-sink JSON,
 * sample its RSS and its UDP socket's kernel drop count from /proc, and send UDP at a steady pace.
 * Adapted from packages/cli/test/helpers.ts (not imported: packages do not share test files).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The committed bin shim, which runs the built CLI exactly as users do. */
export const BIN = fileURLToPath(new URL('../../../packages/cli/bin/metrics-distributor.js', import.meta.url));

/** One console-sink JSON line. */
export interface OutLine {
  metric?: string;
  kind?: string;
  type?: string;
  value?: number;
  interval?: number;
  timestamp?: number;
  tags?: string[];
  host?: string;
  [k: string]: unknown;
}

/** A spawned server with the stdout lines it kept, and its raw stderr. */
export interface Child {
  proc: ChildProcessWithoutNullStreams;
  /** Console-sink lines that passed `keep`. */
  lines: OutLine[];
  /** All console-sink lines seen, kept or not. */
  seen(): number;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Listener addresses from the start-up log line. */
  listening: Promise<string[]>;
  /** SIGTERM, then the exit code (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number | null>;
}

/**
 * Spawns the CLI with `args` (TCP, HTTP and UDP listeners off unless `args` turns them on: last flag
 * wins). Stdout is parsed as JSON lines; only lines for which `keep` is true are stored, so a test that
 * floods the server with unique names does not hold every series in memory.
 */
export function startCli(args: string[], keep: (l: OutLine) => boolean = () => true): Child {
  const base = { ...process.env };
  // A developer's own Datadog settings must not leak into tests.
  for (const k of Object.keys(base)) if (k.startsWith('DD_')) delete base[k];
  const proc = spawn(process.execPath, [BIN, '--statsd-udp', 'off', '--statsd-tcp', 'off', '--http', 'off', '--sink', 'console', ...args], { env: base, stdio: 'pipe' });
  const lines: OutLine[] = [];
  let seen = 0;
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
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
      if (keep(parsed)) lines.push(parsed);
    }
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d: string) => {
    // Only the start-up line is needed; keep the rest bounded (a flood logs rate-limited warnings only).
    if (err.length < 1_000_000) err += d;
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of waiters.splice(0)) w();
    }),
  );
  const listening = new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for the start-up line; stderr:\n${err}`)), 15_000);
    const check = () => {
      for (const l of err.split('\n')) {
        if (!l.includes('metrics-distributor started.')) continue;
        clearTimeout(timer);
        return resolve((JSON.parse(l) as { listeners: string[] }).listeners);
      }
      if (proc.exitCode !== null) {
        clearTimeout(timer);
        return reject(new Error(`process exited (${proc.exitCode}) before starting; stderr:\n${err}`));
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
    exited,
    listening,
    async stop(timeoutMs = 20_000) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const { code } = await exited;
      clearTimeout(timer);
      return code;
    },
  };
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

/**
 * Datagrams the kernel dropped on the IPv4 UDP socket bound to 127.0.0.1:`port` because its receive
 * buffer was full (the last column of /proc/net/udp). Undefined when the socket is not found.
 */
export function udpKernelDrops(port: number): number | undefined {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === hex) return Number(f[f.length - 1]);
  }
  return undefined;
}

/** The soft limit on open files of this process (`ulimit -n`). */
export function fdLimit(): number {
  const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m === null || m[1] === 'unlimited' ? 1_000_000 : Number(m[1]);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Sends one datagram to 127.0.0.1:port. */
export function send(sock: UdpSocket, port: number, payload: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => sock.send(payload, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
}

/** A UDP socket for sending, closed by the caller. */
export function udpSender(): UdpSocket {
  return createSocket('udp4');
}

/** Sum of the values of console lines matching `metric` and exactly `tags` (any order); undefined tags = any. */
export function total(lines: readonly OutLine[], metric: string, tags?: string[]): number {
  const want = tags === undefined ? undefined : [...tags].sort().join(',');
  let sum = 0;
  for (const l of lines) {
    if (l.metric !== metric || l.kind !== undefined) continue;
    if (want !== undefined && [...(l.tags ?? [])].sort().join(',') !== want) continue;
    sum += l.value ?? 0;
  }
  return sum;
}
