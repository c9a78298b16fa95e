/**
 * StatsD/DogStatsD over TCP and Unix stream sockets, newline framed. Complete lines are handed straight
 * out of each received chunk to a core `StatsdReceiver`; only a line split across chunks is copied, into a
 * small per-connection buffer bounded by `maxLineBytes`. Parsing, counting and aggregation live in core.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect, createServer, isIP, type Server, type Socket } from 'node:net';
import { MdError, RateLimitedLog, type ComponentStats, type Frontend, type Logger } from '@metrics-distributor/core';

/** Options of the {@link TcpFrontend}. TCP and the Unix socket are each on or off; at least one must be on. */
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

/** What the front-end needs from core's `StatsdReceiver` (structural, so tests can pass a fake). */
export interface StatsdLineReceiver {
  /** Parses and aggregates one line `buf[start, end)` (no `\n` inside), counting it as received/parsed/bad. */
  line(buf: Buffer, start: number, end: number): void;
  /** The front-end's self-metrics; the front-end bumps `packets` (chunks) and `bytes` and adds its drops. */
  readonly stats: ComponentStats;
}

/** Collaborators of the {@link TcpFrontend}. */
export interface TcpFrontendDeps {
  /** Usually `aggregator.statsdReceiver('statsd-tcp')`. */
  receiver: StatsdLineReceiver;
  /** Used as given: pass a child carrying `component: 'statsd-tcp'` if you want that binding. */
  logger: Logger;
}

/** Default TCP port: the StatsD port, shared with UDP since they are different protocols. */
export const DEFAULT_TCP_PORT = 8125;
/** Default longest line: 64 KiB, far above any real metric line, small enough to bound memory per connection. */
export const DEFAULT_MAX_LINE_BYTES = 65_536;
/** Default concurrent connections at most. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** Default idle timeout: 5 minutes without a byte. */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/** Default drain time per connection on `close()`. */
export const DEFAULT_CLOSE_DRAIN_MS = 1000;
/** Default Unix socket file mode: owner and group may connect. */
export const DEFAULT_UNIX_SOCKET_MODE = 0o660;

/** Logs about a flood (limits hit, socket errors) are limited to one line per this interval. */
const LOG_INTERVAL_MS = 60_000;
/** First size of a connection's partial-line buffer: most metric lines are well under this. */
const INITIAL_TAIL_BYTES = 512;
/** A partial-line buffer grown past this is released once its line is done, so rare long lines do not pin memory. */
const KEEP_TAIL_BYTES = 4096;
/** Error codes of peers going away: expected on the Internet, so only logged at debug. */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED']);
const NEWLINE = 10;
/** On close, a connection silent this long has delivered everything it sent before; longer only delays shutdown. */
const DRAIN_QUIET_MS = 50;

/** Strips the brackets of `[::1]`, the form people copy from URLs. */
function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Linux abstract socket names (leading NUL) have no file: nothing to stat, remove or chmod. */
function isAbstract(path: string): boolean {
  return path.startsWith('\0');
}

/** Per-connection framing state: at most one partial line, never the stream. */
class Connection {
  /** Bytes of a line split across chunks; reused for the next split line. */
  tail: Buffer | undefined;
  tailLen = 0;
  /** An over-long line is being skipped up to its newline (already counted). */
  discarding = false;
  /** Set by every chunk; `close()` waits for an event-loop turn without one before cutting the connection. */
  sawData = false;

  constructor(
    readonly socket: Socket,
    readonly via: 'tcp' | 'unix',
  ) {}
}

/** One bound listener and the address it reports. */
interface Listener {
  server: Server;
  address: string;
}

/**
 * The StatsD TCP/Unix stream listener. Lines are parsed synchronously inside each `data` callback, so the
 * only bytes held in JS are each connection's unfinished last line (at most `maxLineBytes`).
 */
export class TcpFrontend implements Frontend {
  /** Component id, used in logs and self-metrics (TCP and Unix share it). */
  readonly name = 'statsd-tcp';
  private readonly host: string;
  private readonly port: number | undefined;
  private readonly unixPath: string | undefined;
  private readonly unixSocketMode: number;
  private readonly maxLineBytes: number;
  private readonly maxConnections: number;
  private readonly idleTimeoutMs: number;
  private readonly closeDrainMs: number;
  private readonly receiver: StatsdLineReceiver;
  private readonly logger: Logger;
  private listeners: Listener[] = [];
  private readonly conns = new Set<Connection>();
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly tooLongLog = new RateLimitedLog(LOG_INTERVAL_MS);
  private readonly maxConnLog = new RateLimitedLog(LOG_INTERVAL_MS);
  private readonly idleLog = new RateLimitedLog(LOG_INTERVAL_MS);
  private readonly partialLog = new RateLimitedLog(LOG_INTERVAL_MS);
  private readonly errorLog = new RateLimitedLog(LOG_INTERVAL_MS);
  private readonly crashLog = new RateLimitedLog(LOG_INTERVAL_MS);

  constructor(opts: TcpFrontendOptions, deps: TcpFrontendDeps) {
    this.host = unbracket(opts.host ?? '127.0.0.1');
    this.unixPath = opts.unixPath;
    // Omitting the port means "the default" only when TCP is the sole listener; with a Unix path it means "no TCP".
    this.port = opts.port === null ? undefined : (opts.port ?? (this.unixPath === undefined ? DEFAULT_TCP_PORT : undefined));
    this.unixSocketMode = opts.unixSocketMode ?? DEFAULT_UNIX_SOCKET_MODE;
    this.maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.closeDrainMs = opts.closeDrainMs ?? DEFAULT_CLOSE_DRAIN_MS;
    const invalid = (what: string, value: unknown): MdError => new MdError('MD_ERR_CONFIG_INVALID', `statsd-tcp ${what}, got ${String(value)}`);
    if (this.port !== undefined && (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535)) throw invalid('port must be an integer in [0, 65535]', opts.port);
    if (this.unixPath !== undefined && (typeof this.unixPath !== 'string' || this.unixPath === '')) throw invalid('unixPath must be a non-empty path', opts.unixPath);
    if (this.port === undefined && this.unixPath === undefined) throw invalid('needs a TCP port or a unixPath', 'neither');
    if (!Number.isInteger(this.unixSocketMode) || this.unixSocketMode < 0 || this.unixSocketMode > 0o7777) throw invalid('unixSocketMode must be a file mode in [0, 0o7777]', opts.unixSocketMode);
    if (!Number.isInteger(this.maxLineBytes) || this.maxLineBytes < 1) throw invalid('maxLineBytes must be a positive integer', opts.maxLineBytes);
    if (!Number.isInteger(this.maxConnections) || this.maxConnections < 1) throw invalid('maxConnections must be a positive integer', opts.maxConnections);
    if (!Number.isInteger(this.idleTimeoutMs) || this.idleTimeoutMs < 0) throw invalid('idleTimeoutMs must be a non-negative integer', opts.idleTimeoutMs);
    if (!Number.isInteger(this.closeDrainMs) || this.closeDrainMs < 0) throw invalid('closeDrainMs must be a non-negative integer', opts.closeDrainMs);
    this.receiver = deps.receiver;
    this.logger = deps.logger;
  }

  // ---------------------------------------------------------------- binding

  /** Binds every configured listener and resolves once all listen; rejects with `MD_ERR_FRONTEND_BIND` (cause kept). */
  start(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new MdError('MD_ERR_FRONTEND_BIND', 'statsd-tcp was closed; create a new front-end'));
    return (this.starting ??= this.bindAll().catch((err: unknown) => {
      this.starting = undefined; // a later start() may try again, e.g. once the port is free
      throw err;
    }));
  }

  private async bindAll(): Promise<void> {
    const bound: Listener[] = [];
    try {
      if (this.port !== undefined) bound.push(await this.listenTcp(this.port));
      if (this.unixPath !== undefined) bound.push(await this.listenUnix(this.unixPath));
    } catch (err) {
      // All or nothing: a half-started front-end would hold a port the caller thinks is free. Connections
      // accepted meanwhile are cut, or closing their server would wait for them forever.
      const closing = bound.map((l) => closeServer(l.server));
      for (const c of this.conns) c.socket.destroy();
      await Promise.all(closing);
      throw err;
    }
    this.listeners = bound;
    for (const l of bound) this.logger.info({ address: l.address }, 'StatsD TCP listening.');
  }

  private newServer(via: 'tcp' | 'unix'): Server {
    return createServer((socket) => this.onConnection(socket, via));
  }

  /** Listens on `server` and settles on `listening` or the first `error`, which is wrapped as a bind error. */
  private listen(server: Server, opts: { host: string; port: number } | { path: string }, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        server.off('listening', onListening);
        reject(new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp could not listen on ${what}: ${err.message}`, { cause: err }));
      };
      const onListening = (): void => {
        server.off('error', onError);
        // From here on an 'error' (e.g. EMFILE on accept) must never reach the default handler, which would crash.
        server.on('error', (e) => this.onSocketError(e, 'listener'));
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(opts);
    });
  }

  private async listenTcp(port: number): Promise<Listener> {
    const server = this.newServer('tcp');
    await this.listen(server, { host: this.host, port }, `${this.host}:${port}`);
    const addr = server.address();
    const real = typeof addr === 'object' && addr !== null ? addr : { address: this.host, port, family: '' };
    const host = isIP(real.address) === 6 ? `[${real.address}]` : real.address;
    return { server, address: `tcp://${host}:${real.port}` };
  }

  private async listenUnix(path: string): Promise<Listener> {
    await this.removeStaleSocket(path);
    const server = this.newServer('unix');
    await this.listen(server, { path }, path);
    if (!isAbstract(path)) {
      try {
        await chmod(path, this.unixSocketMode);
      } catch (err) {
        const closing = closeServer(server);
        for (const c of this.conns) if (c.via === 'unix') c.socket.destroy();
        await closing;
        throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp could not set mode ${this.unixSocketMode.toString(8)} on ${path}: ${(err as Error).message}`, { cause: err });
      }
    }
    return { server, address: `unix://${path}` };
  }

  /**
   * A socket file left by a crashed process blocks `listen` with EADDRINUSE. Remove it only when a connect
   * attempt is refused: deleting a live server's path would silently steal its future clients.
   */
  private async removeStaleSocket(path: string): Promise<void> {
    if (isAbstract(path)) return;
    let isSocket: boolean;
    try {
      isSocket = (await lstat(path)).isSocket();
    } catch (err) {
      if (errCode(err) === 'ENOENT') return;
      throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp cannot inspect ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (!isSocket) throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp will not replace ${path}: it exists and is not a socket`);
    const probe = await probeUnix(path);
    if (probe === 'live') {
      const cause = Object.assign(new Error(`connect ${path} succeeded`), { code: 'EADDRINUSE' });
      throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp will not replace ${path}: another process is listening on it`, { cause });
    }
    if (probe !== 'refused') {
      throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp will not replace ${path}: cannot tell whether another process listens on it (${probe.message})`, { cause: probe });
    }
    try {
      await unlink(path);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp cannot remove stale socket ${path}: ${(err as Error).message}`, { cause: err });
    }
    this.logger.info({ path }, 'Removed a stale StatsD Unix socket file (nothing was listening on it).');
  }

  // ---------------------------------------------------------------- connections

  private onConnection(socket: Socket, via: 'tcp' | 'unix'): void {
    // A reset racing the accept must not become an unhandled 'error'.
    socket.on('error', (err) => this.onSocketError(err, via));
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    if (this.conns.size >= this.maxConnections) {
      this.receiver.stats.drop('max_connections');
      this.maxConnLog.maybe((suppressed) =>
        this.logger.warn(
          { via, maxConnections: this.maxConnections, suppressed },
          'StatsD TCP connection refused: maxConnections reached. See metrics_distributor.dropped{reason:max_connections}.',
        ),
      );
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, via);
    this.conns.add(conn);
    if (this.idleTimeoutMs > 0) socket.setTimeout(this.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('end', () => this.onEnd(conn));
    socket.on('timeout', () => this.onIdle(conn));
    socket.on('close', () => this.onClose(conn));
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ via, remote: socket.remoteAddress, connections: this.conns.size }, 'StatsD TCP connection opened.');
  }

  private onData(conn: Connection, chunk: Buffer): void {
    const stats = this.receiver.stats;
    stats.packets++;
    stats.bytes += chunk.length;
    conn.sawData = true;
    try {
      this.frame(conn, chunk);
    } catch (err) {
      // Only a bug in the framing itself gets here (parser errors are caught per line): the rest of the chunk
      // is lost, we resync at the next newline and the connection lives on.
      conn.tailLen = 0;
      conn.discarding = true;
      this.internalError(err);
    }
  }

  /** Hands one line to the parser; a throw loses that line only, never the connection or the rest of the chunk. */
  private parse(buf: Buffer, start: number, end: number): void {
    try {
      this.receiver.line(buf, start, end);
    } catch (err) {
      this.internalError(err);
    }
  }

  private internalError(err: unknown): void {
    this.receiver.stats.drop('internal_error');
    this.crashLog.maybe((suppressed) => this.logger.error({ err, suppressed }, 'StatsD TCP line could not be processed; it was dropped.'));
  }

  /** The hot path: finish the pending partial line, parse every complete line in place, keep the new tail. */
  private frame(conn: Connection, chunk: Buffer): void {
    const max = this.maxLineBytes;
    const len = chunk.length;
    let pos = 0;
    if (conn.tailLen > 0 || conn.discarding) {
      const nl = chunk.indexOf(NEWLINE);
      const upto = nl === -1 ? len : nl;
      if (conn.discarding) {
        if (nl === -1) return;
        conn.discarding = false;
      } else if (conn.tailLen + upto > max) {
        conn.tailLen = 0;
        this.lineTooLong(conn);
        if (nl === -1) {
          conn.discarding = true;
          return;
        }
      } else {
        this.appendTail(conn, chunk, 0, upto);
        if (nl === -1) return;
        const tail = conn.tail!;
        const n = conn.tailLen;
        conn.tailLen = 0;
        if (tail.length > KEEP_TAIL_BYTES) conn.tail = undefined;
        this.parse(tail, 0, n);
      }
      pos = nl + 1;
    }
    let nl: number;
    while ((nl = chunk.indexOf(NEWLINE, pos)) !== -1) {
      if (nl - pos > max) this.lineTooLong(conn);
      else this.parse(chunk, pos, nl);
      pos = nl + 1;
    }
    if (pos < len) {
      if (len - pos > max) {
        this.lineTooLong(conn);
        conn.discarding = true;
      } else {
        this.appendTail(conn, chunk, pos, len);
      }
    }
  }

  /** Copies `src[start, end)` after the pending bytes; the caller guarantees the total fits `maxLineBytes`. */
  private appendTail(conn: Connection, src: Buffer, start: number, end: number): void {
    const need = conn.tailLen + (end - start);
    let tail = conn.tail;
    if (tail === undefined || tail.length < need) {
      const size = Math.min(this.maxLineBytes, Math.max(need, INITIAL_TAIL_BYTES, tail === undefined ? 0 : tail.length * 2));
      // Unpooled: the buffer lives as long as the connection and must not pin a shared pool slab.
      const grown = Buffer.allocUnsafeSlow(size);
      if (tail !== undefined && conn.tailLen > 0) tail.copy(grown, 0, 0, conn.tailLen);
      conn.tail = tail = grown;
    }
    src.copy(tail, conn.tailLen, start, end);
    conn.tailLen = need;
  }

  private lineTooLong(conn: Connection): void {
    this.receiver.stats.drop('line_too_long');
    this.tooLongLog.maybe((suppressed) =>
      this.logger.warn(
        { via: conn.via, maxLineBytes: this.maxLineBytes, suppressed },
        'StatsD TCP line longer than maxLineBytes discarded up to its newline; the connection stays open. See metrics_distributor.dropped{reason:line_too_long}.',
      ),
    );
  }

  /** A clean FIN ends the last line even without `\n`, as Telegraf and Vector do; the client said it is done. */
  private onEnd(conn: Connection): void {
    if (conn.tailLen === 0 || conn.discarding) return;
    const n = conn.tailLen;
    conn.tailLen = 0;
    this.parse(conn.tail!, 0, n);
  }

  private onIdle(conn: Connection): void {
    this.receiver.stats.drop('idle_timeout');
    this.idleLog.maybe((suppressed) =>
      this.logger.info(
        { via: conn.via, idleTimeoutMs: this.idleTimeoutMs, suppressed },
        'StatsD TCP connection closed after idleTimeoutMs without data. See metrics_distributor.dropped{reason:idle_timeout}.',
      ),
    );
    conn.socket.destroy();
  }

  private onClose(conn: Connection): void {
    this.conns.delete(conn);
    // Bytes of an unfinished line are lost when the peer resets, idles out or we shut down: count them.
    if (conn.tailLen > 0) {
      conn.tailLen = 0;
      this.receiver.stats.drop('partial_line');
      this.partialLog.maybe((suppressed) =>
        this.logger.info({ via: conn.via, suppressed }, 'StatsD TCP connection closed in the middle of a line; the partial line was dropped.'),
      );
    }
    conn.tail = undefined;
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ via: conn.via, connections: this.conns.size }, 'StatsD TCP connection closed.');
  }

  private onSocketError(err: Error, via: string): void {
    const code = errCode(err);
    if (code !== undefined && PEER_GONE.has(code)) {
      if (this.logger.isLevelEnabled('debug')) this.logger.debug({ via, code }, 'StatsD TCP peer went away.');
      return;
    }
    this.errorLog.maybe((suppressed) => this.logger.warn({ err, via, suppressed }, 'StatsD TCP socket error; still listening.'));
  }

  // ---------------------------------------------------------------- closing

  /** Stops accepting, parses what each connection already sent, then closes them. Idempotent; safe before `start()`. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    // A bind in progress must finish (or fail) first, or a listener would open after we "closed".
    if (this.starting !== undefined) await this.starting.catch(() => undefined);
    const listeners = this.listeners;
    this.listeners = [];
    // server.close() stops accepting at once (and unlinks the Unix socket); its callback waits for connections.
    const closed = listeners.map((l) => closeServer(l.server));
    await Promise.all([...this.conns].map((c) => this.drain(c)));
    await Promise.all(closed);
  }

  /**
   * Keeps reading until the connection has been silent for {@link DRAIN_QUIET_MS} (so whatever the peer sent
   * before `close()`, including bytes still in flight, has been read and its complete lines parsed), the peer
   * ends, or `closeDrainMs` passes; then closes it.
   */
  private drain(conn: Connection): Promise<void> {
    const socket = conn.socket;
    return new Promise<void>((resolve) => {
      if (socket.closed) {
        resolve();
        return;
      }
      let quietTimer: NodeJS.Timeout | undefined;
      const cut = (): void => {
        clearTimeout(deadline);
        clearTimeout(quietTimer);
        socket.destroy();
      };
      const deadline = setTimeout(cut, this.closeDrainMs);
      socket.once('close', () => {
        clearTimeout(deadline);
        clearTimeout(quietTimer);
        resolve();
      });
      const listen = (): void => {
        conn.sawData = false;
        quietTimer = setTimeout(quietSoFar, DRAIN_QUIET_MS);
      };
      const quietSoFar = (): void => {
        if (socket.destroyed) return;
        if (conn.sawData) return listen();
        // After a stalled loop the timer can fire before the poll phase has read what arrived meanwhile:
        // confirm across a full poll phase (two immediates apart) before cutting.
        setImmediate(() =>
          setImmediate(() => {
            if (socket.destroyed) return;
            if (conn.sawData) listen();
            else cut();
          }),
        );
      };
      listen();
    });
  }

  /** Bound addresses: `tcp://127.0.0.1:8125` (real port) and/or `unix:///path`; empty before start and after close. */
  addresses(): readonly string[] {
    return this.listeners.map((l) => l.address);
  }
}

/** Closes a listening server, resolving once its connections are gone too; never rejects. */
function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

/** `'refused'` when nothing listens on `path` (a stale file), `'live'` when something accepted, else the error. */
function probeUnix(path: string): Promise<'refused' | 'live' | Error> {
  return new Promise((resolve) => {
    const sock = connect({ path });
    sock.once('connect', () => {
      sock.destroy();
      resolve('live');
    });
    sock.once('error', (err) => {
      sock.destroy();
      const code = errCode(err);
      resolve(code === 'ECONNREFUSED' || code === 'ENOENT' ? 'refused' : err);
    });
  });
}
