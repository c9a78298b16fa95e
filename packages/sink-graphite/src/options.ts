/**
 * The Graphite sink's options, their defaults and checks. The naming options copy etsy statsd's
 * graphite backend (`legacyNamespace`, `globalPrefix`, `prefixCounter`…), so a config ports over.
 */
import { DEFAULT_HISTOGRAM_AGGREGATES, DEFAULT_HISTOGRAM_PERCENTILES, MdError, type HistogramAggregate } from '@metrics-distributor/core';

/** How series tags reach Graphite. */
export type TagMode = 'graphite' | 'name' | 'drop';

/** Options of the `GraphiteSink`. Durations are milliseconds, sizes bytes. */
export interface GraphiteSinkOptions {
  /** Carbon's host. Default `127.0.0.1`. */
  host?: string;
  /** Carbon's plaintext (line receiver) port. Default 2003. */
  port?: number;
  /** etsy's legacy names (`stats.<name>`, `stats_counts.<name>`); the per-type prefixes are then ignored, as in etsy. Default true. */
  legacyNamespace?: boolean;
  /** First node of every name but legacy counts (`stats_counts`, fixed as in etsy). Default `stats`; empty for none. */
  globalPrefix?: string;
  /** Node after the global prefix for counters (legacy off). Default `counters`. */
  prefixCounter?: string;
  /** Node after the global prefix for timers and distributions (legacy off). Default `timers`. */
  prefixTimer?: string;
  /** Node after the global prefix for gauges (legacy off). Default `gauges`. */
  prefixGauge?: string;
  /** Node after the global prefix for sets (legacy off), etsy's `prefixSet`. Default `sets`. */
  prefixSet?: string;
  /** Last node of every name (e.g. the host name); empty for none. Default empty. */
  globalSuffix?: string;
  /** Also send counter counts (`stats_counts.<name>` / `….count`), etsy's `flush_counts`. Default true. */
  flushCounts?: boolean;
  /** `graphite`: Graphite 1.1 tags `name;k=v`; `name`: folded into the name as `.k_v` nodes; `drop`: left out. Default `graphite`. */
  tagMode?: TagMode;
  /** Add the series' host as a `host` tag. Default false: etsy names carry no host (use `globalSuffix`). */
  hostTag?: boolean;
  /** Histogram aggregates the aggregator emits, to tell timers' series apart. Default core's. */
  histogramAggregates?: readonly HistogramAggregate[];
  /** Histogram percentiles the aggregator emits (also the ones taken from distribution sketches). Default core's. */
  histogramPercentiles?: readonly number[];
  /** Bytes of one payload (whole lines) at most. Default 65536. */
  maxPayloadBytes?: number;
  /** Bytes of payloads held for retry while carbon is away; oldest dropped beyond. Default 16 MiB. */
  retryBufferBytes?: number;
  /** First reconnect backoff; doubles per consecutive failure, jittered to [t/2, t]. Default 1000. */
  retryBaseMs?: number;
  /** Longest reconnect backoff. Default 30000. */
  retryMaxMs?: number;
  /** Payloads whose window started longer ago are dropped (`expired`) instead of sent. Default 3600000. */
  retryMaxAgeMs?: number;
  /** Time to open the connection. Default 5000. */
  connectTimeoutMs?: number;
  /** Time for one payload to reach the kernel; past it the connection is dropped and the payload retried. Default 10000. */
  writeTimeoutMs?: number;
}

/** Every option checked and defaulted. */
export interface ResolvedOptions {
  readonly host: string;
  readonly port: number;
  readonly legacyNamespace: boolean;
  readonly globalPrefix: string;
  readonly prefixCounter: string;
  readonly prefixTimer: string;
  readonly prefixGauge: string;
  readonly prefixSet: string;
  readonly globalSuffix: string;
  readonly flushCounts: boolean;
  readonly tagMode: TagMode;
  readonly hostTag: boolean;
  readonly histogramAggregates: readonly HistogramAggregate[];
  readonly histogramPercentiles: readonly number[];
  readonly maxPayloadBytes: number;
  readonly retryBufferBytes: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly retryMaxAgeMs: number;
  readonly connectTimeoutMs: number;
  readonly writeTimeoutMs: number;
}

function invalid(msg: string): never {
  throw new MdError('MD_ERR_CONFIG_INVALID', `graphite sink: ${msg}`);
}

function positive(name: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) invalid(`${name} must be a number ≥ ${min}, got ${String(v)}`);
  return v;
}

/** A prefix or suffix: dot-separated nodes of Graphite's safe characters, or empty. */
function node(name: string, v: string | undefined, dflt: string): string {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !/^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)?$/.test(v)) {
    invalid(`${name} must be dot-separated nodes of letters, digits, '_' and '-', got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Checks the options and fills in defaults; throws `MD_ERR_CONFIG_INVALID` (at start-up only). */
export function resolveOptions(opts: GraphiteSinkOptions): ResolvedOptions {
  const host = opts.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.length === 0) invalid('host must be a non-empty string');
  const port = positive('port', opts.port, 2003);
  if (!Number.isInteger(port) || port > 65535) invalid(`port must be an integer in 1..65535, got ${port}`);
  const tagMode = opts.tagMode ?? 'graphite';
  if (tagMode !== 'graphite' && tagMode !== 'name' && tagMode !== 'drop') invalid(`tagMode must be graphite, name or drop, got ${String(tagMode)}`);
  const percentiles = opts.histogramPercentiles ?? DEFAULT_HISTOGRAM_PERCENTILES;
  for (const q of percentiles) if (!(q > 0 && q <= 1)) invalid(`histogram percentiles must be in (0, 1], got ${q}`);
  const retryBaseMs = positive('retryBaseMs', opts.retryBaseMs, 1000);
  return {
    host,
    port,
    legacyNamespace: opts.legacyNamespace ?? true,
    globalPrefix: node('globalPrefix', opts.globalPrefix, 'stats'),
    prefixCounter: node('prefixCounter', opts.prefixCounter, 'counters'),
    prefixTimer: node('prefixTimer', opts.prefixTimer, 'timers'),
    prefixGauge: node('prefixGauge', opts.prefixGauge, 'gauges'),
    prefixSet: node('prefixSet', opts.prefixSet, 'sets'),
    globalSuffix: node('globalSuffix', opts.globalSuffix, ''),
    flushCounts: opts.flushCounts ?? true,
    tagMode,
    hostTag: opts.hostTag ?? false,
    histogramAggregates: opts.histogramAggregates ?? DEFAULT_HISTOGRAM_AGGREGATES,
    histogramPercentiles: percentiles,
    // A line longer than a payload still goes out alone; the bound only keeps payloads small.
    maxPayloadBytes: Math.floor(positive('maxPayloadBytes', opts.maxPayloadBytes, 65_536, 256)),
    retryBufferBytes: positive('retryBufferBytes', opts.retryBufferBytes, 16 * 1024 * 1024, 0),
    retryBaseMs,
    retryMaxMs: Math.max(retryBaseMs, positive('retryMaxMs', opts.retryMaxMs, 30_000)),
    retryMaxAgeMs: positive('retryMaxAgeMs', opts.retryMaxAgeMs, 3_600_000),
    connectTimeoutMs: positive('connectTimeoutMs', opts.connectTimeoutMs, 5000),
    writeTimeoutMs: positive('writeTimeoutMs', opts.writeTimeoutMs, 10_000),
  };
}
