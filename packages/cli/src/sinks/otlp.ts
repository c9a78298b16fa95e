/** `--sink otlp`: OTLP/HTTP metrics to an OpenTelemetry Collector or a vendor's OTLP intake. */
import { sinkContext } from '@metrics-distributor/core';
import type { SinkFactory } from './factory.js';

/** Builds the OTLP sink; nothing is sent until the first window closes. */
export const otlpSink: SinkFactory = async (config, root) => {
  const { OtlpSink } = await import('@metrics-distributor/sink-otlp');
  const sink = new OtlpSink(
    {
      endpoint: config.otlpEndpoint,
      headers: config.otlpHeaders,
      protocol: config.otlpProtocol,
      compression: config.otlpCompression,
      histogram: config.otlpHistogram,
      ...(config.otlpBuckets !== undefined ? { explicitBounds: config.otlpBuckets } : {}),
      exponentialScale: config.otlpExponentialScale,
      maxPointsPerRequest: config.otlpMaxPointsPerRequest,
      timeoutMs: config.otlpTimeoutMs,
      retryBufferBytes: config.otlpRetryBufferBytes,
      retryBaseMs: config.otlpRetryBaseMs,
      retryMaxMs: config.otlpRetryMaxMs,
      retryMaxAgeMs: config.otlpRetryMaxAgeMs,
    },
    sinkContext(root, 'otlp'),
  );
  root.logger.info({ sink: 'otlp', url: sink.url, protocol: config.otlpProtocol }, 'OTLP sink ready.');
  return sink;
};
