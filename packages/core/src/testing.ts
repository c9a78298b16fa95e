import { SUCCESS, type ExportResult, type Sink } from './contracts.js';
import type { MetricBatch } from './model.js';

/** A sink that keeps every batch in memory: for tests and for embedders who read windows themselves. */
export class InMemorySink implements Sink {
  readonly name: string;
  /** Every batch exported so far, oldest first. */
  readonly batches: MetricBatch[] = [];
  private waiters: (() => void)[] = [];

  constructor(name = 'memory') {
    this.name = name;
  }

  /** Stores the batch. */
  export(batch: MetricBatch): Promise<ExportResult> {
    this.batches.push(batch);
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
    return Promise.resolve(SUCCESS);
  }

  /** Resolves at the next exported batch. */
  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Nothing to release. */
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
