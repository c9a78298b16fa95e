/**
 * Sink fan-out: every closed window the aggregator emits goes to each sink's own bounded queue, so a
 * slow or failing sink delays neither the aggregator nor the other sinks.
 */
import { join } from 'node:path';
import { ComponentNames, sinkContext, type ComponentRoot } from './component.js';
import type { Sink } from './contracts.js';
import type { MetricBatch } from './model.js';
import { SinkQueue, type SinkQueueOptions } from './sink-queue.js';

/** Where and how much the sinks' windows are kept on disk (`--data-dir`). */
export interface FanoutDiskOptions {
  /** The data directory; each sink gets its own `sink-<name>` folder under it. */
  dir: string;
  /** Bytes each sink's folder may take; beyond, its oldest windows are dropped (`disk_full`). */
  maxBytesPerSink: number;
  /** `fdatasync` each group of writes (default true). */
  fsync?: boolean;
}

/** The sinks' queues, fed with each closed window (give {@link push} to `Aggregator.onWindow`). */
export class SinkFanout {
  private readonly queues: SinkQueue[] = [];

  constructor(
    /** Root logger and registry each sink's context is built from. */
    private readonly root: ComponentRoot,
    /** Queue settings of every sink, unless {@link add} overrides them. */
    private readonly defaults: SinkQueueOptions = {},
    /** When given, every sink's windows are kept on disk until delivered. */
    private readonly disk?: FanoutDiskOptions,
  ) {}

  /** Attaches a sink behind its own bounded queue. */
  add(sink: Sink, queueOptions?: SinkQueueOptions): void {
    const ctx = sinkContext(this.root, sink.name);
    // The queue keeps its depth current from its first push; until then the sink reports an empty queue.
    ctx.stats.gauge('queue_depth', 0);
    const disk =
      this.disk === undefined
        ? undefined
        : { dir: join(this.disk.dir, ComponentNames.sink(sink.name)), maxBytes: this.disk.maxBytesPerSink, fsync: this.disk.fsync };
    this.queues.push(new SinkQueue(sink, ctx, { ...this.defaults, ...(disk === undefined ? {} : { disk }), ...queueOptions }));
  }

  /** Resolves once every sink's data directory is scanned and its windows queued for replay. Never rejects. */
  async opened(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.opened()));
  }

  /** Hands one closed window to every queue; never waits. Resolves once each queue's disk write (if any) was tried. */
  push(batch: MetricBatch): Promise<void> {
    return Promise.all(this.queues.map((q) => q.push(batch))).then(() => undefined);
  }

  /** Gives every sink until `deadlineMs` (epoch ms) to deliver what is queued, then shuts it down. */
  async shutdown(deadlineMs: number): Promise<void> {
    await Promise.all(this.queues.map((q) => q.shutdown(deadlineMs)));
  }
}
