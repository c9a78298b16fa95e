/** Public API of @metrics-distributor/core: the model, the parser, the aggregator and the contracts. */
export { Aggregator } from './aggregator.js';
export type { WindowListener } from './aggregator.js';
export { DEFAULT_HISTOGRAM_AGGREGATES, DEFAULT_HISTOGRAM_PERCENTILES } from './options.js';
export type { AggregatorOptions, HistogramAggregate } from './options.js';
export type { ContextState, WindowState } from './state-merge.js';
export { SinkFanout } from './sink-fanout.js';
export type { FanoutDiskOptions } from './sink-fanout.js';
export { normalizeTags } from './tags.js';
export { alignWindow } from './window-store.js';
export { SUCCESS } from './contracts.js';
export type { AddResult, BatchDelivery, BatchItemKind, ExportResult, Frontend, IngestTarget, Sink } from './contracts.js';
export type { DiskBufferOptions } from './disk/disk-buffer.js';
export { ComponentContext, ComponentNames, DROP_REASONS, componentContext, sinkContext } from './component.js';
export type { ComponentKind, ComponentRoot, DropLog, DropReason } from './component.js';
export { ErrorCodes, MdError, isMdError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { RateLimitedLog, createRootLogger, silentLogger } from './logger.js';
export type { Logger, RootLoggerOptions } from './logger.js';
export type {
  AlertType,
  MetricBatch,
  MetricType,
  Sample,
  Series,
  SeriesType,
  ServiceCheck,
  ServiceCheckStatus,
  SketchData,
  SketchSeries,
  StatsdEvent,
} from './model.js';
export { StatsdParser, parseNumber, viewName, viewTags } from './parser/statsd.js';
export type { SampleView, StatsdHandler, StatsdParserOptions } from './parser/types.js';
export { AgentSketch } from './aggregates/agent-sketch.js';
export { HistogramAgg } from './aggregates/histogram.js';
export type { HistogramState } from './aggregates/histogram.js';
export { SinkQueue } from './sink-queue.js';
export type { SinkQueueOptions } from './sink-queue.js';
export { ComponentStats, StatsRegistry } from './stats.js';
export { InMemorySink } from './testing.js';
export { DeliveryPolicy, addLoss } from './delivery/policy.js';
export type { DeliveryOptions, DeliveryTarget, LossTally, SendOutcome, SinkDropReason } from './delivery/policy.js';
export { CircuitBreaker, backoffDelay } from './delivery/backoff.js';
export type { BackoffOptions } from './delivery/backoff.js';
export { RetryBuffer } from './delivery/retry-buffer.js';
export { systemClock } from './delivery/clock.js';
export type { CancelTimer, Clock } from './delivery/clock.js';
