/**
 * The TCP/Unix stream front-end: listeners, connections, limits and the drain at close. Framing is the
 * {@link LineFramer}'s; each complete line goes straight to a core `IngestTarget`, which parses,
 * counts and aggregates it.
 */
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { MdError, RateLimitedLog, type ComponentContext, type Frontend, type IngestTarget, type Logger } from '@metrics-distributor/core';
import { LineFramer, type LineHandler } from './framer.js';
import { resolveTcpOptions, type ResolvedTcpOptions, type TcpFrontendOptions } from './options.js';
import { errCode, removeStaleSocket, setSocketMode } from './unix.js';

/** Collaborators of the {@link TcpFrontend}. */
export interface TcpFrontendDeps {
  /** Where lines go, counted on the front-end's stats: usually `aggregator.target(context)`. */
  target: IngestTarget;
  /** Name, logger and self-metrics, shared by TCP and Unix; every drop goes through its `drop`. */
  context: ComponentContext<'statsd-tcp'>;
}

/** Logs that are not drops (socket errors, idle and partial-line closes at info) are limited to one line per this interval. */
const LOG_INTERVAL_MS = 60_000;
/** Error codes of peers going away: expected on the Internet, so only logged at debug. */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED']);
/** On close, a connection silent this long has delivered everything it sent before; longer only delays shutdown. */
const DRAIN_QUIET_MS = 50;

type Via = 'tcp' | 'unix';

/** One open connection: its framing state and whether it sent anything lately. */
class Connection {
  /** Set by every chunk; `close()` waits for an event-loop turn without one before cutting the connection. */
  sawData = false;

  constructor(
    readonly socket: Socket,
    readonly via: Via,
    readonly framer: LineFramer,
  ) {}
}

/** One bound listener and the address it reports. */
interface Listener {
  server: Server;
  address: string;
}

/** Closes a listening server, resolving once its connections are gone too; never rejects. */
function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * The StatsD TCP/Unix stream listener. Lines are parsed synchronously inside each `data` callback, so the
 * only bytes held in JS are each connection's unfinished last line (at most `maxLineBytes`).
 */
export class TcpFrontend implements Frontend {
  /** Component id, used in logs and self-metrics (TCP and Unix share it): the context's name. */
  readonly name: string;
  private readonly opts: ResolvedTcpOptions;
  private readonly target: IngestTarget;
  private readonly context: ComponentContext<'statsd-tcp'>;
  private readonly logger: Logger;
  /** One line handler per transport, shared by its connections: no closure per connection. */
  private readonly handlers: Record<Via, LineHandler>;
  private listeners: Listener[] = [];
  private readonly conns = new Set<Connection>();
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly errorLog = new RateLimitedLog(LOG_INTERVAL_MS);

  constructor(opts: TcpFrontendOptions, deps: TcpFrontendDeps) {
    this.opts = resolveTcpOptions(opts);
    this.target = deps.target;
    this.context = deps.context;
    this.name = deps.context.name;
    this.logger = deps.context.logger;
    const handler = (via: Via): LineHandler => ({ line: this.parse, tooLong: () => this.lineTooLong(via) });
    this.handlers = { tcp: handler('tcp'), unix: handler('unix') };
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
      if (this.opts.port !== undefined) bound.push(await this.listenTcp(this.opts.port));
      if (this.opts.unixPath !== undefined) bound.push(await this.listenUnix(this.opts.unixPath));
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

  private newServer(via: Via): Server {
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
    const host = this.opts.host;
    const server = this.newServer('tcp');
    await this.listen(server, { host, port }, `${host}:${port}`);
    const addr = server.address();
    const real = typeof addr === 'object' && addr !== null ? addr : { address: host, port, family: '' };
    const shown = isIP(real.address) === 6 ? `[${real.address}]` : real.address;
    return { server, address: `tcp://${shown}:${real.port}` };
  }

  private async listenUnix(path: string): Promise<Listener> {
    await removeStaleSocket(path, this.logger);
    const server = this.newServer('unix');
    await this.listen(server, { path }, path);
    try {
      await setSocketMode(path, this.opts.unixSocketMode);
    } catch (err) {
      const closing = closeServer(server);
      for (const c of this.conns) if (c.via === 'unix') c.socket.destroy();
      await closing;
      throw err;
    }
    return { server, address: `unix://${path}` };
  }

  // ---------------------------------------------------------------- connections

  private onConnection(socket: Socket, via: Via): void {
    // A reset racing the accept must not become an unhandled 'error'.
    socket.on('error', (err) => this.onSocketError(err, via));
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    const { maxConnections, maxLineBytes, idleTimeoutMs } = this.opts;
    if (this.conns.size >= maxConnections) {
      this.context.drop('max_connections', 1, {
        code: 'MD_ERR_FRONTEND_MAX_CONNECTIONS',
        fields: { via, maxConnections },
        message: 'StatsD TCP connection refused: maxConnections reached. See metrics_distributor.dropped{reason:max_connections}.',
      });
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, via, new LineFramer(maxLineBytes, this.handlers[via]));
    this.conns.add(conn);
    if (idleTimeoutMs > 0) socket.setTimeout(idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('end', () => this.onEnd(conn));
    socket.on('timeout', () => this.onIdle(conn));
    socket.on('close', () => this.onClose(conn));
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ via, remote: socket.remoteAddress, connections: this.conns.size }, 'StatsD TCP connection opened.');
  }

  private onData(conn: Connection, chunk: Buffer): void {
    const stats = this.context.stats;
    stats.packets++;
    stats.bytes += chunk.length;
    conn.sawData = true;
    try {
      conn.framer.push(chunk);
    } catch (err) {
      // Only a bug in the framing itself gets here (parser errors are caught per line): the rest of the chunk
      // is lost, we resync at the next newline and the connection lives on.
      conn.framer.resync();
      this.internalError(err);
    }
  }

  /**
   * Hands one line to the parser; a throw loses that line only, never the connection or the rest of the
   * chunk. An arrow property, so the framer calls it directly: this is the per-line path.
   */
  private readonly parse = (buf: Buffer, start: number, end: number): void => {
    try {
      this.target.statsdLine(buf, start, end);
    } catch (err) {
      this.internalError(err);
    }
  };

  private internalError(err: unknown): void {
    this.context.drop('internal_error', 1, {
      code: 'MD_ERR_FRONTEND_INTERNAL',
      level: 'error',
      cause: err,
      message: 'StatsD TCP line could not be processed; it was dropped.',
    });
  }

  private lineTooLong(via: Via): void {
    this.context.drop('line_too_long', 1, {
      code: 'MD_ERR_FRONTEND_LINE_TOO_LONG',
      fields: { via, maxLineBytes: this.opts.maxLineBytes },
      message: 'StatsD TCP line longer than maxLineBytes discarded up to its newline; the connection stays open. See metrics_distributor.dropped{reason:line_too_long}.',
    });
  }

  /** A clean FIN ends the last line even without `\n`, as Telegraf and Vector do; the client said it is done. */
  private onEnd(conn: Connection): void {
    conn.framer.end();
  }

  private onIdle(conn: Connection): void {
    // Counted through the context; logged here at info, as an idle client is routine (drop logs are warn or error).
    this.context.drop('idle_timeout', 1, {
      code: 'MD_ERR_FRONTEND_IDLE_TIMEOUT',
      level: 'info',
      fields: { via: conn.via, idleTimeoutMs: this.opts.idleTimeoutMs },
      message: 'StatsD TCP connection closed after idleTimeoutMs without data. See metrics_distributor.dropped{reason:idle_timeout}.',
    });
    conn.socket.destroy();
  }

  private onClose(conn: Connection): void {
    this.conns.delete(conn);
    // Bytes of an unfinished line are lost when the peer resets, idles out or we shut down: count them.
    if (conn.framer.release() > 0) {
      this.context.drop('partial_line', 1, {
        code: 'MD_ERR_FRONTEND_PARTIAL_LINE',
        level: 'info',
        fields: { via: conn.via },
        message: 'StatsD TCP connection closed in the middle of a line; the partial line was dropped.',
      });
    }
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
      const deadline = setTimeout(cut, this.opts.closeDrainMs);
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
