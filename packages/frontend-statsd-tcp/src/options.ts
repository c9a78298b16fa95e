/** Options of the TCP/Unix front-end, their defaults, and the one place they are checked. */
import { MdError } from '@metrics-distributor/core';

/** Options of the TcpFrontend. TCP and the Unix socket are each on or off; at least one must be on. */
export interface TcpFrontendOptions {
  /** Address to bind the TCP listener; an IPv6 literal (`::1`, `[::1]`) works. Default `127.0.0.1`. */
  host?: string;
  /** TCP port; 0 picks an ephemeral port. Default 8125; `null`, or omitted while `unixPath` is set, means no TCP listener. */
  port?: number | null;
  /** Path of a Unix domain stream socket to listen on as well (or instead). Default: none. */
  unixPath?: string;
  /** File mode set on the Unix socket right after it is bound. Default `0o660`. */
  unixSocketMode?: number;
  /** Longest line in bytes (excluding its `\n`); a longer one is discarded up to its newline and counted. Default 65536. */
  maxLineBytes?: number;
  /** Concurrent connections at most, TCP and Unix together; beyond it new ones are closed at once and counted. Default 1024. */
  maxConnections?: number;
  /** A connection that sends no byte for this long is closed and counted; 0 turns the timeout off. Default 300000. */
  idleTimeoutMs?: number;
  /** On `close()`, how long a connection that keeps sending may keep being read before it is cut. Default 1000. */
  closeDrainMs?: number;
}

/** {@link TcpFrontendOptions} with every default applied and every value checked. */
export interface ResolvedTcpOptions {
  /** TCP address, brackets stripped. */
  host: string;
  /** TCP port, or undefined for no TCP listener. */
  port: number | undefined;
  /** Unix socket path, or undefined for none. */
  unixPath: string | undefined;
  /** File mode of the Unix socket. */
  unixSocketMode: number;
  /** Longest line in bytes. */
  maxLineBytes: number;
  /** Concurrent connections at most. */
  maxConnections: number;
  /** Idle timeout, 0 for none. */
  idleTimeoutMs: number;
  /** Drain time per connection on close. */
  closeDrainMs: number;
}

/** Default TCP port: the StatsD port, shared with UDP since they are different protocols. */
const DEFAULT_TCP_PORT = 8125;
/** Default longest line: 64 KiB, far above any real metric line, small enough to bound memory per connection. */
const DEFAULT_MAX_LINE_BYTES = 65_536;
/** Default concurrent connections at most. */
const DEFAULT_MAX_CONNECTIONS = 1024;
/** Default idle timeout: 5 minutes without a byte. */
const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/** Default drain time per connection on `close()`. */
const DEFAULT_CLOSE_DRAIN_MS = 1000;
/** Default Unix socket file mode: owner and group may connect. */
const DEFAULT_UNIX_SOCKET_MODE = 0o660;

/** Strips the brackets of `[::1]`, the form people copy from URLs. */
function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Applies the defaults and checks every value; throws `MD_ERR_CONFIG_INVALID` naming the first bad one. */
export function resolveTcpOptions(opts: TcpFrontendOptions): ResolvedTcpOptions {
  const unixPath = opts.unixPath;
  const r: ResolvedTcpOptions = {
    host: unbracket(opts.host ?? '127.0.0.1'),
    unixPath,
    // Omitting the port means "the default" only when TCP is the sole listener; with a Unix path it means "no TCP".
    port: opts.port === null ? undefined : (opts.port ?? (unixPath === undefined ? DEFAULT_TCP_PORT : undefined)),
    unixSocketMode: opts.unixSocketMode ?? DEFAULT_UNIX_SOCKET_MODE,
    maxLineBytes: opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
    maxConnections: opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    closeDrainMs: opts.closeDrainMs ?? DEFAULT_CLOSE_DRAIN_MS,
  };
  const invalid = (what: string, value: unknown): MdError => new MdError('MD_ERR_CONFIG_INVALID', `statsd-tcp ${what}, got ${String(value)}`);
  if (r.port !== undefined && (!Number.isInteger(r.port) || r.port < 0 || r.port > 65535)) throw invalid('port must be an integer in [0, 65535]', opts.port);
  if (r.unixPath !== undefined && (typeof r.unixPath !== 'string' || r.unixPath === '')) throw invalid('unixPath must be a non-empty path', opts.unixPath);
  if (r.port === undefined && r.unixPath === undefined) throw invalid('needs a TCP port or a unixPath', 'neither');
  if (!Number.isInteger(r.unixSocketMode) || r.unixSocketMode < 0 || r.unixSocketMode > 0o7777) throw invalid('unixSocketMode must be a file mode in [0, 0o7777]', opts.unixSocketMode);
  if (!Number.isInteger(r.maxLineBytes) || r.maxLineBytes < 1) throw invalid('maxLineBytes must be a positive integer', opts.maxLineBytes);
  if (!Number.isInteger(r.maxConnections) || r.maxConnections < 1) throw invalid('maxConnections must be a positive integer', opts.maxConnections);
  if (!Number.isInteger(r.idleTimeoutMs) || r.idleTimeoutMs < 0) throw invalid('idleTimeoutMs must be a non-negative integer', opts.idleTimeoutMs);
  if (!Number.isInteger(r.closeDrainMs) || r.closeDrainMs < 0) throw invalid('closeDrainMs must be a non-negative integer', opts.closeDrainMs);
  return r;
}
