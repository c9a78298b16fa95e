/** Public API of @metrics-distributor/sink-graphite: the sink and its options. */
export { GraphiteSink } from './sink.js';
export type { GraphiteSinkExtras } from './sink.js';
export type { GraphiteSinkOptions, TagMode } from './options.js';
export { sanitizeName } from './names.js';
