import type { MdError } from './errors.js';
import type { MetricBatch } from './model.js';

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
