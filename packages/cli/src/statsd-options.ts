/** The StatsD front-ends' options as the config sets them, in one place for the primary and the UDP workers. */
import type { UdpFrontendOptions } from '@metrics-distributor/frontend-statsd-udp';
import type { TcpFrontendOptions } from '@metrics-distributor/frontend-statsd-tcp';
import type { ServerConfig } from './config.js';

/**
 * Options of the UDP front-end at `config.statsdUdp` (which must be set). `kernelDropsPollMs` is the
 * config's unless told: processes sharing one socket pass 0, as only one of them may count its drops.
 */
export function udpOptions(config: ServerConfig, kernelDropsPollMs = config.statsdUdpKernelDropsPollMs): UdpFrontendOptions {
  const listen = config.statsdUdp!;
  return {
    host: listen.host,
    port: listen.port,
    recvBufferBytes: config.statsdUdpRecvBufferBytes,
    maxDatagramBytes: config.statsdUdpMaxDatagramBytes,
    kernelDropsPollMs,
    reader: config.statsdUdpReader,
  };
}

/** Options of the TCP/Unix front-end: TCP at `config.statsdTcp` and/or Unix at `config.statsdUnix`. */
export function tcpOptions(config: ServerConfig): TcpFrontendOptions {
  return {
    host: config.statsdTcp?.host,
    port: config.statsdTcp?.port ?? null,
    unixPath: config.statsdUnix,
    unixSocketMode: config.statsdUnixMode,
    maxLineBytes: config.statsdTcpMaxLineBytes,
    maxConnections: config.statsdTcpMaxConnections,
    idleTimeoutMs: config.statsdTcpIdleTimeoutMs,
  };
}
