/** The shape of one sink's wiring: the CLI is the only place that builds sinks from the config. */
import type { ComponentRoot, Sink } from '@metrics-distributor/core';
import type { ServerConfig } from '../config.js';

/** What a sink factory may use besides the config and the component root. */
export interface SinkFactoryDeps {
  /** Where the console sink writes; default process.stdout. */
  stdout?: NodeJS.WritableStream;
}

/**
 * Builds one configured sink with its component context from `root`. Packages with heavy
 * dependencies (undici, fastify) are imported inside the factory, only when the sink is configured:
 * each costs about 9 MiB of resident memory, in the primary and in every UDP worker.
 */
export type SinkFactory = (config: ServerConfig, root: ComponentRoot, deps: SinkFactoryDeps) => Promise<Sink>;
