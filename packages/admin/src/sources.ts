/**
 * What the admin listener reads: a small interface the CLI (or an embedder) implements, so this
 * package never reaches into the aggregator, the queues or the sinks themselves. Everything here is
 * read on request or once per sample tick, never on the ingest path.
 */
import type { StatsRegistry, TapSource, TopContextsQuery, TopContextsReport } from '@metrics-distributor/core';

// The cardinality explorer's types are core's (the aggregator computes the report); re-exported for
// embedders that implement AdminSources.
export type { TagCardinality, TopContextsBy, TopContextsEntry, TopContextsQuery, TopContextsReport } from '@metrics-distributor/core';

/** Whether the server should receive traffic now, and if not, why (one short sentence per problem). */
export interface Readiness {
  /** True when every front-end is bound, every sink queue is under its limit, and the server is not shutting down. */
  ready: boolean;
  /** What is wrong, e.g. `sink datadog: queue 16/16 batches`; empty when ready. */
  problems: readonly string[];
}

/** The last error a sink reported. */
export interface SinkError {
  /** The error's code: a project `ErrorCode` such as `MD_ERR_SINK_EXPORT`, or a system one (`ECONNREFUSED`) passed on. */
  code: string;
  /** A short message; shown as text, never as HTML. */
  message: string;
  /** When it happened (epoch ms). */
  atMs: number;
}

/** One sink as the admin listener shows it. */
export interface SinkStatus {
  /** The sink's name, e.g. `datadog`; its self-metrics are under component `sink-<name>`. */
  name: string;
  /** Closed windows waiting in its queue, the one being exported included. */
  queueDepth: number;
  /** The queue's limit in windows; beyond it the oldest is dropped. */
  maxBatches: number;
  /** Bytes waiting in the sink's own retry buffer; 0 for sinks without one. */
  retryBufferBytes: number;
  /** The retry buffer's limit in bytes; 0 for sinks without one. */
  retryBufferMaxBytes: number;
  /** Last successful export (epoch ms); undefined when none yet. */
  lastSuccessMs: number | undefined;
  /** Last failed or retried export; undefined when none yet. */
  lastError: SinkError | undefined;
}

/** Process health now. */
export interface ProcessHealth {
  /** Event-loop delay p99 over the last window, in ms; undefined when not measured. */
  eventLoopDelayP99Ms: number | undefined;
  /** Event-loop delay max over the last window, in ms; undefined when not measured. */
  eventLoopDelayMaxMs: number | undefined;
  /** Resident set size in bytes. */
  rssBytes: number;
  /** V8 heap used, in bytes. */
  heapUsedBytes: number;
}

/**
 * Everything the admin listener shows comes from here. The CLI implements it over the aggregator,
 * the front-ends and the sink queues; tests implement it with plain objects. Calls must be cheap
 * (they run once per request or once per sample tick) and must not throw; `topContexts` may be
 * async and is bounded in time by the admin listener.
 */
export interface AdminSources {
  /** The process's self-metrics registry: rates and `/metrics` are derived from it. */
  readonly stats: StatsRegistry;
  /** The server's version, e.g. `0.1.0`. */
  readonly version: string;
  /** When the server started (epoch ms). */
  readonly startedAtMs: number;
  /** Every address listened on, e.g. `udp://127.0.0.1:8125`, `http://127.0.0.1:8080`. */
  listeners(): readonly string[];
  /** Component ids of the front-ends (e.g. `statsd-udp`, `statsd-tcp`, `http`, `http-statsd`), shown as the throughput rows. */
  frontends(): readonly string[];
  /** Whether the server is ready, and what is wrong if not. */
  readiness(): Readiness;
  /** Every sink, in configuration order. */
  sinks(): readonly SinkStatus[];
  /** Live contexts in the open window. */
  liveContexts(): number;
  /** The cardinality explorer: computed from the aggregator's state on request only. */
  topContexts(q: TopContextsQuery): TopContextsReport | Promise<TopContextsReport>;
  /** Event-loop delay and memory now. */
  processHealth(): ProcessHealth;
  /** Optional: the aggregator's tap, served as `/api/tap`; without it that route answers 404. */
  readonly tap?: TapSource;
}

/** Largest `top` the admin listener asks for; larger requests are clamped. */
export const MAX_TOP = 500;
/** Largest `examples` the admin listener asks for; larger requests are clamped. */
export const MAX_EXAMPLES = 10;
