/** Public API of @metrics-distributor/cli: start the server from a validated config, in-process. */
export { buildConfig, parseDurationMs, parseListen, readConfigFile, OPTIONS } from './config.js';
export type { ListenAddress, OptionSpec, ServerConfig } from './config.js';
export { startServer, SINK_NAMES } from './server.js';
export type { RunningServer, ServerDeps } from './server.js';
