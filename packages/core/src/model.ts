/**
 * The metrics model shared by every package: what front-ends feed in and what sinks receive.
 * Timestamps on the wire side are unix seconds, as in the agent; in-process clocks are milliseconds.
 */

/** StatsD/DogStatsD metric types exactly as on the wire. */
export type MetricType = 'c' | 'g' | 'ms' | 'h' | 's' | 'd';

/** One metric sample in object form: the embedding API and log-drain extraction use this. */
export interface Sample {
  /** Metric name as sent; not sanitised (the agent does not either). */
  name: string;
  /** Wire type. */
  type: MetricType;
  /** Numeric value; ignored for sets, which use `setMember`. */
  value: number;
  /** The member string of a set sample. */
  setMember?: string;
  /** Sample rate in (0, 1]; anything else counts as 1. */
  sampleRate?: number;
  /** `key:value` or bare tags; order and duplicates do not matter. A `host:` tag sets the host. */
  tags?: readonly string[];
  /** Host override; otherwise the `host:` tag, otherwise the aggregator's default host. */
  host?: string;
  /** Unix seconds from a `|T` field: such gauges and counters skip windowing. */
  timestampS?: number;
  /** With gauge deltas enabled: +1/-1 when the value carried an explicit sign, else 0. */
  gaugeDelta?: 0 | 1 | -1;
}

/** Event alert types accepted by DogStatsD. */
export type AlertType = 'error' | 'warning' | 'info' | 'success';

/** A DogStatsD event (`_e{…}`), passed through to sinks unaggregated. */
export interface StatsdEvent {
  /** Event title (UTF-8). */
  title: string;
  /** Event text; the two bytes `\n` are already turned into newlines. */
  text: string;
  /** Unix seconds; 0 means "when received" and is filled in by the aggregator. */
  timestampS: number;
  /** Host from `h:`, else the `host:` tag, else the default host (filled by the aggregator). */
  host?: string;
  /** `k:` aggregation key. */
  aggregationKey?: string;
  /** `p:` priority. */
  priority: 'normal' | 'low';
  /** `s:` source type name. */
  sourceType?: string;
  /** `t:` alert type. */
  alertType: AlertType;
  /** Tags, sorted and de-duplicated by the aggregator. */
  tags: string[];
}

/** Service check statuses: OK, WARNING, CRITICAL, UNKNOWN. */
export type ServiceCheckStatus = 0 | 1 | 2 | 3;

/** A DogStatsD service check (`_sc|…`), passed through to sinks unaggregated. */
export interface ServiceCheck {
  /** Check name. */
  name: string;
  /** 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. */
  status: ServiceCheckStatus;
  /** Unix seconds; 0 means "when received" and is filled in by the aggregator. */
  timestampS: number;
  /** Host from `h:`, else the `host:` tag, else the default host (filled by the aggregator). */
  host?: string;
  /** `m:` message. */
  message?: string;
  /** Tags, sorted and de-duplicated by the aggregator. */
  tags: string[];
}

/** Series types as the Datadog v2 intake names them. */
export type SeriesType = 'count' | 'rate' | 'gauge';

/** One flushed point of one context. */
export interface Series {
  /** Full metric name, aggregate suffix included (`req.time.95percentile`). */
  metric: string;
  /** `rate` for counters by default, `count` when configured, `gauge` otherwise. */
  type: SeriesType;
  /** Unix seconds: the window start, or the client's `|T` timestamp. */
  timestamp: number;
  /** The value: per second for `rate`, total for `count`. */
  value: number;
  /** Window length in seconds. */
  interval: number;
  /** Sorted, de-duplicated `k:v` tags, `host:` removed. */
  tags: readonly string[];
  /** Host resource. Empty string when none is known. */
  host: string;
  /**
   * Set on the aggregate series (`.max`, `.95percentile`, `.count`…) of an `h`/`ms` context when the
   * window carries {@link MetricBatch.histogramSketches}, absent otherwise: a sink exposing those
   * contexts from their sketches leaves these aggregates out.
   */
  aggregateOf?: 'h' | 'ms';
  /**
   * The StatsD type the series came from, where `type` alone hides it: `'s'` on a set's distinct count
   * (a `gauge`), absent on everything else, so sinks naming by type (Graphite's `stats.sets.`) can tell.
   */
  statsdType?: 's';
}

/**
 * A distribution sketch in the Datadog agent's layout (γ = 1.015625, bias 1338):
 * `keys` sorted ascending, `counts[i]` the weight of `keys[i]`; counts fit in uint16 as the agent splits larger bins.
 */
export interface SketchData {
  /** Total weight. */
  count: number;
  /** Exact minimum. */
  min: number;
  /** Exact maximum. */
  max: number;
  /** Exact weighted sum. */
  sum: number;
  /** sum / count. */
  avg: number;
  /** Bin keys, ascending. */
  keys: readonly number[];
  /** Bin counts, parallel to `keys`. */
  counts: readonly number[];
}

/** One distribution context's sketch for one window. */
export interface SketchSeries {
  /** Metric name. */
  metric: string;
  /** Unix seconds: window start. */
  timestamp: number;
  /** Window length in seconds. */
  interval: number;
  /** Sorted, de-duplicated tags, `host:` removed. */
  tags: readonly string[];
  /** Host. */
  host: string;
  /** The sketch, ready to ship as an agent `Dogsketch`. */
  sketch: SketchData;
}

/** One `h`/`ms` context's samples of one window as a sketch (exact samples binned, or its own sketch). */
export interface HistogramSketchSeries extends SketchSeries {
  /** The wire type the samples came as: `ms` values are milliseconds. */
  sourceType: 'h' | 'ms';
}

/** Everything one closed window produced, handed to every sink as the same read-only snapshot. */
export interface MetricBatch {
  /** Window start, unix milliseconds. */
  windowStartMs: number;
  /** Window length in milliseconds. */
  intervalMs: number;
  /** Gauges, rates and counts. */
  series: readonly Series[];
  /** Distributions. */
  sketches: readonly SketchSeries[];
  /**
   * Every `h`/`ms` context's window as a sketch, besides its aggregate series; present only with the
   * aggregator's `histogramSketches` option (sinks that bucket timers, such as Prometheus').
   */
  histogramSketches?: readonly HistogramSketchSeries[];
  /** Events received during the window. */
  events: readonly StatsdEvent[];
  /** Service checks received during the window. */
  serviceChecks: readonly ServiceCheck[];
}
