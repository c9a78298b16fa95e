/** `--sink graphite`: carbon's plaintext protocol over one persistent TCP connection, etsy statsd's names. */
import { sinkContext } from '@metrics-distributor/core';
import type { SinkFactory } from './factory.js';

/** Builds the Graphite sink; it connects on the first window, so a carbon not up yet is no start-up error. */
export const graphiteSink: SinkFactory = async (config, root) => {
  const { GraphiteSink } = await import('@metrics-distributor/sink-graphite');
  return new GraphiteSink(
    {
      host: config.graphiteAddress.host,
      port: config.graphiteAddress.port,
      legacyNamespace: config.graphiteLegacyNamespace,
      globalPrefix: config.graphiteGlobalPrefix,
      prefixCounter: config.graphitePrefixCounter,
      prefixTimer: config.graphitePrefixTimer,
      prefixGauge: config.graphitePrefixGauge,
      prefixSet: config.graphitePrefixSet,
      globalSuffix: config.graphiteGlobalSuffix,
      flushCounts: config.graphiteFlushCounts,
      tagMode: config.graphiteTags,
      hostTag: config.graphiteHostTag,
      // The sink tells timers' series apart by the suffixes the aggregator was told to emit.
      histogramAggregates: config.histogramAggregates,
      histogramPercentiles: config.histogramPercentiles,
      maxPayloadBytes: config.graphiteMaxPayloadBytes,
      retryBufferBytes: config.graphiteRetryBufferBytes,
      retryBaseMs: config.graphiteRetryBaseMs,
      retryMaxMs: config.graphiteRetryMaxMs,
      retryMaxAgeMs: config.graphiteRetryMaxAgeMs,
      connectTimeoutMs: config.graphiteConnectTimeoutMs,
      writeTimeoutMs: config.graphiteWriteTimeoutMs,
    },
    sinkContext(root, 'graphite'),
    { retryStats: root.stats.component('sink-graphite-retry') },
  );
};
