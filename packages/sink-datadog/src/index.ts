/** Public API of @metrics-distributor/sink-datadog: the sink, its options and the intake limits it splits to. */
export { DatadogSink } from './sink.js';
export type { DatadogSinkExtras } from './sink.js';
export { DEFAULT_LIMITS } from './options.js';
export type { DatadogSinkOptions, PayloadLimits } from './options.js';
export type { PayloadKind } from './kinds.js';
export type { KeyStatus } from './transport.js';
