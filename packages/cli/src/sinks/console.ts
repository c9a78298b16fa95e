/** `--sink console`: JSON lines, or a table on a TTY. */
import { sinkContext } from '@metrics-distributor/core';
import { ConsoleSink } from '@metrics-distributor/sink-console';
import type { SinkFactory } from './factory.js';

/** Builds the console sink on the given stdout. */
export const consoleSink: SinkFactory = (_config, root, deps) => Promise.resolve(new ConsoleSink({ stream: deps.stdout ?? process.stdout }, sinkContext(root, 'console')));
