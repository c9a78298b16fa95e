/** Running the real Prometheus from Debian's package in tests: availability, a free port, its query API. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function has(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}
/** Skip reason when promtool is missing, else false. */
export const NO_PROMTOOL = has('promtool') ? false : 'promtool not installed (Debian: apt-get install -y prometheus; .ci/run does it)';
/** Skip reason when prometheus is missing, else false. */
export const NO_PROMETHEUS = has('prometheus') ? false : 'prometheus not installed (Debian: apt-get install -y prometheus; .ci/run does it)';

/** A port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** An instant query's result vector. */
export async function query(promPort: number, q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== 'success') throw new Error(`query ${q}: ${JSON.stringify(body)}`);
  return body.data.result;
}

/** Polls until `fn` returns a value other than undefined, or fails after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${last instanceof Error ? last.message : JSON.stringify(last)}`}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}


/** A running Prometheus: its port, its recent log, and a stop that waits for it (SIGKILL after 5 s). */
export interface RunningPrometheus {
  port: number;
  log(): string;
  stop(): Promise<void>;
}

/** Starts Prometheus on a free port with `configYaml` and a temp TSDB, and waits until it is ready. */
export async function startPrometheus(configYaml: string, extraArgs: readonly string[] = []): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'md-prom-'));
  const port = await freePort();
  writeFileSync(join(dir, 'prometheus.yml'), configYaml);
  const prom = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', ...extraArgs],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  prom.stderr.on('data', (c: Buffer) => void (log = (log + c.toString()).slice(-4000)));
  const stop = async (): Promise<void> => {
    if (prom.exitCode === null && prom.signalCode === null) {
      const exited = new Promise((r) => prom.once('exit', r));
      prom.kill('SIGTERM');
      // Prometheus stops in well under a second; a hung one must not hang the test run.
      const kill = setTimeout(() => prom.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(kill);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until('Prometheus to be ready', async () => ((await fetch(`http://127.0.0.1:${port}/-/ready`)).ok ? true : undefined), 20_000);
  } catch (err) {
    await stop();
    throw new Error(`${String(err)}\nprometheus log: ${log}`);
  }
  return { port, log: () => log, stop };
}
