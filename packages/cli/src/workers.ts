import cluster, { type Worker } from 'node:cluster';
import {
  Aggregator,
  ComponentNames,
  MdError,
  StatsRegistry,
  alignWindow,
  componentContext,
  encodeOpenWindow,
  type CheckpointParts,
  type ComponentContext,
  type EncodedWindowPart,
  type Frontend,
  type Logger,
  type PartsTaking,
  type WindowState,
  type WindowStateRest,
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
  | { kind: 'fatal'; message: string }
  // A snapshot of the open window for a checkpoint, in pieces (one IPC message each), then its end:
  // `rest` undefined when the window was drained meanwhile (its state comes as a 'state' message).
  | { kind: 'part'; id: number; piece: Uint8Array }
  | { kind: 'part-end'; id: number; rest: WindowStateRest | undefined };

/** Messages from the primary to a worker. */
type ToWorker = { kind: 'shutdown' } | { kind: 'snapshot'; id: number };

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
  let snapshotting = false;
  // Sent only while connected: a snapshot may still be finishing after the final window went.
  const sendPart = (m: FromWorker) => {
    if (process.connected) process.send?.(m);
  };
  const snapshot = async (id: number) => {
    if (snapshotting || stopping) return sendPart({ kind: 'part-end', id, rest: undefined });
    snapshotting = true;
    try {
      const got = await encodeOpenWindow(agg, (piece) => sendPart({ kind: 'part', id, piece }));
      sendPart({ kind: 'part-end', id, rest: stopping ? undefined : got?.rest });
    } finally {
      snapshotting = false;
    }
  };
  process.on('message', (m: ToWorker) => {
    if (m.kind === 'shutdown') void stop();
    else if (m.kind === 'snapshot') void snapshot(m.id);
  });
  // The primary is gone: nobody would receive our windows.
  process.on('disconnect', () => process.exit(0));
}

/**
 * The primary's latest part of the open window from each UDP worker, for `--checkpoint-open-window`.
 * A worker's part is dropped once its drained state of that window (or a later one) is merged into
 * the primary's window: the data is in the primary's own snapshot then, and both would count it twice.
 * A dead worker's last part stays until its window closes.
 */
export class WorkerParts {
  private readonly latest = new Map<number, EncodedWindowPart>();
  /** Worker id to the start of its newest window state merged; kept after the worker exits. */
  private readonly mergedUpTo = new Map<number, number>();
  /** Parts dropped because their state was merged: a snapshot during which this moves holds some of one. */
  private dropped = 0;

  /** A worker's complete part; ignored (false) when that worker's state of its window was merged already or the window closed. */
  received(workerId: number, part: EncodedWindowPart, openWindowStartMs: number): boolean {
    if (part.windowStartMs < openWindowStartMs) return false;
    if ((this.mergedUpTo.get(workerId) ?? -Infinity) >= part.windowStartMs) return false;
    this.latest.set(workerId, part);
    return true;
  }

  /** The worker's drained state of window `windowStartMs` was merged into the primary's window. */
  merged(workerId: number, windowStartMs: number): void {
    this.mergedUpTo.set(workerId, Math.max(this.mergedUpTo.get(workerId) ?? -Infinity, windowStartMs));
    const part = this.latest.get(workerId);
    if (part === undefined || part.windowStartMs > windowStartMs) return;
    this.latest.delete(workerId);
    this.dropped++;
  }

  /** Called as a checkpoint's snapshot of the primary's window starts (see CheckpointParts). */
  begin(): PartsTaking {
    const mark = this.dropped;
    return {
      take: (windowStartMs) => {
        // A part's state was merged while the primary's window was being copied: partly in the copy.
        if (this.dropped !== mark) return undefined;
        const out: EncodedWindowPart[] = [];
        for (const [id, part] of this.latest) {
          // Of a window that closed (a dead worker's, or one that came late): never written again.
          if (part.windowStartMs < windowStartMs) this.latest.delete(id);
          else if (part.windowStartMs === windowStartMs) out.push(part);
        }
        return out;
      },
    };
  }

  /** Parts held (for tests). */
  get size(): number {
    return this.latest.size;
  }
}

/** A snapshot asked of one worker and not yet complete. */
interface AskedSnapshot {
  id: number;
  pieces: Buffer[];
  done: Promise<void>;
  resolve: () => void;
}

/** Options of a {@link UdpWorkerPool}. */
export interface UdpWorkerPoolOptions {
  /** Worker processes to fork (more than 1, or a single UdpFrontend would do). */
  workers: number;
  /** The server config, handed to every worker. */
  config: ServerConfig;
  /** How long the primary waits at a boundary for every worker's partial window. */
  graceMs: number;
  /** How long a checkpoint waits for the workers' snapshots before it uses the last ones (default 1000). */
  snapshotWaitMs?: number;
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
  /** Workers listening, so able to answer a snapshot request. */
  private readonly ready = new Set<Worker>();
  private readonly parts = new WorkerParts();
  private readonly asked = new Map<number, AskedSnapshot>();
  private snapshotIds = 0;

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
            this.ready.add(worker);
            resolve();
            return;
          case 'fatal':
            reject(new Error(`UDP worker failed to start: ${m.message}`));
            return;
          case 'state':
            this.onState(worker, m.state, m.stats);
            return;
          case 'part': {
            const asked = this.asked.get(worker.id);
            if (asked?.id === m.id) asked.pieces.push(Buffer.isBuffer(m.piece) ? m.piece : Buffer.from(m.piece.buffer, m.piece.byteOffset, m.piece.byteLength));
            return;
          }
          case 'part-end': {
            const asked = this.asked.get(worker.id);
            if (asked?.id !== m.id) return;
            this.asked.delete(worker.id);
            if (m.rest !== undefined) this.parts.received(worker.id, { windowStartMs: m.rest.windowStartMs, pieces: asked.pieces, rest: m.rest }, this.deps.aggregator.currentWindowStart);
            asked.resolve();
            return;
          }
        }
      });
      worker.on('exit', (code, signal) => {
        this.workers.delete(worker);
        this.ready.delete(worker);
        this.asked.get(worker.id)?.resolve();
        this.asked.delete(worker.id);
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

  /**
   * The workers' parts of the open window for `--checkpoint-open-window`: each checkpoint asks every
   * listening worker for a snapshot (without draining) and writes the parts with the primary's own.
   */
  checkpointParts(): CheckpointParts {
    return { refresh: () => this.refreshParts(), begin: () => this.parts.begin() };
  }

  /** Asks every listening worker for a snapshot (one at a time per worker); resolves when all answered or after `snapshotWaitMs`. */
  private refreshParts(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    const waits: Promise<void>[] = [];
    for (const w of this.ready) {
      let asked = this.asked.get(w.id);
      if (asked === undefined) {
        if (!w.isConnected()) continue;
        let resolve!: () => void;
        const done = new Promise<void>((r) => (resolve = r));
        asked = { id: ++this.snapshotIds, pieces: [], done, resolve };
        this.asked.set(w.id, asked);
        w.send({ kind: 'snapshot', id: asked.id } satisfies ToWorker);
      }
      waits.push(asked.done);
    }
    if (waits.length === 0) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((r) => (timer = setTimeout(r, this.opts.snapshotWaitMs ?? 1000)));
    return Promise.race([Promise.all(waits).then(() => undefined), limit]).finally(() => clearTimeout(timer));
  }

  private onState(worker: Worker, state: WindowState, delta: StatsDelta): void {
    this.deps.aggregator.mergeState(state);
    this.parts.merged(worker.id, state.windowStartMs);
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
