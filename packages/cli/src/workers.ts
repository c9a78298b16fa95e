import cluster, { type Worker } from 'node:cluster';
import {
  Aggregator,
  ComponentNames,
  MdError,
  StatsRegistry,
  alignWindow,
  componentContext,
  type ComponentContext,
  type Frontend,
  type Logger,
  type WindowState,
} from '@metrics-distributor/core';
import { KernelDropWatch, UdpFrontend, type UdpBoundAddress } from '@metrics-distributor/frontend-statsd-udp';
import type { ServerConfig } from './config.js';
import { transformOptions } from './options/transform.js';
import { udpOptions } from './statsd-options.js';

/**
 * `--workers n`: n processes receive on the one UDP port (node:cluster shares the socket), each
 * aggregates its own window, and at every boundary sends it to the primary, which merges the partial
 * windows with core's merge functions and flushes once. TCP, HTTP and the sinks stay in the primary.
 */

const CONFIG_ENV = 'METRICS_DISTRIBUTOR_WORKER_CONFIG';

/** Counter deltas of a worker's components since its last message, applied to the primary's stats. */
type StatsDelta = Record<string, { counters: Record<string, number>; drops: Record<string, number>; named: Record<string, number> }>;

/** Messages from a worker to the primary. */
type FromWorker =
  | { kind: 'listening'; addresses: string[]; bound: UdpBoundAddress }
  | { kind: 'state'; state: WindowState; stats: StatsDelta; final: boolean }
  | { kind: 'fatal'; message: string };

/** Messages from the primary to a worker. */
type ToWorker = { kind: 'shutdown' };

const COUNTERS = ['packets', 'bytes', 'received', 'parsed', 'bad', 'sent', 'failed'] as const;

/** True in a process forked by {@link UdpWorkerPool}. */
export function isUdpWorker(): boolean {
  return cluster.isWorker && process.env[CONFIG_ENV] !== undefined;
}

/** Resolves `--workers` (`auto` means one per core). */
export function resolveWorkers(raw: number | 'auto', cores: number): number {
  return raw === 'auto' ? Math.max(1, cores) : raw;
}

/** Takes every component's counters since the previous call, so each is shipped once. */
function statsDelta(stats: StatsRegistry, last: Map<string, number>): StatsDelta {
  const out: StatsDelta = {};
  for (const s of stats.all()) {
    const entry = { counters: {} as Record<string, number>, drops: {} as Record<string, number>, named: {} as Record<string, number> };
    for (const f of COUNTERS) {
      const id = `${s.component}/${f}`;
      const d = s[f] - (last.get(id) ?? 0);
      if (d !== 0) entry.counters[f] = d;
      last.set(id, s[f]);
    }
    for (const [reason, total] of s.dropReasons()) {
      const id = `${s.component}/drop/${reason}`;
      const d = total - (last.get(id) ?? 0);
      if (d !== 0) entry.drops[reason] = d;
      last.set(id, total);
    }
    for (const [name, total] of s.namedCounters()) {
      const id = `${s.component}/named/${name}`;
      const d = total - (last.get(id) ?? 0);
      if (d !== 0) entry.named[name] = d;
      last.set(id, total);
    }
    out[s.component] = entry;
  }
  return out;
}

/** The body of a worker process: bind the shared UDP socket, aggregate, ship partial windows. */
export async function runUdpWorker(logger: Logger): Promise<void> {
  const config = JSON.parse(process.env[CONFIG_ENV]!) as ServerConfig;
  const send = (m: FromWorker) => process.send?.(m);
  // The primary decides when to stop; a Ctrl-C reaches the whole process group, so ignore it here.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  const stats = new StatsRegistry();
  const agg = new Aggregator({
    stats,
    flushIntervalMs: config.flushIntervalMs,
    hostname: config.hostname,
    maxContexts: config.maxContexts,
    gaugeDeltas: config.gaugeDeltas,
    globalTags: config.tags,
    // The same mapping and filters as the primary: a worker's contexts are already the mapped ones,
    // and the primary's merge takes them as they are.
    transform: transformOptions(config),
    // Self-metrics travel as counter deltas instead, so the primary's totals are exact sums.
    selfMetrics: false,
    logger,
  });
  const context = componentContext({ logger, stats }, 'statsd-udp', ComponentNames.statsdUdp);
  // The workers share one socket: the primary counts its kernel drops, once.
  const frontend = new UdpFrontend(udpOptions(config, 0), { target: agg.target(context), context });
  try {
    await frontend.start();
  } catch (err) {
    send({ kind: 'fatal', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  send({ kind: 'listening', addresses: [...frontend.addresses()], bound: frontend.boundAddress()! });
  const last = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    const now = Date.now();
    const next = alignWindow(now, config.flushIntervalMs) + config.flushIntervalMs;
    timer = setTimeout(() => {
      send({ kind: 'state', state: agg.drainState(), stats: statsDelta(stats, last), final: false });
      schedule();
    }, next - now);
  };
  schedule();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearTimeout(timer);
    await frontend.close();
    const final: FromWorker = { kind: 'state', state: agg.drainState(), stats: statsDelta(stats, last), final: true };
    // Disconnect only once the IPC channel has written the final window.
    process.send?.(final, undefined, {}, () => process.disconnect?.());
  };
  process.on('message', (m: ToWorker) => {
    if (m.kind === 'shutdown') void stop();
  });
  // The primary is gone: nobody would receive our windows.
  process.on('disconnect', () => process.exit(0));
}

/** Options of a {@link UdpWorkerPool}. */
export interface UdpWorkerPoolOptions {
  /** Worker processes to fork (more than 1, or a single UdpFrontend would do). */
  workers: number;
  /** The server config, handed to every worker. */
  config: ServerConfig;
  /** How long the primary waits at a boundary for every worker's partial window. */
  graceMs: number;
}

/** Collaborators of a {@link UdpWorkerPool}, built by the server. */
export interface UdpWorkerPoolDeps {
  /** Merges the workers' partial windows. */
  aggregator: Aggregator;
  /** The primary's self-metrics, where the workers' counter deltas land. */
  stats: StatsRegistry;
  /** The pool's own context (`workers`): worker deaths, restarts, late windows. */
  context: ComponentContext<'workers'>;
  /** The `statsd-udp` context of the primary, where the shared socket's kernel drops are counted, once. */
  udpContext: ComponentContext<'statsd-udp'>;
}

/**
 * The UDP front-end of `--workers n`, primary side: forks the workers, merges their windows into the
 * aggregator, restarts dead ones. A `Frontend` like the others; `waitForWindow` is the hook the
 * server calls before closing each window, as the workers' parts arrive by IPC just after the boundary.
 */
export class UdpWorkerPool implements Frontend {
  /** Component id: the pool's context name. */
  readonly name: string;
  private readonly workers = new Set<Worker>();
  private readonly reported = new Map<number, number>();
  private waiting: { windowStart: number; resolve: () => void } | undefined;
  private stopping = false;
  private closing: Promise<void> | undefined;
  private restarts: number[] = [];
  private listening: { addresses: string[]; bound: UdpBoundAddress } | undefined;
  private kernelDrops: KernelDropWatch | undefined;
  private readonly logger: Logger;

  constructor(
    private readonly opts: UdpWorkerPoolOptions,
    private readonly deps: UdpWorkerPoolDeps,
  ) {
    this.name = deps.context.name;
    this.logger = deps.context.logger;
  }

  /** Forks the workers and resolves once every one of them is listening; on failure stops those that started, then rejects. */
  async start(): Promise<void> {
    if (this.closing !== undefined) throw new MdError('MD_ERR_FRONTEND_BIND', 'the UDP worker pool was closed; create a new one');
    cluster.setupPrimary({ serialization: 'advanced' });
    try {
      await Promise.all(Array.from({ length: this.opts.workers }, () => this.fork()));
    } catch (err) {
      // Workers that did start hold the port: stop them before reporting the failure.
      await this.close(Date.now() + 2000);
      throw err;
    }
    const pollMs = this.opts.config.statsdUdpKernelDropsPollMs;
    if (this.listening !== undefined && pollMs > 0) {
      this.kernelDrops = new KernelDropWatch({ ...this.listening.bound, pollMs }, this.deps.udpContext);
      await this.kernelDrops.start();
    }
  }

  /** The workers' shared UDP address (`udp://host:port`); empty before start and after close. */
  addresses(): readonly string[] {
    return this.closing !== undefined || this.listening === undefined ? [] : this.listening.addresses;
  }

  private fork(): Promise<void> {
    const worker = cluster.fork({ [CONFIG_ENV]: JSON.stringify(this.opts.config) });
    this.workers.add(worker);
    return new Promise((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        switch (m.kind) {
          case 'listening':
            this.listening = { addresses: m.addresses, bound: m.bound };
            resolve();
            return;
          case 'fatal':
            reject(new Error(`UDP worker failed to start: ${m.message}`));
            return;
          case 'state':
            this.onState(worker, m.state, m.stats);
            return;
        }
      });
      worker.on('exit', (code, signal) => {
        this.workers.delete(worker);
        this.reported.delete(worker.id);
        this.wakeIfComplete();
        if (this.stopping) return;
        reject(new Error(`UDP worker exited during start-up (${code ?? signal})`));
        // The lost part cannot be measured, but the loss must show without reading logs.
        this.deps.context.stats.count('worker_deaths');
        this.logger.error({ workerId: worker.id, code, signal }, 'UDP worker died; its open window is lost. Restarting it.');
        this.restart();
      });
    });
  }

  private restart(): void {
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < 60_000);
    // A worker that dies at once would otherwise be re-forked in a tight loop.
    const delay = this.restarts.length >= 5 ? 5_000 : 0;
    this.restarts.push(now);
    setTimeout(() => {
      if (!this.stopping) this.fork().catch((err: unknown) => this.logger.error({ err }, 'UDP worker restart failed.'));
    }, delay).unref();
  }

  private onState(worker: Worker, state: WindowState, delta: StatsDelta): void {
    this.deps.aggregator.mergeState(state);
    for (const [component, d] of Object.entries(delta)) {
      const s = this.deps.stats.component(component);
      for (const [f, n] of Object.entries(d.counters)) s[f as (typeof COUNTERS)[number]] += n;
      for (const [reason, n] of Object.entries(d.drops)) s.drop(reason, n);
      for (const [name, n] of Object.entries(d.named)) s.count(name, n);
    }
    this.reported.set(worker.id, Math.max(this.reported.get(worker.id) ?? -Infinity, state.windowStartMs));
    this.wakeIfComplete();
  }

  private wakeIfComplete(): void {
    const w = this.waiting;
    if (w === undefined) return;
    for (const worker of this.workers) if ((this.reported.get(worker.id) ?? -Infinity) < w.windowStart) return;
    this.waiting = undefined;
    w.resolve();
  }

  /** Resolves once every live worker has sent its partial window `windowStart`, or after `graceMs`. */
  waitForWindow(windowStart: number, graceMs = this.opts.graceMs): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.waiting?.resolve === done) this.waiting = undefined;
        this.logger.warn({ windowStart }, 'Not every UDP worker reported its window in time; late parts go to the next window.');
        resolve();
      }, graceMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiting = { windowStart, resolve: done };
      this.wakeIfComplete();
    });
  }

  /**
   * Asks every worker to stop receiving and send its final window; resolves when all have exited, or
   * kills the rest at `deadlineMs` (default: the config's shutdown timeout from now). Idempotent.
   */
  close(deadlineMs = Date.now() + this.opts.config.shutdownTimeoutMs): Promise<void> {
    return (this.closing ??= this.stop(deadlineMs));
  }

  private async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    // The shared socket may be gone once the workers have exited: count its kernel drops while it is not.
    await this.kernelDrops?.poll();
    const exits = [...this.workers].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          w.once('exit', () => resolve());
          w.send({ kind: 'shutdown' } satisfies ToWorker);
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(exits), new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadlineMs - Date.now()))))]);
    clearTimeout(timer);
    for (const w of this.workers) if (!w.isDead()) w.kill('SIGKILL');
    await this.kernelDrops?.stop();
  }
}
