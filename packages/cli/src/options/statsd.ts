/** Options of the StatsD UDP, TCP and Unix listeners and `--workers`. */
import type { UdpReaderKind } from '@metrics-distributor/frontend-statsd-udp';
import { oneOf, parseDurationMs, parseListen, parseInteger, parseString, parseOctal, type ListenAddress, type OptionsOf } from './parse.js';

/** The validated settings of this part; durations are milliseconds. */
export interface StatsdConfig {
  statsdUdp: ListenAddress | undefined;
  statsdUdpRecvBufferBytes: number;
  statsdUdpMaxDatagramBytes: number;
  statsdUdpKernelDropsPollMs: number;
  statsdUdpReader: UdpReaderKind;
  statsdTcp: ListenAddress | undefined;
  statsdUnix: string | undefined;
  statsdUnixMode: number;
  statsdTcpMaxLineBytes: number;
  statsdTcpMaxConnections: number;
  statsdTcpIdleTimeoutMs: number;
  workers: number | 'auto';
}

/** This part's options, in help order. */
export const STATSD_OPTIONS: readonly OptionsOf<StatsdConfig>[] = [
  { key: 'statsdUdp', flag: '--statsd-udp', arg: '<host:port|off>', description: 'StatsD/DogStatsD UDP listener (default 127.0.0.1:8125)', parse: parseListen, default: () => ({ host: '127.0.0.1', port: 8125 }) },
  { key: 'statsdUdpRecvBufferBytes', flag: '--statsd-udp-recv-buffer-bytes', arg: '<bytes>', description: 'SO_RCVBUF requested for the UDP socket (default 8388608)', parse: parseInteger(0), default: () => 8 * 1024 * 1024 },
  { key: 'statsdUdpMaxDatagramBytes', flag: '--statsd-udp-max-datagram-bytes', arg: '<bytes>', description: 'longer datagrams are truncated and counted (default 8192)', parse: parseInteger(1), default: () => 8192 },
  { key: 'statsdUdpKernelDropsPollMs', flag: '--statsd-udp-kernel-drops-poll', arg: '<duration>', description: "how often the kernel's count of datagrams dropped on the UDP socket (Linux) is read into dropped{reason:kernel_rcvbuf}; 0 turns it off (default 10s)", parse: (raw) => (raw === '0' || raw === 0 ? 0 : parseDurationMs(raw)), default: () => 10_000 },
  { key: 'statsdUdpReader', flag: '--statsd-udp-reader', arg: '<auto|batch|dgram>', description: 'who reads the UDP socket: batch (recvmmsg, one call into JavaScript per batch; needs the addon built on Linux), dgram (node:dgram, one event per datagram); auto = batch where the addon loaded (default auto)', parse: oneOf(['auto', 'batch', 'dgram'] as const), default: () => 'auto' },
  { key: 'statsdTcp', flag: '--statsd-tcp', arg: '<host:port|off>', description: 'StatsD TCP listener, newline framed (default 127.0.0.1:8125)', parse: parseListen, default: () => ({ host: '127.0.0.1', port: 8125 }) },
  { key: 'statsdUnix', flag: '--statsd-unix', arg: '<path|off>', description: 'StatsD Unix stream socket path (default off)', parse: (raw) => (raw === 'off' ? undefined : parseString(raw)), default: () => undefined },
  { key: 'statsdUnixMode', flag: '--statsd-unix-mode', arg: '<octal>', description: 'file mode of the Unix socket (default 660)', parse: parseOctal, default: () => 0o660 },
  { key: 'statsdTcpMaxLineBytes', flag: '--statsd-tcp-max-line-bytes', arg: '<bytes>', description: 'longer TCP lines are discarded and counted (default 65536)', parse: parseInteger(1), default: () => 65_536 },
  { key: 'statsdTcpMaxConnections', flag: '--statsd-tcp-max-connections', arg: '<n>', description: 'concurrent TCP/Unix connections at most (default 1024)', parse: parseInteger(1), default: () => 1024 },
  { key: 'statsdTcpIdleTimeoutMs', flag: '--statsd-tcp-idle-timeout', arg: '<duration>', description: 'close connections idle this long (default 5m)', parse: parseDurationMs, default: () => 300_000 },
  { key: 'workers', flag: '--workers', arg: '<n|auto>', description: 'processes receiving UDP on the one port; windows are merged before flushing (default 1; auto = one per core)', parse: (raw) => (raw === 'auto' ? 'auto' : parseInteger(1)(raw)), default: () => 1 },
];
