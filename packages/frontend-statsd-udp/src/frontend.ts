/**
 * The UDP front-end: binds, hands every datagram, unparsed, to a core `IngestTarget`, and drains the
 * kernel queue at close. Parsing, counting and aggregation all live in core. Datagrams are read by
 * node:dgram or, where its addon loaded, by the batch reader (batch-reader.ts).
 */
import { createSocket, type Socket, type SocketType } from 'node:dgram';
import { isIP } from 'node:net';
import { MdError, RateLimitedLog, type ComponentContext, type Frontend, type IngestTarget, type Logger } from '@metrics-distributor/core';
import { BatchReader, loadBatchAddon, type AddonLoad, type UdpReaderKind, type UdpReaderRunning } from './batch-reader.js';
import { DEFAULT_KERNEL_DROPS_POLL_MS, KernelDropWatch } from './kernel-drops.js';

/** Options of the {@link UdpFrontend}; every field has an agent-like default. */
export interface UdpFrontendOptions {
  /** Address to bind; an IPv6 literal (`::1`, `[::1]`) binds a udp6 socket. Default `127.0.0.1`. */
  host?: string;
  /** Port to bind; 0 picks an ephemeral port (see {@link UdpFrontend.addresses}). Default 8125. */
  port?: number;
  /** SO_RCVBUF to request, absorbing bursts while the event loop is busy; 0 keeps the OS default. Default 8 MiB. */
  recvBufferBytes?: number;
  /** Bytes of a datagram parsed at most; longer ones are cut and counted as `truncated`. Default 8192. */
  maxDatagramBytes?: number;
  /** On `close()`, how long datagrams already queued in the kernel may keep being read. Default 1000. */
  closeDrainMs?: number;
  /**
   * How often to read the kernel's count of datagrams it dropped on this socket (Linux /proc/net/udp)
   * into `dropped{reason:kernel_rcvbuf}`; 0 turns it off (e.g. when several processes share the
   * socket and one of them counts). Default 10000.
   */
  kernelDropsPollMs?: number;
  /**
   * Who reads the socket: `batch` (recvmmsg through the package's addon, one call into JavaScript
   * per batch of datagrams), `dgram` (node:dgram's `message` event, one per datagram) or `auto`
   * (batch where the addon loaded, else dgram with one info log saying why). Default `auto`.
   */
  reader?: UdpReaderKind;
  /** Where the batch reader's addon is loaded from; default the package's `build/udp_batch.node`. */
  readerAddonPath?: string;
}

/** Collaborators of the {@link UdpFrontend}. */
export interface UdpFrontendDeps {
  /** Where datagrams go, counted on the front-end's stats: usually `aggregator.target(context)`. */
  target: IngestTarget;
  /** Name, logger and self-metrics; the front-end's own drops (`truncated`, `internal_error`, `kernel_rcvbuf`) go through its `drop`. */
  context: ComponentContext<'statsd-udp'>;
}

/** The address a {@link UdpFrontend} is bound to, as `socket.address()` gives it. */
export interface UdpBoundAddress {
  /** IP address, without brackets. */
  address: string;
  /** The real port (never 0). */
  port: number;
  /** Socket type. */
  family: 'udp4' | 'udp6';
}

/** Default SO_RCVBUF request: the agent's recommended `dogstatsd_so_rcvbuf` order of magnitude. */
const DEFAULT_RECV_BUFFER_BYTES = 8 * 1024 * 1024;
/** Default parse limit per datagram: the agent's `dogstatsd_buffer_size`. */
const DEFAULT_MAX_DATAGRAM_BYTES = 8192;

/** Default cap on reading the kernel queue at close. */
const DEFAULT_CLOSE_DRAIN_MS = 1000;
/** At close, the socket counts as drained once no datagram arrived for this long (and a poll confirmed it). */
const CLOSE_QUIET_MS = 50;

/** Logs about socket errors are limited to one line per this interval (drops are limited by the context). */
const LOG_INTERVAL_MS = 60_000;

/** Strips the brackets of `[::1]`, the form people copy from URLs. */
function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * The StatsD UDP listener. Each datagram is handed to the target synchronously inside the
 * `message` callback, so nothing is buffered in JS; `close()` first reads what the kernel has queued.
 */
export class UdpFrontend implements Frontend {
  /** Component id, used in logs and self-metrics: the context's name. */
  readonly name: string;
  private readonly host: string;
  private readonly port: number;
  private readonly recvBufferBytes: number;
  private readonly maxDatagramBytes: number;
  private readonly closeDrainMs: number;
  private readonly kernelDropsPollMs: number;
  private readonly readerKind: UdpReaderKind;
  /** Loaded in the constructor, so the cost and the outcome are known before start(). */
  private readonly addon: AddonLoad | undefined;
  private batch: BatchReader | undefined;
  private running: UdpReaderRunning | undefined;
  /** Datagrams handed over so far: the close-time drain watches it. */
  private datagrams = 0;
  private kernelDrops: KernelDropWatch | undefined;
  private readonly target: IngestTarget;
  private readonly context: ComponentContext<'statsd-udp'>;
  private readonly logger: Logger;
  private socket: Socket | undefined;
  private bound: { url: string; address: UdpBoundAddress } | undefined;
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly errorLog = new RateLimitedLog(LOG_INTERVAL_MS);

  constructor(opts: UdpFrontendOptions, deps: UdpFrontendDeps) {
    this.host = unbracket(opts.host ?? '127.0.0.1');
    this.port = opts.port ?? 8125;
    this.recvBufferBytes = opts.recvBufferBytes ?? DEFAULT_RECV_BUFFER_BYTES;
    this.maxDatagramBytes = opts.maxDatagramBytes ?? DEFAULT_MAX_DATAGRAM_BYTES;
    this.closeDrainMs = opts.closeDrainMs ?? DEFAULT_CLOSE_DRAIN_MS;
    this.kernelDropsPollMs = opts.kernelDropsPollMs ?? DEFAULT_KERNEL_DROPS_POLL_MS;
    this.readerKind = opts.reader ?? 'auto';
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `statsd-udp port must be an integer in [0, 65535], got ${String(opts.port)}`);
    }
    if (!Number.isInteger(this.recvBufferBytes) || this.recvBufferBytes < 0) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `statsd-udp recvBufferBytes must be a non-negative integer, got ${String(opts.recvBufferBytes)}`);
    }
    if (!Number.isInteger(this.maxDatagramBytes) || this.maxDatagramBytes < 1) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `statsd-udp maxDatagramBytes must be a positive integer, got ${String(opts.maxDatagramBytes)}`);
    }
    if (!Number.isInteger(this.closeDrainMs) || this.closeDrainMs < 0) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `statsd-udp closeDrainMs must be a non-negative integer, got ${String(opts.closeDrainMs)}`);
    }
    if (!Number.isInteger(this.kernelDropsPollMs) || this.kernelDropsPollMs < 0) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `statsd-udp kernelDropsPollMs must be a non-negative integer, got ${String(opts.kernelDropsPollMs)}`);
    }
    if (!['auto', 'batch', 'dgram'].includes(this.readerKind)) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `statsd-udp reader must be auto, batch or dgram, got ${String(opts.reader)}`);
    }
    this.addon = this.readerKind === 'dgram' ? undefined : loadBatchAddon(opts.readerAddonPath);
    this.target = deps.target;
    this.context = deps.context;
    this.name = deps.context.name;
    this.logger = deps.context.logger;
  }

  /** Binds and resolves once listening; rejects with `MD_ERR_FRONTEND_BIND` (cause kept) when it cannot. */
  start(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new MdError('MD_ERR_FRONTEND_BIND', 'statsd-udp was closed; create a new front-end'));
    return (this.starting ??= this.bind().then(() => this.watchKernelDrops()));
  }

  private async watchKernelDrops(): Promise<void> {
    const bound = this.bound?.address;
    if (this.kernelDropsPollMs === 0 || bound === undefined) return;
    this.kernelDrops = new KernelDropWatch({ ...bound, pollMs: this.kernelDropsPollMs }, this.context);
    await this.kernelDrops.start();
  }

  private bind(): Promise<void> {
    const type: SocketType = isIP(this.host) === 6 ? 'udp6' : 'udp4';
    const socket = createSocket({ type });
    this.socket = socket;
    return new Promise<void>((resolve, reject) => {
      const onBindError = (err: Error): void => {
        this.socket = undefined;
        this.starting = undefined; // a later start() may try again, e.g. once the port is free
        try {
          socket.close();
        } catch {
          // Already closed by dgram after the failure: nothing to release.
        }
        reject(new MdError('MD_ERR_FRONTEND_BIND', `statsd-udp could not bind ${this.host}:${this.port}: ${err.message}`, { cause: err }));
      };
      socket.once('error', onBindError);
      socket.bind({ address: this.host, port: this.port }, () => {
        socket.off('error', onBindError);
        // From here on an 'error' must never reach the default handler, which would crash the process.
        socket.on('error', (err) => this.onSocketError(err));
        const unavailable = this.startReading(socket);
        if (unavailable !== undefined) {
          this.socket = undefined;
          this.starting = undefined;
          socket.close();
          reject(new MdError('MD_ERR_FRONTEND_READER', `statsd-udp reader batch was asked for but cannot run: ${unavailable}`));
          return;
        }
        this.applyRecvBuffer(socket);
        const { address, port } = socket.address();
        this.bound = { url: `udp://${type === 'udp6' ? `[${address}]` : address}:${port}`, address: { address, port, family: type } };
        this.logger.info({ address: this.bound.url, reader: this.running }, 'StatsD UDP listening.');
        resolve();
      });
    });
  }

  /**
   * Starts the reader: the batch reader where asked for and available, else dgram's `message` event.
   * Returns why the batch reader cannot run only when it was asked for explicitly.
   */
  private startReading(socket: Socket): string | undefined {
    if (this.addon !== undefined) {
      const attached = this.addon.ok
        ? BatchReader.attach(this.addon.addon, socket, {
            slotBytes: this.maxDatagramBytes,
            onDatagram: (buf, start, length) => this.onDatagram(buf, start, length),
            onError: (err) => this.onSocketError(err),
          })
        : this.addon.why;
      if (typeof attached !== 'string') {
        this.batch = attached;
        this.running = 'batch';
        return undefined;
      }
      if (this.readerKind === 'batch') return attached;
      this.logger.info({ reader: 'dgram', why: attached }, 'StatsD UDP batch reader unavailable; reading with node:dgram.');
    }
    socket.on('message', (msg: Buffer) => this.onDatagram(msg, 0, msg.length));
    this.running = 'dgram';
    return undefined;
  }

  /**
   * Requests SO_RCVBUF and logs what the kernel granted: Linux doubles the request and caps it at
   * `net.core.rmem_max`, so a silently small buffer is the usual cause of UDP drops under bursts.
   */
  private applyRecvBuffer(socket: Socket): void {
    let requestError: unknown;
    if (this.recvBufferBytes > 0) {
      try {
        socket.setRecvBufferSize(this.recvBufferBytes);
      } catch (err) {
        requestError = err;
      }
    }
    let granted: number | undefined;
    try {
      granted = socket.getRecvBufferSize();
    } catch {
      granted = undefined;
    }
    const requested = this.recvBufferBytes > 0 ? this.recvBufferBytes : undefined;
    this.logger.info({ requestedBytes: requested ?? 'os-default', grantedBytes: granted }, 'StatsD UDP receive buffer.');
    if (requested !== undefined && (requestError !== undefined || granted === undefined || granted < requested)) {
      this.logger.warn(
        { err: requestError, requestedBytes: requested, grantedBytes: granted },
        'StatsD UDP receive buffer is smaller than requested; bursts may be dropped by the kernel. Raise net.core.rmem_max (Linux) or lower recvBufferBytes.',
      );
    }
  }

  /**
   * One datagram of `length` bytes at `buf[start…]`, from either reader (the batch reader's slab keeps
   * at most maxDatagramBytes of it; the datagram is only valid during this call).
   */
  private onDatagram(buf: Buffer, start: number, length: number): void {
    this.datagrams++;
    try {
      let end = start + length;
      if (length > this.maxDatagramBytes) {
        // The agent's fixed read buffer cuts the datagram and then parses the cut line, which can record a
        // wrong value (x:12345 read as x:12). We cut back to the last complete line instead.
        const lastNewline = buf.lastIndexOf(10, start + this.maxDatagramBytes - 1);
        end = lastNewline >= start ? lastNewline : start;
        this.context.drop('truncated', 1, {
          code: 'MD_ERR_FRONTEND_TRUNCATED',
          // `code` at the top level as well: that is where operators' log queries have matched it.
          fields: { code: 'MD_ERR_FRONTEND_TRUNCATED', bytes: length, maxDatagramBytes: this.maxDatagramBytes },
          message: 'StatsD datagram longer than maxDatagramBytes; parsed only its complete lines within the limit. Raise maxDatagramBytes to match the clients.',
        });
      }
      this.target.statsd(buf, start, end);
    } catch (err) {
      // The parser is meant never to throw; if it does, one datagram is lost but the socket lives on.
      this.context.drop('internal_error', 1, {
        code: 'MD_ERR_FRONTEND_INTERNAL',
        level: 'error',
        cause: err,
        fields: { bytes: length },
        message: 'StatsD datagram could not be processed; it was dropped.',
      });
    }
  }

  private onSocketError(err: Error): void {
    this.errorLog.maybe((suppressed) => this.logger.error({ err, suppressed }, 'StatsD UDP socket error; still listening.'));
  }

  /** Stops receiving and resolves when the socket is closed. Idempotent; safe before `start()`. */
  close(): Promise<void> {
    return (this.closing ??= this.closeSocket());
  }

  private async closeSocket(): Promise<void> {
    // A bind in progress must finish (or fail) first, or the socket would open after we "closed" it.
    if (this.starting !== undefined) await this.starting.catch(() => undefined);
    const socket = this.socket;
    this.socket = undefined;
    this.bound = undefined;
    if (socket === undefined) return;
    // Datagrams the kernel already queued were received: read them before closing, or closing the
    // socket would discard them uncounted (a burst just before SIGTERM lost up to thousands of lines).
    await this.drain();
    // Drops up to the last read datagram, before the socket and its counter go away.
    await this.kernelDrops?.stop();
    this.batch?.close();
    this.batch = undefined;
    this.running = undefined;
    socket.removeAllListeners('message');
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  /**
   * Keeps reading until no datagram arrived for {@link CLOSE_QUIET_MS}, confirmed after a full event-loop
   * poll (a timer can fire before the poll that would read a queue built up while the loop was busy),
   * or until `closeDrainMs` has passed (clients that never pause).
   */
  private drain(): Promise<void> {
    if (this.closeDrainMs === 0) return Promise.resolve();
    const deadline = Date.now() + this.closeDrainMs;
    return new Promise<void>((resolve) => {
      const check = (): void => {
        const before = this.datagrams;
        setTimeout(() => {
          if (Date.now() >= deadline) return resolve();
          if (this.datagrams !== before) return check();
          // Quiet so far; setImmediate runs after the next poll phase, which reads anything queued
          // (by either reader: the batch reader's poll watcher runs in that phase too).
          setImmediate(() => (this.datagrams === before || Date.now() >= deadline ? resolve() : check()));
        }, CLOSE_QUIET_MS);
      };
      check();
    });
  }

  /** The bound address as `udp://host:port` (real port when 0 was asked); empty before start and after close. */
  addresses(): readonly string[] {
    return this.bound === undefined ? [] : [this.bound.url];
  }

  /** The reader receiving the datagrams (`batch` or `dgram`) while listening; undefined before start and after close. */
  get reader(): UdpReaderRunning | undefined {
    return this.running;
  }

  /** The bound address as data (for a process that shares the socket); undefined before start and after close. */
  boundAddress(): UdpBoundAddress | undefined {
    return this.bound === undefined ? undefined : { ...this.bound.address };
  }
}

