/** Every sink `--sink` accepts, by name; each is wired in its own file. */
import { consoleSink } from './console.js';
import { datadogSink } from './datadog.js';
import type { SinkFactory } from './factory.js';
import { graphiteSink } from './graphite.js';
import { otlpSink } from './otlp.js';
import { prometheusSink } from './prometheus.js';

export type { SinkFactory, SinkFactoryDeps } from './factory.js';

/** Known sink names and their factories. */
export const SINK_FACTORIES: Readonly<Record<string, SinkFactory>> = {
  console: consoleSink,
  datadog: datadogSink,
  graphite: graphiteSink,
  otlp: otlpSink,
  prometheus: prometheusSink,
};

/** Names accepted by `--sink`. */
export const SINK_NAMES = Object.keys(SINK_FACTORIES);
