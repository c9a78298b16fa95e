/**
 * The one TCP connection to carbon: opened on the first send, kept open, and opened again by the next
 * send once it broke. It never retries by itself: a failed send is `retryable`, and core's
 * DeliveryPolicy decides when to try again (backoff, circuit breaker), which is when it reconnects.
 */
import { connect, type Socket } from 'node:net';
import { MdError, type ComponentStats, type Logger, type SendOutcome } from '@metrics-distributor/core';

/** Where carbon is and how long connecting and writing may take. */
export interface ConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly writeTimeoutMs: number;
}

const OK: SendOutcome = Object.freeze({ kind: 'ok' });

/** Writes payloads to carbon's line receiver over one persistent connection. */
export class CarbonConnection {
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  /** The socket being connected, so shutdown can abandon it instead of waiting out the connect timeout. */
  private dialing: Socket | undefined;
  private closed = false;

  constructor(
    private readonly o: ConnectionOptions,
    private readonly logger: Logger,
    /** Counts `connects` (connections opened) and `disconnects` (connections lost). */
    private readonly stats: ComponentStats,
  ) {}

  /** `host:port`, for log lines. */
  get address(): string {
    return this.o.host.includes(':') ? `[${this.o.host}]:${this.o.port}` : `${this.o.host}:${this.o.port}`;
  }

  /** Whether a connection is open now. */
  get connected(): boolean {
    return this.socket !== undefined;
  }

  /**
   * Writes `body` and resolves `ok` once it was handed to the kernel; `retryable` when the connection
   * cannot be opened, breaks, or the write does not finish within the write timeout (the connection
   * is then dropped, so a stalled carbon cannot hold more than what is in flight). Never rejects.
   */
  async send(body: Buffer): Promise<SendOutcome> {
    if (this.closed) return this.retryable('the sink is shut down');
    let sock: Socket;
    try {
      sock = await this.open();
    } catch (err) {
      return this.retryable(`cannot connect to carbon at ${this.address}`, err);
    }
    return new Promise<SendOutcome>((resolve) => {
      let done = false;
      const finish = (out: SendOutcome): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.off('close', onClose);
        resolve(out);
      };
      const onClose = (): void => finish(this.retryable(`connection to carbon at ${this.address} closed before the payload was written`));
      const timer = setTimeout(() => {
        const err = new MdError('MD_ERR_SINK_TIMEOUT', `write to carbon did not finish within ${this.o.writeTimeoutMs} ms`);
        this.drop(sock, err);
        finish(this.retryable(`carbon at ${this.address} is not reading`, err));
      }, this.o.writeTimeoutMs);
      sock.once('close', onClose);
      sock.write(body, (err) => finish(err == null ? OK : this.retryable(`write to carbon at ${this.address} failed`, err)));
    });
  }

  private retryable(message: string, cause?: unknown): SendOutcome {
    return { kind: 'retryable', error: new MdError('MD_ERR_SINK_CONNECT', message, cause === undefined ? undefined : { cause }) };
  }

  /** The open connection, or a new one. */
  private open(): Promise<Socket> {
    if (this.socket !== undefined) return Promise.resolve(this.socket);
    this.connecting ??= this.dial().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private dial(): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const sock = connect({ host: this.o.host, port: this.o.port });
      this.dialing = sock;
      sock.once('close', () => {
        if (this.dialing === sock) this.dialing = undefined;
      });
      const timer = setTimeout(() => sock.destroy(new MdError('MD_ERR_SINK_TIMEOUT', `no connection within ${this.o.connectTimeoutMs} ms`)), this.o.connectTimeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      sock.once('error', onError);
      sock.once('connect', () => {
        clearTimeout(timer);
        this.dialing = undefined;
        sock.off('error', onError);
        if (this.closed) {
          sock.destroy();
          reject(new MdError('MD_ERR_SINK_CONNECT', 'the sink is shut down'));
          return;
        }
        this.adopt(sock);
        resolve(sock);
      });
    });
  }

  /** Keeps `sock` as the connection until it errors, ends or closes. */
  private adopt(sock: Socket): void {
    this.socket = sock;
    this.stats.count('connects');
    sock.setKeepAlive(true, 30_000);
    // Each payload in flight waits on 'close'; a few are fine, warn only on a real leak.
    sock.setMaxListeners(64);
    // carbon sends nothing; read to notice its FIN at once rather than on the next write.
    sock.on('data', () => undefined);
    sock.on('error', (err) => this.logger.debug({ err, carbon: this.address }, 'Connection to carbon failed.'));
    const lost = (): void => {
      if (this.socket !== sock) return;
      this.socket = undefined;
      this.stats.count('disconnects');
      this.logger.debug({ carbon: this.address }, 'Connection to carbon closed; the next payload reconnects.');
    };
    // Once carbon closed its side, nothing written after reaches it: stop using the socket now.
    sock.on('end', () => {
      lost();
      sock.destroy();
    });
    sock.on('close', lost);
  }

  private drop(sock: Socket, err: Error): void {
    if (this.socket === sock) this.socket = undefined;
    sock.destroy(err);
  }

  /** Ends the connection gracefully (what was written is flushed), destroying it at `deadlineMs`. Idempotent. */
  async close(deadlineMs: number): Promise<void> {
    this.closed = true;
    // The delivery policy is done by now: a connection still being opened would carry nothing.
    this.dialing?.destroy(new MdError('MD_ERR_SINK_CONNECT', 'the sink is shut down'));
    const sock = this.socket;
    this.socket = undefined;
    if (sock === undefined || sock.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => sock.destroy(), Math.max(0, deadlineMs - Date.now()));
      sock.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      sock.end();
    });
  }
}
