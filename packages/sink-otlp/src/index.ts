/** Public API of @metrics-distributor/sink-otlp: the sink and its options. */
export { OtlpSink } from './sink.js';
export { DEFAULT_EXPLICIT_BOUNDS } from './options.js';
export type { OtlpHistogramMode, OtlpProtocol, OtlpSinkOptions } from './options.js';
