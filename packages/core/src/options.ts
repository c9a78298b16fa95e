/** The aggregator's options, their defaults and their checks. */
import { hostname as osHostname } from 'node:os';
import { MdError } from './errors.js';
import type { Logger } from './logger.js';
import type { SinkQueueOptions } from './sink-queue.js';
import type { StatsRegistry } from './stats.js';
import type { TransformOptions } from './transform/stage.js';

/** Histogram aggregates the agent knows. */
export type HistogramAggregate = 'max' | 'min' | 'median' | 'avg' | 'sum' | 'count';

/** The aggregates a histogram context flushes by default (agent `histogram_aggregates`). */
export const DEFAULT_HISTOGRAM_AGGREGATES: readonly HistogramAggregate[] = ['max', 'median', 'avg', 'count'];
/** The percentiles a histogram context flushes by default (agent `histogram_percentiles`). */
export const DEFAULT_HISTOGRAM_PERCENTILES: readonly number[] = [0.95];

/** Options of the {@link Aggregator}. Every duration is in milliseconds. */
export interface AggregatorOptions {
  /** Window length; windows are aligned to the wall clock. Default 10000. */
  flushIntervalMs?: number;
  /** Host put on series that carry no `host:` tag. Default: the OS hostname. */
  hostname?: string;
  /** Counters (and histogram `.count`) flush as a per-second `rate` (agent default) or a `count`. */
  countersAs?: 'rate' | 'count';
  /** Default `max, median, avg, count`. */
  histogramAggregates?: readonly HistogramAggregate[];
  /** Default `[0.95]`. */
  histogramPercentiles?: readonly number[];
  /** Histogram samples kept exactly per context per window before switching to a sketch. Default 1000. */
  histogramExactSamples?: number;
  /**
   * Also emit each `h`/`ms` context's window as a sketch in `MetricBatch.histogramSketches`, for sinks
   * that expose timers as histograms. Default false: the aggregates alone, as the agent sends.
   */
  histogramSketches?: boolean;
  /** An idle counter reports 0 for this long after its last sample. Default 300000. */
  counterExpiryMs?: number;
  /** Live contexts at most; samples for new contexts beyond it are dropped and counted. Default 200000. */
  maxContexts?: number;
  /** Events plus service checks kept per window at most. Default 10000. */
  maxEventsPerWindow?: number;
  /** Etsy-style gauge deltas (`+4|g`, and `Sample.gaugeDelta`). Default false, as in the agent. */
  gaugeDeltas?: boolean;
  /** Tags added to every series, sketch, event and service check. */
  globalTags?: readonly string[];
  /** Emit `metrics_distributor.*` self-metrics each window. Default true. */
  selfMetrics?: boolean;
  /**
   * Mapping, name filter list, tag filter and namespace, applied where a new context is resolved
   * (once per new name-and-tags form, not per line). Checked here: a bad config throws naming the field.
   */
  transform?: TransformOptions;
  /** Per-sink queue settings. */
  sinkQueue?: SinkQueueOptions;
  /** Clock, injectable for tests. Default `Date.now`. */
  now?: () => number;
  /** Logger; the aggregator takes `child({ component: 'aggregator' })`. */
  logger?: Logger;
  /** Shared self-metrics registry; one is created when absent. */
  stats?: StatsRegistry;
}

/** The options with every default filled in, as the aggregator's parts read them. */
export type ResolvedOptions = Required<Omit<AggregatorOptions, 'logger' | 'stats' | 'now' | 'sinkQueue' | 'transform'>>;

/** Fills in defaults; throws MD_ERR_CONFIG_INVALID for an interval or percentile out of range. */
export function resolveOptions(options: AggregatorOptions): ResolvedOptions {
  const flushIntervalMs = options.flushIntervalMs ?? 10_000;
  if (!Number.isInteger(flushIntervalMs) || flushIntervalMs < 1) {
    throw new MdError('MD_ERR_CONFIG_INVALID', `flushIntervalMs must be a positive integer, got ${String(options.flushIntervalMs)}`);
  }
  const hostname = options.hostname ?? osHostname();
  const percentiles = options.histogramPercentiles ?? DEFAULT_HISTOGRAM_PERCENTILES;
  for (const p of percentiles) {
    if (!(p > 0 && p <= 1)) throw new MdError('MD_ERR_CONFIG_INVALID', `histogram percentile must be in (0, 1], got ${p}`);
  }
  return {
    flushIntervalMs,
    hostname,
    countersAs: options.countersAs ?? 'rate',
    histogramAggregates: options.histogramAggregates ?? DEFAULT_HISTOGRAM_AGGREGATES,
    histogramPercentiles: percentiles,
    histogramExactSamples: options.histogramExactSamples ?? 1000,
    histogramSketches: options.histogramSketches ?? false,
    counterExpiryMs: options.counterExpiryMs ?? 300_000,
    maxContexts: options.maxContexts ?? 200_000,
    maxEventsPerWindow: options.maxEventsPerWindow ?? 10_000,
    gaugeDeltas: options.gaugeDeltas ?? false,
    globalTags: options.globalTags ?? [],
    selfMetrics: options.selfMetrics ?? true,
  };
}
