/** Public API of @metrics-distributor/sink-datadog: the sink, its options and the intake limits it splits to. */
export { DatadogSink, maskKey, retryAfterMs } from './sink.js';
export type { DatadogSinkDeps, DatadogSinkOptions, KeyStatus } from './sink.js';
export { DEFAULT_LIMITS } from './encode.js';
export type { PayloadKind, PayloadLimits } from './encode.js';
