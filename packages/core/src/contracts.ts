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

/** Which item array of a {@link MetricBatch} an index refers to. */
export type BatchItemKind = 'series' | 'sketches' | 'events' | 'serviceChecks';

/** Each item kind of `batch` with its count, in the order a ledger numbers them: for settling a window whole. */
export function batchItemCounts(batch: MetricBatch): [BatchItemKind, number][] {
  return [
    ['series', batch.series.length],
    ['sketches', batch.sketches.length],
    ['events', batch.events.length],
    ['serviceChecks', batch.serviceChecks.length],
  ];
}

/**
 * Per-item delivery bookkeeping of one window, handed to `export()` when the window is kept on disk
 * (`--data-dir`). A sink that sets {@link Sink.tracksDelivery} reports every item it was given as
 * delivered, lost or kept; the window leaves the disk once each item is delivered or lost, and a window
 * replayed after a crash skips the items {@link done} says were acknowledged, so nothing is counted twice.
 */
export interface BatchDelivery {
  /** Stable id of the window in its sink's data directory, the same after a restart. */
  readonly batchId: string;
  /**
   * True when the window comes from disk: replayed after a restart, or exported again after {@link kept}.
   * When false no item is done yet, so a sink may skip asking {@link done} per item.
   */
  readonly replay: boolean;
  /** True when item `index` of `kind` was delivered by an earlier export of this window: skip it. */
  done(kind: BatchItemKind, index: number): boolean;
  /** The destination acknowledged these items; recorded on disk (synced) so a replay skips them. */
  delivered(kind: BatchItemKind, indices: ArrayLike<number>): void;
  /** `n` items were dropped for good (and counted by the sink). */
  lost(kind: BatchItemKind, n: number): void;
  /**
   * `n` items are no longer held by the sink (evicted from its memory retry buffer, or unsent at
   * shutdown) and were not counted as lost: the window stays on disk and is exported again later.
   */
  kept(kind: BatchItemKind, n: number): void;
}

/** A sink ships closed windows somewhere. It is fed from its own bounded queue, never on the ingest path. */
export interface Sink {
  /** Stable component id used in logs and self-metrics, e.g. `console`. */
  readonly name: string;
  /**
   * True when the sink reports per-item delivery on the {@link BatchDelivery} it is given: with a data
   * directory, its windows then leave the disk only once every item is settled. Otherwise a window
   * leaves the disk when `export()` resolves `success` or `failure`.
   */
  readonly tracksDelivery?: boolean;
  /**
   * Ships one batch. Must not throw; a thrown error is treated as `failure`. `delivery` is given when
   * the window is on disk (see {@link BatchDelivery}).
   */
  export(batch: MetricBatch, delivery?: BatchDelivery): Promise<ExportResult>;
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
