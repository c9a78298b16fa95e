/**
 * Public API of @metrics-distributor/frontend-statsd-tcp: StatsD/DogStatsD over TCP and Unix stream
 * sockets, newline framed.
 */
export { TcpFrontend, type TcpFrontendDeps } from './frontend.js';
export type { TcpFrontendOptions } from './options.js';
