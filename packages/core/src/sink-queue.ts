import type { ComponentContext } from './component.js';
import type { ExportResult, Sink } from './contracts.js';
import { CircuitBreaker } from './delivery/backoff.js';
import { MdError } from './errors.js';
import { RateLimitedLog, type Logger } from './logger.js';
import type { MetricBatch } from './model.js';
import type { ComponentStats } from './stats.js';

/** Options of a {@link SinkQueue}. */
export interface SinkQueueOptions {
  /** Closed windows waiting for this sink; beyond it the oldest is dropped. Default 16. */
  maxBatches?: number;
  /** First retry delay for a `retryable` result; doubles (jittered, core's one backoff) up to `maxRetryDelayMs`. Default 1000. */
  retryBaseMs?: number;
  /** Longest retry delay. Default 30000. */
  maxRetryDelayMs?: number;
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
  private readonly queue: MetricBatch[] = [];
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

  /** Enqueues a closed window and returns at once; on overflow the oldest batch is dropped and counted. */
  push(batch: MetricBatch): void {
    if (this.closed) {
      this.context.drop('closed');
      return;
    }
    this.queue.push(batch);
    this.stats.received++;
    if (this.queue.length > this.maxBatches) {
      // The head may be mid-export; dropping index 0 would race it, so drop the oldest waiting one.
      const victim = this.running && this.queue.length > 1 ? 1 : 0;
      this.queue.splice(victim, 1);
      this.context.drop('queue_full', 1, {
        code: 'MD_ERR_SINK_QUEUE_FULL',
        level: 'error',
        fields: { sink: this.sink.name, maxBatches: this.maxBatches },
        message: 'Sink queue full; dropped the oldest window.',
      });
    }
    this.stats.gauge('queue_depth', this.queue.length);
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue[0]!;
        const result = await this.exportSafely(batch);
        if (result.code === 'retryable' && !this.closed) {
          this.breaker.failure(result.retryAfterMs);
          this.logFailure(result);
          await this.sleep(this.breaker.remainingMs);
          continue; // the batch is still at the head unless overflow dropped it
        }
        if (this.queue[0] === batch) this.queue.shift();
        if (result.code === 'success') {
          this.breaker.success();
          this.stats.sent++;
        }
        else {
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

  private async exportSafely(batch: MetricBatch): Promise<ExportResult> {
    try {
      return await this.sink.export(batch);
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
   * Stops accepting, exports what is queued until `deadlineMs`, then shuts the sink down.
   * Whatever is still queued at the deadline is counted as dropped (`shutdown`) and logged.
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
      this.context.drop('shutdown', this.queue.length, {
        code: 'MD_ERR_SINK_TIMEOUT',
        level: 'error',
        fields: { sink: this.sink.name, lostBatches: this.queue.length },
        message: 'Shutdown deadline passed; windows not delivered are lost.',
      });
      this.queue.length = 0;
    }
    try {
      await this.sink.shutdown(deadlineMs);
    } catch (err) {
      this.logger.error({ err, sink: this.sink.name }, 'Sink shutdown failed.');
    }
  }
}
