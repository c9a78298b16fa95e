/**
 * Pieces shared by the deployment tests: a server started from an arbitrary command line (the
 * Dockerfile's, the Procfile's), with its console-sink lines and JSON logs collected.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Reads a file of the repository. */
export const repoFile = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** A server started by {@link startCommand}. */
export interface Server {
  proc: ChildProcess;
  /** Parsed JSON lines from stdout (the console sink). */
  out: Record<string, unknown>[];
  /** Parsed JSON log lines from stderr. */
  logs: Record<string, unknown>[];
  /** Raw stderr, for failure messages. */
  stderr(): string;
  /** The "metrics-distributor started." log line, once it is written. */
  started: Promise<{ listeners: string[]; admin?: string }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `argv` with `env` added to this process's (minus DD_*, so a developer's key never leaks in). */
export function startCommand(argv: readonly string[], { env = {}, cwd }: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Server {
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('DD_')) delete base[k];
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('empty command line');
  const proc = spawn(cmd, args, { env: { ...base, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Record<string, unknown>[] = [];
  const logs: Record<string, unknown>[] = [];
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const started = new Promise<{ listeners: string[]; admin?: string }>((resolve, reject) => {
    void exited.then(({ code, signal }) => reject(new Error(`server exited (${code ?? signal}) before starting: ${err.slice(0, 2000)}`)));
    lines(proc.stderr, (l) => {
      err += `${l}\n`;
      const rec = parse(l);
      if (rec === undefined) return;
      logs.push(rec);
      if (rec['msg'] === 'metrics-distributor started.') resolve(rec as unknown as { listeners: string[]; admin?: string });
    });
  });
  started.catch(() => undefined);
  lines(proc.stdout, (l) => {
    const rec = parse(l);
    if (rec !== undefined) out.push(rec);
  });
  return { proc, out, logs, stderr: () => err, started, exited };
}

/** The port of the listener whose address starts with `scheme://`. */
export function portOf(addresses: readonly string[], scheme: string): number {
  const a = addresses.find((x) => x.startsWith(`${scheme}://`));
  if (a === undefined) throw new Error(`no ${scheme} listener in ${addresses.join(', ')}`);
  return Number(new URL(a.replace(/^udp:/, 'http:').replace(/^tcp:/, 'http:')).port);
}

/** Polls `pred` every 50 ms until it holds or `timeoutMs` passed. */
export async function until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function lines(stream: NodeJS.ReadableStream, on: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      on(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
}

function parse(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
