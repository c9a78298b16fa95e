/** `--sink prometheus`: a /metrics endpoint for a Prometheus server to scrape. */
import { sinkContext } from '@metrics-distributor/core';
import type { SinkFactory } from './factory.js';

/** Builds the Prometheus sink and waits for its listener: a port that cannot be bound fails start-up. */
export const prometheusSink: SinkFactory = async (config, root) => {
  const { PrometheusSink } = await import('@metrics-distributor/sink-prometheus');
  const sink = new PrometheusSink(
    {
      listenHost: config.prometheusListen.host,
      listenPort: config.prometheusListen.port,
      path: config.prometheusPath,
      ttlMs: config.prometheusTtlMs,
      maxSeries: config.prometheusMaxSeries,
      buckets: config.prometheusBuckets,
      sketchScale: config.prometheusDistributionsMs ? 0.001 : 1,
    },
    { context: sinkContext(root, 'prometheus') },
  );
  // Unlike datadog, fail closed: nobody can scrape an endpoint that is not there (MD_ERR_SINK_LISTEN).
  await sink.start();
  return sink;
};
