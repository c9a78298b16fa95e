/** Public API of @metrics-distributor/sink-prometheus: the scrape-mode sink and its naming rules. */
export { DEFAULT_BUCKETS, DEFAULT_QUANTILES, PrometheusSink, validateBuckets, validateQuantiles } from './sink.js';
export type { ObserverType, PrometheusSinkDeps, PrometheusSinkOptions } from './sink.js';
export { escapeHelp, escapeLabelValue, formatValue, renderTagLabels, sanitizeLabelName, sanitizeMetricName } from './names.js';
export { CONTENT_TYPES, negotiate } from './render.js';
export type { ExpositionFormat } from './render.js';
export { sketchKey, windowTotal } from './state.js';
export { RemoteWriter, parseLabels } from './remote-write.js';
export type { RemoteWriteOptions } from './remote-write.js';
export { snappyCompress } from './snappy.js';
export { encodeTimeSeries } from './write-request.js';
export type { LabelPair } from './write-request.js';
