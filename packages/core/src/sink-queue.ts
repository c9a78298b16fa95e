import type { ComponentContext } from './component.js';
import type { BatchDelivery, ExportResult, Sink } from './contracts.js';
import { CircuitBreaker } from './delivery/backoff.js';
import { DiskBuffer, type DiskBufferOptions, type DiskWindow } from './disk/disk-buffer.js';
import { MdError } from './errors.js';
import { RateLimitedLog, type Logger } from './logger.js';
import type { MetricBatch } from './model.js';
import type { ComponentStats } from './stats.js';

/** At a shutdown deadline, disk writes in progress get this long to finish before their windows count as lost. */
const WRITE_GRACE_MS = 1000;

/** Options of a {@link SinkQueue}. */
export interface SinkQueueOptions {
  /** Closed windows waiting for this sink; beyond it the oldest is dropped. Default 16. */
  maxBatches?: number;
  /** First retry delay for a `retryable` result; doubles (jittered, core's one backoff) up to `maxRetryDelayMs`. Default 1000. */
  retryBaseMs?: number;
  /** Longest retry delay. Default 30000. */
  maxRetryDelayMs?: number;
  /**
   * Keeps every window on disk until the sink settled it (`--data-dir`), replaying what is left after a
   * restart. Without it, windows live in memory only.
   */
  disk?: DiskBufferOptions;
}

/** A window in the queue: in memory, on disk, or both. */
interface Entry {
  /** The window, while held in memory; read back from disk otherwise. */
  batch: MetricBatch | undefined;
  /** Settles once the disk write is over (undefined result: memory only). */
  written: Promise<unknown> | undefined;
  /** Its place on disk, once written. */
  disk: DiskWindow | undefined;
  /** Found on disk at start: counted `replayed` when exported. */
  replay: boolean;
}

/**
 * One sink's bounded queue and export loop. The aggregator only ever calls `push()`, which never waits,
 * so a slow or failing sink can delay neither ingestion, nor the next window, nor other sinks.
 *
 * No sink in this repository returns `retryable`: payload-level retries belong to core's
 * `DeliveryPolicy` inside the sink. A sink that does return it gets the same backoff here (core's one
 * {@link CircuitBreaker}), with the whole window kept at the head of the queue.
 */
export class SinkQueue {
  private readonly queue: Entry[] = [];
  /** Windows whose items were all kept on disk (the sink let go of them): exported again once delivery works. */
  private parked: Entry[] = [];
  private disk: DiskBuffer | undefined;
  private readonly diskReady: Promise<DiskBuffer | undefined> | undefined;
  private readonly maxBatches: number;
  private readonly breaker: CircuitBreaker;
  private running = false;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeRetry: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly errorLog = new RateLimitedLog(60_000);

  /** Builds the queue of `sink` with the sink's component context. */
  constructor(
    /** The sink fed by this queue. */
    readonly sink: Sink,
    /** The sink's component context: its stats, logger and drop call. */
    private readonly context: ComponentContext<'sink'>,
    opts: SinkQueueOptions = {},
  ) {
    this.maxBatches = opts.maxBatches ?? 16;
    const baseMs = opts.retryBaseMs ?? 1000;
    this.breaker = new CircuitBreaker({ baseMs, maxMs: Math.max(baseMs, opts.maxRetryDelayMs ?? 30_000) });
    if (opts.disk !== undefined) this.diskReady = this.openDisk(opts.disk);
  }

  private async openDisk(opts: DiskBufferOptions): Promise<DiskBuffer | undefined> {
    const opened = await DiskBuffer.open(opts, this.context, (w) => this.evict(w));
    if (opened === undefined) return undefined;
    this.disk = opened.buffer;
    // Oldest first, ahead of anything pushed while the directory was being scanned.
    const replay = opened.replay.map((w): Entry => ({ batch: undefined, written: undefined, disk: w, replay: true }));
    this.queue.unshift(...replay);
    this.stats.received += replay.length;
    if (replay.length > 0) {
      this.logger.info({ dir: opts.dir, windows: replay.length }, 'Data directory: replaying windows left from the last run.');
      this.stats.gauge('queue_depth', this.queue.length);
      if (!this.running) void this.run();
    }
    return this.disk;
  }

  /** Resolves once the data directory (if any) is scanned and its windows queued for replay. */
  async opened(): Promise<void> {
    await this.diskReady;
  }

  /** The disk bound dropped `w`'s segment: true (the window is lost) unless it is still held in memory. */
  private evict(w: DiskWindow): boolean {
    const inParked = this.parked.findIndex((e) => e.disk === w);
    if (inParked >= 0) {
      this.parked.splice(inParked, 1);
      return true;
    }
    const i = this.queue.findIndex((e) => e.disk === w);
    if (i < 0 || this.queue[i]!.batch !== undefined || (i === 0 && this.running)) return false;
    this.queue.splice(i, 1);
    this.stats.gauge('queue_depth', this.queue.length);
    return true;
  }

  private get stats(): ComponentStats {
    return this.context.stats;
  }

  private get logger(): Logger {
    return this.context.logger;
  }

  /** Batches waiting, the one being exported included. */
  get depth(): number {
    return this.queue.length;
  }

  /**
   * Enqueues a closed window and returns at once. With a data directory the window is written first
   * (off the event loop) and only then handed to the sink; otherwise, or when the disk fails, on
   * overflow of the in-memory windows the oldest is dropped and counted.
   */
  push(batch: MetricBatch): Promise<void> {
    if (this.closed) {
      this.context.drop('closed');
      return Promise.resolve();
    }
    const e: Entry = { batch, written: undefined, disk: undefined, replay: false };
    if (this.diskReady !== undefined) {
      e.written = this.diskReady
        .then((d) => {
          if (d !== undefined) return d.add(batch);
          this.stats.count('disk_fallback'); // the directory could not be opened
          return undefined;
        })
        .then((w) => {
          e.disk = w;
          // On disk, only the next windows to export stay in memory too; the rest are read back in turn.
          if (w !== undefined && this.queue.indexOf(e) >= this.maxBatches) e.batch = undefined;
          if (w === undefined) this.boundMemory();
        });
    }
    this.queue.push(e);
    this.stats.received++;
    if (this.diskReady === undefined) this.boundMemory();
    this.stats.gauge('queue_depth', this.queue.length);
    if (!this.running) void this.run();
    // Settled either way: a failed write is counted where it happens, the caller only waits for the attempt.
    return e.written === undefined ? Promise.resolve() : e.written.then(() => undefined, () => undefined);
  }

  /** Drops the oldest window held only in memory while more than `maxBatches` are. */
  private boundMemory(): void {
    const memoryOnly = (e: Entry): boolean => e.disk === undefined && e.batch !== undefined;
    let held = 0;
    for (const e of this.queue) if (memoryOnly(e)) held++;
    if (held <= this.maxBatches) return;
    // The head may be mid-export; dropping it would race it, so drop the oldest waiting one.
    const victim = this.queue.findIndex((e, i) => memoryOnly(e) && !(i === 0 && this.running) && e.written === undefined) ;
    const fallback = victim >= 0 ? victim : this.queue.findIndex((e, i) => memoryOnly(e) && !(i === 0 && this.running));
    if (fallback < 0) return;
    this.queue.splice(fallback, 1);
    this.context.drop('queue_full', 1, {
      code: 'MD_ERR_SINK_QUEUE_FULL',
      level: 'error',
      fields: { sink: this.sink.name, maxBatches: this.maxBatches },
      message: 'Sink queue full; dropped the oldest window.',
    });
    this.stats.gauge('queue_depth', this.queue.length);
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const e = this.queue[0]!;
        // The window is on disk before the sink sees it (or known to stay in memory).
        if (e.written !== undefined) await e.written;
        if (this.queue[0] !== e) continue; // replayed windows went ahead, or the disk bound dropped it
        const batch = e.batch ?? (e.disk !== undefined ? await this.disk?.load(e.disk) : undefined);
        if (batch === undefined) {
          // Unreadable from disk: counted by the disk buffer.
          this.queue.shift();
          if (e.disk !== undefined) await this.disk?.settle(e.disk);
          continue;
        }
        if (e.replay) {
          e.replay = false;
          this.stats.count('replayed');
        }
        const delivery = e.disk?.onDisk === true && this.disk !== undefined ? this.disk.attempt(e.disk, this.listener()) : undefined;
        const result = await this.exportSafely(batch, delivery);
        if (result.code === 'retryable' && !this.closed) {
          this.breaker.failure(result.retryAfterMs);
          this.logFailure(result);
          await this.sleep(this.breaker.remainingMs);
          continue; // the batch is still at the head unless overflow dropped it
        }
        if (this.queue[0] === e) this.queue.shift();
        e.batch = undefined;
        if (e.disk !== undefined && (!this.sink.tracksDelivery || delivery === undefined)) await this.disk?.settle(e.disk);
        if (result.code === 'success') {
          this.breaker.success();
          this.stats.sent++;
        } else {
          this.stats.failed++;
          this.logFailure(result);
        }
        this.stats.gauge('queue_depth', this.queue.length);
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** What the per-item bookkeeping of `e`'s export tells the queue. */
  private listener(): { settled: (w: DiskWindow, deliveredAny: boolean) => void; kept: (w: DiskWindow) => void } {
    return {
      settled: (w, deliveredAny) => {
        void this.disk?.settle(w);
        // Delivery works again: windows the sink had to let go of go next, oldest first.
        if (deliveredAny && this.parked.length > 0 && !this.closed) {
          const back = this.parked;
          this.parked = [];
          this.queue.splice(this.running ? 1 : 0, 0, ...back);
          this.stats.gauge('queue_depth', this.queue.length);
          if (!this.running) void this.run();
        }
      },
      kept: (w) => {
        // Parked even while shutting down: the next start replays it, and should the bound drop its
        // segment before then, the eviction finds it here and counts it.
        if (w.onDisk) this.parked.push({ batch: undefined, written: undefined, disk: w, replay: false });
      },
    };
  }

  private async exportSafely(batch: MetricBatch, delivery: BatchDelivery | undefined): Promise<ExportResult> {
    try {
      return await this.sink.export(batch, delivery);
    } catch (err) {
      return { code: 'failure', error: new MdError('MD_ERR_SINK_EXPORT', `Sink ${this.sink.name} threw`, { cause: err }) };
    }
  }

  private logFailure(result: Exclude<ExportResult, { code: 'success' }>): void {
    this.errorLog.maybe((suppressed) =>
      this.logger.error(
        { err: result.error, sink: this.sink.name, result: result.code, suppressed },
        result.code === 'retryable' ? 'Sink export failed; will retry.' : 'Sink export failed; batch dropped.',
      ),
    );
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeRetry = resolve;
      this.retryTimer = setTimeout(resolve, ms);
      this.retryTimer.unref();
    });
  }

  /** Resolves when nothing is left to export (or at once when idle). */
  private idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops accepting, exports what is queued until `deadlineMs`, then shuts the sink down. Whatever is
   * still queued at the deadline is counted as dropped (`shutdown`) and logged, unless it is on disk:
   * then the next start replays it.
   */
  async shutdown(deadlineMs: number): Promise<void> {
    if (this.closed) return;
    // A retry wait would outlast a short deadline; try the head once more right away.
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    const remaining = deadlineMs - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.idle().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), Math.max(0, remaining));
      }),
    ]);
    clearTimeout(timer);
    if (timedOut && this.queue.length > 0) {
      // A write still going is about to make its window safe: give it a short grace.
      const writes = Promise.allSettled(this.queue.map((e) => e.written ?? Promise.resolve()));
      await Promise.race([writes, new Promise((r) => setTimeout(r, WRITE_GRACE_MS).unref())]);
      // Windows on disk are not lost: the next start replays them.
      const lost = this.queue.filter((e) => e.disk?.onDisk !== true).length;
      const kept = this.queue.length - lost;
      if (kept > 0) this.logger.info({ sink: this.sink.name, windows: kept }, 'Shutdown deadline passed; windows left in the data directory for the next start.');
      if (lost > 0) {
        this.context.drop('shutdown', lost, {
          code: 'MD_ERR_SINK_TIMEOUT',
          level: 'error',
          fields: { sink: this.sink.name, lostBatches: lost },
          message: 'Shutdown deadline passed; windows not delivered are lost.',
        });
      }
      this.queue.length = 0;
    }
    try {
      await this.sink.shutdown(deadlineMs);
    } catch (err) {
      this.logger.error({ err, sink: this.sink.name }, 'Sink shutdown failed.');
    }
    await this.disk?.close();
  }
}
