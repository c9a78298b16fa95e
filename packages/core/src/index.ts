/** Public API of @metrics-distributor/core: the model, the parser, the aggregator and the contracts. */
export { Aggregator } from './aggregator.js';
export type { WindowListener } from './aggregator.js';
export { DEFAULT_HISTOGRAM_AGGREGATES, DEFAULT_HISTOGRAM_PERCENTILES } from './options.js';
export type { AggregatorOptions, HistogramAggregate } from './options.js';
export type { ContextState, WindowState, WindowStateRest } from './state-merge.js';
export { Checkpointer, decodeCheckpoint, encodeCheckpoint, encodeOpenWindow, type CheckpointOptions, type CheckpointParts, type EncodedOpenWindow, type EncodedWindowPart, type PartsTaking, type ReadResult, type RestoreReport } from './disk/checkpoint.js';
export { SinkFanout } from './sink-fanout.js';
export { TransformStage } from './transform/stage.js';
export type { TransformDecision, TransformOptions } from './transform/stage.js';
export { DEFAULT_NAMESPACE_BLOCKLIST } from './transform/filters.js';
export type { NameFilterOptions, TagFilterRule } from './transform/filters.js';
export type { MapperMappingConfig, MapperProfileConfig } from './transform/mapper.js';
export type { FanoutDiskOptions } from './sink-fanout.js';
export { normalizeTags } from './tags.js';
export { alignWindow } from './window-store.js';
export { SUCCESS, batchItemCounts } from './contracts.js';
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
  HistogramSketchSeries,
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
export { AgentSketch, sketchKey, sketchLowerBound } from './aggregates/agent-sketch.js';
export { HistogramAgg } from './aggregates/histogram.js';
export type { HistogramState } from './aggregates/histogram.js';
export { SinkQueue } from './sink-queue.js';
export type { SinkQueueOptions } from './sink-queue.js';
export { ComponentStats, StatsRegistry } from './stats.js';
export { InMemorySink } from './testing.js';
export { DeliveryPolicy, KEPT_ON_DISK_REASONS, addLoss } from './delivery/policy.js';
export { InFlightExports, readBodyHead, retryAfterMs, unexpectedExportError, windowResult } from './delivery/exports.js';
export type { DeliveryOptions, DeliveryTarget, LossTally, SendOutcome, SinkDropReason } from './delivery/policy.js';
export type { CancelTimer, Clock } from './delivery/clock.js';
export { DEFAULT_SLICE_BUDGET_MS, Slicer, longestSlice } from './slicer.js';
export type { SliceFigures, SlicerOptions } from './slicer.js';
export { ProtoWriter, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, putVarint, varintSize, zigzag32 } from './protobuf.js';
export type { ProtoMark } from './protobuf.js';
export { DEFAULT_TAP_PER_SECOND, MAX_TAP_PER_SECOND, TAP_TICK_MS, TapHub, globToRegExp } from './tap.js';
export type { TapDelivery, TapFilter, TapListener, TapSample, TapSource } from './tap.js';
export { MAX_TRACKED_VALUES } from './top-contexts.js';
export type { TagCardinality, TopContextsBy, TopContextsEntry, TopContextsQuery, TopContextsReport } from './top-contexts.js';
export { CredentialDigests, constantTimeEqual, isLoopbackHost, parseAuthorization } from './net-auth.js';
export type { PresentedAuth } from './net-auth.js';
export { debugLogController } from './request-log.js';
export type { LogControllerBase, LoggedReply, LoggedRequest, RequestLogger } from './request-log.js';
