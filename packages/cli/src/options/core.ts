/** Options of the windows, the aggregation, the sinks list and logging. */
import { hostname as osHostname } from 'node:os';
import type { HistogramAggregate } from '@metrics-distributor/core';
import { fail, parseDurationMs, parseInteger, parseBool, parseList, oneOf, LOG_LEVELS, HISTOGRAM_AGGREGATES, type OptionsOf } from './parse.js';

/** The validated settings of this part; durations are milliseconds. */
export interface CoreConfig {
  flushIntervalMs: number;
  sinks: readonly string[];
  hostname: string;
  logLevel: string;
  histogramAggregates: readonly HistogramAggregate[];
  histogramPercentiles: readonly number[];
  maxContexts: number;
  gaugeDeltas: boolean;
  countersAs: 'rate' | 'count';
  counterExpiryMs: number;
  shutdownTimeoutMs: number;
  tags: readonly string[];
  selfMetrics: boolean;
  sinkQueueMaxBatches: number;
}

/** This part's options, in help order. */
export const CORE_OPTIONS: readonly OptionsOf<CoreConfig>[] = [
  { key: 'flushIntervalMs', flag: '--flush-interval', arg: '<duration>', description: 'window length, aligned to the wall clock, e.g. 10s or 500ms (default 10s)', parse: (raw) => { const ms = parseDurationMs(raw); if (ms < 1) fail('must be at least 1ms'); return ms; }, default: () => 10_000 },
  { key: 'sinks', flag: '--sink', arg: '<name>', repeatable: true, description: 'sink to send windows to, repeatable or comma-separated: console, datadog, prometheus, graphite, otlp (default datadog when DD_API_KEY is set, else console)', parse: (raw) => { const l = (Array.isArray(raw) ? raw.flatMap((x) => parseList(x)) : parseList(raw)); if (l.length === 0) fail('at least one sink is needed'); return l; }, default: () => ['console'] },
  { key: 'hostname', flag: '--hostname', arg: '<name>', description: 'host put on series without a host: tag (default: the OS hostname)', parse: (raw) => { if (typeof raw !== 'string') fail(`expected a string, got ${JSON.stringify(raw)}`); return raw; }, default: () => osHostname() },
  { key: 'logLevel', flag: '--log-level', arg: '<level>', description: `log level: ${LOG_LEVELS.join(', ')} (default info)`, parse: oneOf(LOG_LEVELS), default: () => 'info' },
  { key: 'histogramAggregates', flag: '--histogram-aggregates', arg: '<list>', description: 'comma list of max,min,median,avg,sum,count (default max,median,avg,count)', parse: (raw) => parseList(raw).map((a) => oneOf(HISTOGRAM_AGGREGATES)(a)), default: () => ['max', 'median', 'avg', 'count'] },
  { key: 'histogramPercentiles', flag: '--histogram-percentiles', arg: '<list>', description: 'comma list of quantiles in (0,1], e.g. 0.95,0.99 (default 0.95)', parse: (raw) => parseList(raw).map((p) => { const q = Number(p); if (!(q > 0 && q <= 1) || !/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(p)) fail(`percentile must be in (0, 1], got '${p}'`); return q; }), default: () => [0.95] },
  { key: 'maxContexts', flag: '--max-contexts', arg: '<n>', description: 'live contexts at most; new ones beyond are dropped and counted (default 200000)', parse: parseInteger(1), default: () => 200_000 },
  { key: 'gaugeDeltas', flag: '--gauge-deltas', description: 'Etsy-style signed gauge deltas (+4|g); off by default, as in the Datadog agent', parse: parseBool, default: () => false },
  { key: 'countersAs', flag: '--counters-as', arg: '<rate|count>', description: 'flush counters as a per-second rate (agent default) or a count', parse: oneOf(['rate', 'count'] as const), default: () => 'rate' },
  { key: 'counterExpiryMs', flag: '--counter-expiry', arg: '<duration>', description: 'an idle counter reports 0 for this long (default 300s)', parse: parseDurationMs, default: () => 300_000 },
  { key: 'shutdownTimeoutMs', flag: '--shutdown-timeout', arg: '<duration>', description: 'on SIGTERM/SIGINT, time given to sinks to deliver the last window (default 10s)', parse: parseDurationMs, default: () => 10_000 },
  { key: 'tags', flag: '--tags', arg: '<list>', description: 'comma list of tags added to every series, event and check', parse: parseList, default: () => [] },
  { key: 'selfMetrics', flag: '--self-metrics', arg: '<true|false>', description: 'emit metrics_distributor.* self-metrics each window (default true)', parse: parseBool, default: () => true },
  { key: 'sinkQueueMaxBatches', flag: '--sink-queue-max-batches', arg: '<n>', description: 'closed windows queued per sink before the oldest is dropped (default 16)', parse: parseInteger(1), default: () => 16 },
];
