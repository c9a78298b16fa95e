/**
 * Last success and last error of a sink, recorded by wrapping it: the CLI hands the aggregator the
 * wrapped sink, so {@link AdminSources.sinks} can report both without core's queue exposing them.
 * One clock read per export, nothing on the ingest path.
 */
import type { BatchDelivery, ExportResult, MetricBatch, Sink } from '@metrics-distributor/core';
import type { SinkError } from './sources.js';

/** Longest error message kept: it is shown on the page and in `/api/status`. */
const MAX_MESSAGE = 300;

/** A sink wrapper that remembers when its exports last succeeded and last failed. */
export class TrackedSink implements Sink {
  /** Same name as the wrapped sink, so its self-metrics stay under `sink-<name>`. */
  readonly name: string;
  /** Last `success` (epoch ms); undefined before the first. */
  lastSuccessMs: number | undefined;
  /** Last `retryable` or `failure` result, or thrown error; undefined before the first. */
  lastError: SinkError | undefined;

  /** As the wrapped sink: a data directory then records its per-item delivery. */
  readonly tracksDelivery: boolean | undefined;

  constructor(
    /** The sink doing the work. */
    readonly inner: Sink,
    private readonly now: () => number = Date.now,
  ) {
    this.name = inner.name;
    this.tracksDelivery = inner.tracksDelivery;
  }

  /** Exports through the wrapped sink and records the outcome; a throw is recorded and passed on as the queue expects. */
  async export(batch: MetricBatch, delivery?: BatchDelivery): Promise<ExportResult> {
    let result: ExportResult;
    try {
      result = await this.inner.export(batch, delivery);
    } catch (err) {
      this.lastError = { code: 'MD_ERR_SINK_EXPORT', message: clip(`threw: ${(err as Error)?.message ?? String(err)}`), atMs: this.now() };
      throw err;
    }
    if (result.code === 'success') this.lastSuccessMs = this.now();
    else this.lastError = { code: result.error.code, message: clip(`${result.code}: ${result.error.message}`), atMs: this.now() };
    return result;
  }

  /** Shuts the wrapped sink down. */
  shutdown(deadlineMs: number): Promise<void> {
    return this.inner.shutdown(deadlineMs);
  }
}

function clip(s: string): string {
  return s.length <= MAX_MESSAGE ? s : `${s.slice(0, MAX_MESSAGE - 1)}…`;
}
