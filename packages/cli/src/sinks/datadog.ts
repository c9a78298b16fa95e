/** `--sink datadog`: series v2, sketches, events and service checks to the Datadog intake. */
import { sinkContext } from '@metrics-distributor/core';
import type { SinkFactory } from './factory.js';

/** Builds the Datadog sink and starts its key check without waiting for it. */
export const datadogSink: SinkFactory = async (config, root) => {
  const { DatadogSink } = await import('@metrics-distributor/sink-datadog');
  const sink = new DatadogSink(
    {
      // buildConfig guarantees a key whenever the datadog sink is selected.
      apiKey: config.datadogApiKey!,
      site: config.datadogSite,
      url: config.datadogUrl,
      timeoutMs: config.datadogTimeoutMs,
      retryBufferBytes: config.datadogRetryBufferBytes,
      retryBaseMs: config.datadogRetryBaseMs,
      retryMaxMs: config.datadogRetryMaxMs,
      retryMaxAgeMs: config.datadogRetryMaxAgeMs,
      compression: config.datadogCompression,
    },
    sinkContext(root, 'datadog'),
    { detailStats: (c) => root.stats.component(c) },
  );
  // Fail open like the agent: a bad key is logged loudly, the server keeps running.
  void sink.start();
  return sink;
};
