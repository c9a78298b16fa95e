import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';

/** The committed bin shim, which runs the built CLI exactly as users do. */
export const BIN = fileURLToPath(new URL('../bin/metrics-distributor.js', import.meta.url));

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

/** A spawned server with its parsed stdout lines and raw stderr. */
export interface Child {
  proc: ChildProcessWithoutNullStreams;
  lines: OutLine[];
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the listener addresses from the start-up log line. */
  listening: Promise<string[]>;
  waitFor(pred: (l: OutLine) => boolean, timeoutMs?: number): Promise<OutLine>;
}

/** Spawns the CLI with `args`; stdout is parsed as JSON lines (the console sink's non-TTY format). */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  // A developer's own Datadog settings must not leak into tests.
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('DD_')) delete base[k];
  // Listeners that would collide between parallel tests are off unless a test turns them on (last flag wins).
  const proc = spawn(process.execPath, [BIN, '--statsd-tcp', 'off', '--http', 'off', ...args], { env: { ...base, ...env }, stdio: 'pipe' });
  const lines: OutLine[] = [];
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
      if (line.trim() !== '') lines.push(JSON.parse(line) as OutLine);
    }
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d: string) => {
    err += d;
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of waiters.splice(0)) w();
    }),
  );
  const until = <T>(probe: () => T | undefined, timeoutMs: number, what: string) =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; stderr:\n${err}`)), timeoutMs);
      const check = () => {
        const v = probe();
        if (v !== undefined) {
          clearTimeout(timer);
          resolve(v);
        } else if (proc.exitCode !== null) {
          clearTimeout(timer);
          reject(new Error(`process exited (${proc.exitCode}) while waiting for ${what}; stderr:\n${err}`));
        } else waiters.push(check);
      };
      check();
    });
  const listening = until(
    () => {
      for (const l of err.split('\n')) {
        if (!l.includes('metrics-distributor started.')) continue;
        return (JSON.parse(l) as { listeners: string[] }).listeners;
      }
      return undefined;
    },
    15_000,
    'start-up line',
  );
  // Tests that expect an early exit never await this; keep its rejection from going unhandled.
  listening.catch(() => undefined);
  return {
    proc,
    lines,
    stderr: () => err,
    exited,
    listening,
    waitFor: (pred, timeoutMs = 15_000) => until(() => lines.find(pred), timeoutMs, 'an output line'),
  };
}

/** Port of the first listener with the given scheme (`udp://127.0.0.1:1234`). */
export function portOf(listeners: string[], scheme: string): number {
  const l = listeners.find((x) => x.startsWith(`${scheme}://`));
  if (l === undefined) throw new Error(`no ${scheme} listener in ${listeners.join(', ')}`);
  return Number(l.slice(l.lastIndexOf(':') + 1));
}

/** Sends each payload as one UDP datagram to 127.0.0.1:port. */
export async function sendUdp(port: number, payloads: (string | Buffer)[]): Promise<void> {
  const sock = createSocket('udp4');
  for (const p of payloads) {
    await new Promise<void>((resolve, reject) => sock.send(p, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  }
  sock.close();
}
