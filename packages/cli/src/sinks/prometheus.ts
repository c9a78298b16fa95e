/** `--sink prometheus`: a /metrics endpoint for a Prometheus server to scrape, and/or remote write. */
import { sinkContext } from '@metrics-distributor/core';
import type { SinkFactory } from './factory.js';

/** Builds the Prometheus sink and waits for its listener: a port that cannot be bound fails start-up. */
export const prometheusSink: SinkFactory = async (config, root) => {
  const { PrometheusSink } = await import('@metrics-distributor/sink-prometheus');
  const sink = new PrometheusSink(
    {
      scrape: config.prometheusListen !== undefined,
      ...(config.prometheusListen !== undefined ? { listenHost: config.prometheusListen.host, listenPort: config.prometheusListen.port } : {}),
      path: config.prometheusPath,
      ttlMs: config.prometheusTtlMs,
      maxSeries: config.prometheusMaxSeries,
      buckets: config.prometheusBuckets,
      sketchScale: config.prometheusDistributionsMs ? 0.001 : 1,
      observerType: config.prometheusTimerType,
      quantiles: config.prometheusQuantiles,
      ...(config.prometheusRemoteWriteUrl !== undefined
        ? {
            remoteWrite: {
              url: config.prometheusRemoteWriteUrl,
              headers: config.prometheusRemoteWriteHeaders,
              timeoutMs: config.prometheusRemoteWriteTimeoutMs,
              maxSamplesPerRequest: config.prometheusRemoteWriteMaxSamplesPerRequest,
              retryBufferBytes: config.prometheusRemoteWriteRetryBufferBytes,
              maxAgeMs: config.prometheusRemoteWriteMaxAgeMs,
            },
          }
        : {}),
    },
    { context: sinkContext(root, 'prometheus'), retryStats: root.stats.component('sink-prometheus-retry') },
  );
  // Unlike datadog, fail closed: nobody can scrape an endpoint that is not there (MD_ERR_SINK_LISTEN).
  await sink.start();
  return sink;
};
