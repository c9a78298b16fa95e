/**
 * Public API of @metrics-distributor/frontend-statsd-udp: StatsD/DogStatsD over UDP, a thin wrapper
 * over `node:dgram` (read by a recvmmsg batch reader where its addon is built), plus the kernel-drop
 * reader for processes that share a socket they do not own.
 */
export { UdpFrontend, type UdpBoundAddress, type UdpFrontendDeps, type UdpFrontendOptions } from './frontend.js';
export { KernelDropWatch, dropsFor, procLocalAddress, type KernelDropWatchOptions } from './kernel-drops.js';
export type { UdpReaderKind, UdpReaderRunning } from './batch-reader.js';
