/**
 * HTTP log drains on fastify: Heroku logplex, l2met lines, plain text, Vercel/Fly NDJSON and JSON, and
 * raw StatsD over HTTP, all aggregated by core in the same windows as the StatsD traffic.
 */
import type { AddressInfo } from 'node:net';
import type { Server as HttpsServer } from 'node:https';
import { MdError, type ComponentContext, type Frontend, type IngestTarget, type Logger } from '@metrics-distributor/core';
import { CredentialStore, isLoopbackHost, type HttpCredential } from './auth.js';
import { DEFAULT_DEDUPE_MAX_IDS, DEFAULT_DEDUPE_WINDOW_MS, RecentIds } from './dedupe.js';
import { LogIngest } from './ingest.js';
import { APP_RE, HEADERS_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS, REQUEST_TIMEOUT_MS, buildApp, type HttpApp, type RouteRuntime, type TlsPair } from './routes.js';

export type { HttpCredential } from './auth.js';
export type { HttpApp, TlsPair } from './routes.js';

/** Options of the {@link HttpFrontend}; every field has a default. */
export interface HttpFrontendOptions {
  /** Address to bind. Default `127.0.0.1`. */
  host?: string;
  /** Port to bind; 0 picks an ephemeral port. Default 8080. */
  port?: number;
  /** Accepted HTTP Basic credentials. None: the server is open, which is only allowed on loopback unless `allowUnauthenticated`. */
  credentials?: readonly HttpCredential[];
  /** Allow a non-loopback listener without credentials. Default false. */
  allowUnauthenticated?: boolean;
  /** Largest body, both as sent and after decompression; beyond it 413. Default 5 MiB. */
  maxBodyBytes?: number;
  /** Largest frame or line; longer ones are counted and skipped. Default 10 KiB (logplex's own limit). */
  maxFrameBytes?: number;
  /** Vercel drain secret: when set, `x-vercel-signature` is verified (403 on mismatch). */
  vercelSecret?: string;
  /** How long a `Logplex-Frame-Id` is remembered. Default 5 minutes. */
  dedupeWindowMs?: number;
  /** How many frame ids are remembered at most. Default 50000. */
  dedupeMaxIds?: number;
  /** POST requests handled at once; more get 503 so logplex retries. Default 64. */
  maxInflightRequests?: number;
  /** A whole request (headers and body) must arrive within this; else 408 and the connection is closed. Default 60 s. */
  requestTimeoutMs?: number;
  /** A request's headers must arrive within this, counted from the connection; a connection that sends nothing is closed then too. At most `requestTimeoutMs`. Default 10 s. */
  headersTimeoutMs?: number;
  /** An idle kept-alive connection is closed after this. Default 72 s. */
  keepAliveTimeoutMs?: number;
  /** PEM certificate and key: the listener speaks HTTPS (fastify's `https`); replace them later with {@link HttpFrontend.setTls}. */
  tls?: TlsPair;
}

/** Collaborators of the {@link HttpFrontend}, built by the CLI (or an embedder). */
export interface HttpFrontendDeps {
  /** Where `/logs` samples go: `aggregator.target(context)`. */
  target: IngestTarget;
  /**
   * Component `http`: `/logs` bodies, lines, bad lines, every request-level drop of both routes, and
   * the named counters `late_lines` and `msg_count_mismatch`. Its logger is also fastify's
   * `loggerInstance`.
   */
  context: ComponentContext<'http'>;
  /**
   * The `/statsd` route's target, built from component `http-statsd`'s context, which counts its bodies
   * and lines; the route's request-level drops count on `http` with the other route's.
   */
  statsdTarget: IngestTarget;
}

/** Default body limit: Heroku batches are about 100 KiB, so 5 MiB is ample and still bounded. */
const DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024;
/** Default frame limit: logplex's `SYSLOG_MAX_SIZE` (10240). */
const DEFAULT_MAX_FRAME_BYTES = 10 * 1024;
/** Default concurrent POSTs: bounds memory at this many bodies of `maxBodyBytes`. */
const DEFAULT_MAX_INFLIGHT_REQUESTS = 64;
/** How long `close()` waits for in-flight requests before cutting their connections. */
const DRAIN_TIMEOUT_MS = 10_000;

function positiveInt(name: string, v: number | undefined, dflt: number, min = 1): number {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n < min) throw new MdError('MD_ERR_CONFIG_INVALID', `http ${name} must be an integer ≥ ${min}, got ${String(v)}`);
  return n;
}

/**
 * The HTTP log-drain listener. Bodies are parsed synchronously once read, so everything acknowledged
 * with a 2xx is already in the aggregator; `close()` lets in-flight requests finish first.
 */
export class HttpFrontend implements Frontend {
  /** Component id, used in logs and self-metrics (the context's name, `http`). */
  readonly name: string;
  private readonly host: string;
  private readonly port: number;
  private readonly logger: Logger;
  private readonly app: HttpApp;
  private readonly runtime: RouteRuntime = { closing: false, inflight: 0, onIdle: undefined };
  private readonly ingest: LogIngest;
  private readonly credentials: CredentialStore;
  private readonly allowUnauthenticated: boolean;
  private readonly tls: boolean;
  private bound: string | undefined;
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(opts: HttpFrontendOptions, deps: HttpFrontendDeps) {
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 8080;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `http port must be an integer in [0, 65535], got ${String(opts.port)}`);
    }
    const maxBodyBytes = positiveInt('maxBodyBytes', opts.maxBodyBytes, DEFAULT_MAX_BODY_BYTES);
    const maxFrameBytes = positiveInt('maxFrameBytes', opts.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES);
    const dedupeWindowMs = positiveInt('dedupeWindowMs', opts.dedupeWindowMs, DEFAULT_DEDUPE_WINDOW_MS, 0);
    const dedupeMaxIds = positiveInt('dedupeMaxIds', opts.dedupeMaxIds, DEFAULT_DEDUPE_MAX_IDS, 0);
    const maxInflightRequests = positiveInt('maxInflightRequests', opts.maxInflightRequests, DEFAULT_MAX_INFLIGHT_REQUESTS);
    const requestTimeoutMs = positiveInt('requestTimeoutMs', opts.requestTimeoutMs, REQUEST_TIMEOUT_MS);
    const headersTimeoutMs = positiveInt('headersTimeoutMs', opts.headersTimeoutMs, Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs));
    const keepAliveTimeoutMs = positiveInt('keepAliveTimeoutMs', opts.keepAliveTimeoutMs, KEEP_ALIVE_TIMEOUT_MS);
    if (headersTimeoutMs > requestTimeoutMs) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `http headersTimeoutMs (${headersTimeoutMs}) must not exceed requestTimeoutMs (${requestTimeoutMs})`);
    }
    const credentials = opts.credentials ?? [];
    this.allowUnauthenticated = opts.allowUnauthenticated === true;
    this.checkCredentials(credentials);
    if (opts.vercelSecret !== undefined && opts.vercelSecret === '') throw new MdError('MD_ERR_CONFIG_INVALID', 'http vercelSecret must not be empty');
    this.tls = opts.tls !== undefined;
    const { target, context, statsdTarget } = deps;
    this.name = context.name;
    this.logger = context.logger;
    this.ingest = new LogIngest(target, context, maxFrameBytes);
    this.credentials = new CredentialStore(credentials);
    this.app = buildApp({
      options: { maxBodyBytes, maxInflightRequests, vercelSecret: opts.vercelSecret, requestTimeoutMs, headersTimeoutMs, keepAliveTimeoutMs, ...(opts.tls !== undefined ? { tls: opts.tls } : {}) },
      credentials: this.credentials,
      recent: new RecentIds(dedupeWindowMs, dedupeMaxIds),
      ingest: this.ingest,
      statsd: statsdTarget,
      context,
      runtime: this.runtime,
    });
  }

  /** Throws `MD_ERR_CONFIG_INVALID` for an unusable credential set, naming only positions, never values. */
  private checkCredentials(credentials: readonly HttpCredential[]): void {
    for (const [i, c] of credentials.entries()) {
      if ((c.user ?? '') === '' && (c.password ?? '') === '') throw new MdError('MD_ERR_CONFIG_INVALID', `http credential #${i + 1} needs a user or a password`);
      if (c.app !== undefined && !APP_RE.test(c.app)) throw new MdError('MD_ERR_CONFIG_INVALID', `http credential #${i + 1}: app must match ${String(APP_RE)}`);
    }
    if (credentials.length === 0 && !this.allowUnauthenticated && !isLoopbackHost(this.host)) {
      throw new MdError(
        'MD_ERR_CONFIG_INVALID',
        `http: refusing to listen on ${this.host} without credentials; configure credentials (--http-auth) or allow it explicitly (--http-allow-unauthenticated)`,
      );
    }
  }

  /**
   * Replaces the accepted credentials (config reload). The same rules as at start-up apply, so a reload
   * cannot open a public listener; on `MD_ERR_CONFIG_INVALID` the old set stays.
   */
  setCredentials(credentials: readonly HttpCredential[]): void {
    this.checkCredentials(credentials);
    this.credentials.replace(credentials);
  }

  /**
   * Replaces the certificate and key for new handshakes; connections already open keep theirs. Throws
   * `MD_ERR_CONFIG_INVALID` when the listener was started without TLS (that needs a restart), or the
   * TLS error of an unusable pair, leaving the old context in place.
   */
  setTls(pair: TlsPair): void {
    if (!this.tls) throw new MdError('MD_ERR_CONFIG_INVALID', 'http: the listener was started without TLS; turning it on needs a restart');
    (this.app.server as unknown as HttpsServer).setSecureContext({ cert: pair.cert, key: pair.key });
  }

  /** The fastify instance, for `inject()` in tests; usable before `start()`. */
  get server(): HttpApp {
    return this.app;
  }

  /** POST requests currently being handled. */
  get inflight(): number {
    return this.runtime.inflight;
  }

  /** Lines received so far whose timestamp was older than the open window. */
  get lateLines(): number {
    return this.ingest.lateLines;
  }

  /** Listens and resolves once bound; rejects with `MD_ERR_FRONTEND_BIND` (cause kept) when it cannot. */
  start(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new MdError('MD_ERR_FRONTEND_BIND', 'http was closed; create a new front-end'));
    return (this.starting ??= this.listen());
  }

  private async listen(): Promise<void> {
    try {
      await this.app.listen({ host: this.host, port: this.port, listenTextResolver: (address) => `HTTP log drains listening at ${address}.` });
    } catch (err) {
      this.starting = undefined;
      throw new MdError('MD_ERR_FRONTEND_BIND', `http could not listen on ${this.host}:${this.port}: ${(err as Error).message}`, { cause: err });
    }
    const addr = this.app.server.address() as AddressInfo;
    this.bound = `${this.tls ? 'https' : 'http'}://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  }

  /**
   * `/healthz` and new POSTs turn 503 at once; requests already past the gate finish (up to
   * {@link DRAIN_TIMEOUT_MS}); then the server closes. Idempotent; safe before `start()`.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.runtime.closing = true;
    if (this.starting !== undefined) await this.starting.catch(() => undefined);
    if (this.runtime.inflight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.runtime.onIdle = resolve;
        timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
      });
      clearTimeout(timer);
      this.runtime.onIdle = undefined;
      if (this.runtime.inflight > 0) {
        this.logger.warn({ inflight: this.runtime.inflight }, 'HTTP requests still running at shutdown; their connections are cut.');
        this.app.server.closeAllConnections();
      }
    }
    await this.app.close();
    this.bound = undefined;
  }

  /** `http://host:port` (`https://` with TLS) with the real port once listening; empty before start and after close. */
  addresses(): readonly string[] {
    return this.bound === undefined ? [] : [this.bound];
  }
}
