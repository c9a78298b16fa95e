import type { MdError } from './errors.js';
import type { MetricBatch, Sample } from './model.js';

/** A front-end receives metrics from the outside world and feeds the aggregator. */
export interface Frontend {
  /** Stable component id used in logs and self-metrics, e.g. `statsd-udp`. */
  readonly name: string;
  /** Binds and starts receiving. Resolves once ready; rejects with an MdError when it cannot bind. */
  start(): Promise<void>;
  /** Stops receiving, hands over everything already received, then releases resources. Idempotent. */
  close(): Promise<void>;
  /** Addresses actually bound (after start), for the start-up log line and tests. */
  addresses(): readonly string[];
}

/** What a sink says about one export: expected failures are values, never exceptions. */
export type ExportResult =
  | { readonly code: 'success' }
  | { readonly code: 'retryable'; readonly error: MdError; readonly retryAfterMs?: number }
  | { readonly code: 'failure'; readonly error: MdError };

/** A sink ships closed windows somewhere. It is fed from its own bounded queue, never on the ingest path. */
export interface Sink {
  /** Stable component id used in logs and self-metrics, e.g. `console`. */
  readonly name: string;
  /** Ships one batch. Must not throw; a thrown error is treated as `failure`. */
  export(batch: MetricBatch): Promise<ExportResult>;
  /** Finishes in-flight work before `deadlineMs` (epoch ms), then releases resources. Idempotent. */
  shutdown(deadlineMs: number): Promise<void>;
}

/** The result of a successful export, shared to avoid an allocation per batch. */
export const SUCCESS: ExportResult = Object.freeze({ code: 'success' });

/** Whether the aggregator took an item or dropped it (counted on the aggregator with its reason). */
export type AddResult = 'accepted' | 'dropped';

/**
 * What every front-end feeds: StatsD bytes, samples in object form, and the open window's start.
 * The aggregator hands out one per front-end, bound to that front-end's self-metrics, so UDP, TCP
 * and HTTP are wired the same way and none of them sees the aggregator itself.
 */
export interface IngestTarget {
  /**
   * Parses StatsD/DogStatsD bytes `buf[start, end)` (a datagram, or a body of newline-separated lines)
   * and aggregates them, counting packets, bytes, received, parsed and bad on the bound component.
   */
  statsd(buf: Buffer, start?: number, end?: number): void;
  /** Parses one StatsD line `buf[start, end)` with no newline inside; counts lines, not bytes (the caller does). */
  statsdLine(buf: Buffer, start: number, end: number): void;
  /**
   * Adds one sample in object form. `weight` is how many received items the sample stands for (a
   * front-end that merged increments): a dropped sample counts as that many drops.
   */
  addSample(sample: Sample, weight?: number): AddResult;
  /** Start (epoch ms) of the window now open; older items join it, as there is one open window. */
  readonly windowStartMs: number;
}
