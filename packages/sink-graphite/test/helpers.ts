import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ComponentContext, ComponentStats, silentLogger, type MetricBatch, type Series, type SketchSeries } from '@metrics-distributor/core';

const run = promisify(execFile);

/** A sink context whose drops can be read back. */
export function testContext(): ComponentContext<'sink'> {
  return new ComponentContext('sink', 'sink-graphite', silentLogger(), new ComponentStats('sink-graphite'));
}

/** A window with only `series` (and optionally sketches, events…), 10 s long, starting at `startMs`. */
export function batch(startMs: number, series: Series[], extra: Partial<MetricBatch> = {}): MetricBatch {
  return { windowStartMs: startMs, intervalMs: 10_000, series, sketches: [], events: [], serviceChecks: [], ...extra };
}

/** A series point of a 10 s window at `startMs`. */
export function point(startMs: number, metric: string, type: Series['type'], value: number, extra: Partial<Series> = {}): Series {
  return { metric, type, value, timestamp: Math.floor(startMs / 1000), interval: 10, tags: [], host: '', ...extra };
}

/** A distribution of a 10 s window. */
export function sketch(startMs: number, metric: string, s: SketchSeries['sketch'], extra: Partial<SketchSeries> = {}): SketchSeries {
  return { metric, timestamp: Math.floor(startMs / 1000), interval: 10, tags: [], host: '', sketch: s, ...extra };
}

/** A port free right now (bound and released). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Waits until `check` returns a value other than undefined, or throws after `timeoutMs`. */
export async function until<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A line-recording TCP server standing in for carbon, restartable on the same port. */
export class StandIn {
  /** Every line received, in order. */
  readonly lines: string[] = [];
  /** Connections accepted so far. */
  connections = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  /** Listens (on the previous port when restarted); `paused` connections are accepted but never read. */
  async start(opts: { paused?: boolean } = {}): Promise<this> {
    const server = createServer((sock) => {
      this.connections++;
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
      sock.on('error', () => undefined);
      if (opts.paused === true) {
        sock.pause();
        return;
      }
      let rest = '';
      sock.setEncoding('utf8');
      sock.on('data', (chunk: string) => {
        rest += chunk;
        const parts = rest.split('\n');
        rest = parts.pop()!;
        this.lines.push(...parts);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    return this;
  }

  /** Stops listening and resets every connection, as a crashed carbon would. */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const srv = this.server;
    this.server = undefined;
    if (srv !== undefined) await new Promise<void>((r) => srv.close(() => r()));
  }
}

/** A real carbon-cache in a temp directory, 1 s retention, on free ports. */
export class Carbon {
  readonly dir = mkdtempSync(join(tmpdir(), 'md-carbon-'));
  port = 0;
  private ports: [number, number, number] | undefined;
  private child: ChildProcess | undefined;
  private output = '';

  /** Whether carbon-cache is installed. */
  static available(): boolean {
    return existsSync('/usr/bin/carbon-cache') && existsSync('/usr/bin/whisper-fetch');
  }

  /** Starts carbon-cache and waits until its line receiver accepts connections. */
  async start(): Promise<this> {
    // A restart keeps its ports, so a sink pointed at the first instance finds the second.
    this.ports ??= [await freePort(), await freePort(), await freePort()];
    const [line, pickle, query] = this.ports;
    this.port = line;
    for (const d of ['conf', 'whisper', 'log', 'run']) mkdirSync(join(this.dir, d), { recursive: true });
    writeFileSync(
      join(this.dir, 'conf', 'carbon.conf'),
      [
        '[cache]',
        `STORAGE_DIR = ${this.dir}`,
        `LOCAL_DATA_DIR = ${join(this.dir, 'whisper')}`,
        `WHISPER_DIR = ${join(this.dir, 'whisper')}`,
        `LOG_DIR = ${join(this.dir, 'log')}`,
        `PID_DIR = ${join(this.dir, 'run')}`,
        'ENABLE_LOGROTATION = False',
        'LINE_RECEIVER_INTERFACE = 127.0.0.1',
        `LINE_RECEIVER_PORT = ${line}`,
        'ENABLE_UDP_LISTENER = False',
        'PICKLE_RECEIVER_INTERFACE = 127.0.0.1',
        `PICKLE_RECEIVER_PORT = ${pickle}`,
        'CACHE_QUERY_INTERFACE = 127.0.0.1',
        `CACHE_QUERY_PORT = ${query}`,
        'MAX_UPDATES_PER_SECOND = 100000',
        'MAX_CREATES_PER_MINUTE = 100000',
        'ENABLE_TAGS = False',
        'LOG_LISTENER_CONN_SUCCESS = False',
        '',
      ].join('\n'),
    );
    // 1 s points for an hour: one point per window start, stored as sent.
    writeFileSync(join(this.dir, 'conf', 'storage-schemas.conf'), '[all]\npattern = .*\nretentions = 1s:1h\n');
    writeFileSync(join(this.dir, 'conf', 'storage-aggregation.conf'), '[all]\npattern = .*\nxFilesFactor = 0\naggregationMethod = sum\n');
    const child = spawn('/usr/bin/carbon-cache', [`--config=${join(this.dir, 'conf', 'carbon.conf')}`, '--nodaemon', 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.output += d.toString()));
    await until(() => (this.output.includes(`CarbonReceiverFactory starting on ${line}`) ? true : child.exitCode !== null ? Promise.reject(new Error(`carbon-cache exited: ${this.output}`)) : undefined), 30_000, 'carbon-cache to listen');
    return this;
  }

  /** Stops carbon-cache (SIGTERM, then SIGKILL) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** Removes the temp directory. */
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The whisper file of a metric name (tagged names are stored under carbon's hash). */
  file(name: string): string {
    if (!name.includes(';')) return join(this.dir, 'whisper', ...name.split('.')) + '.wsp';
    const h = createHash('sha256').update(name).digest('hex');
    return join(this.dir, 'whisper', '_tagged', h.slice(0, 3), h.slice(3, 6), `${h}.wsp`);
  }

  /** The non-null points of `name` of the last hour, by `whisper-fetch`, or undefined while its file does not exist. */
  async points(name: string): Promise<Map<number, number> | undefined> {
    const fromS = Math.floor(Date.now() / 1000) - 3500;
    const file = this.file(name);
    if (!existsSync(file)) return undefined;
    const { stdout } = await run('/usr/bin/whisper-fetch', [`--from=${fromS - 1}`, `--until=${Math.floor(Date.now() / 1000) + 1}`, file]);
    const out = new Map<number, number>();
    for (const l of stdout.split('\n')) {
      const [ts, v] = l.split('\t');
      if (ts !== undefined && v !== undefined && v !== 'None') out.set(Number(ts), Number(v));
    }
    return out;
  }

  /** Waits until `name` holds `value` at `tsS`; returns every point read last. */
  async waitFor(name: string, tsS: number, value: number, timeoutMs = 20_000): Promise<Map<number, number>> {
    let last: Map<number, number> | undefined;
    try {
      return await until(async () => {
        last = await this.points(name);
        return last?.get(tsS) === value ? last : undefined;
      }, timeoutMs, `${name} = ${value} at ${tsS}`);
    } catch (err) {
      throw new Error(`${(err as Error).message}; read ${JSON.stringify(last === undefined ? 'no file' : [...last])}`, { cause: err });
    }
  }
}
