/**
 * The admin listener: a fastify server of its own (never the log-drain listener, so a drain on a
 * public port never exposes it), reading only {@link AdminSources}. It costs the ingest path nothing:
 * once per tick it copies the registry's counters into a small ring, and everything else is computed
 * when someone asks.
 */
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { MdError, componentContext, type ComponentContext, type Logger } from '@metrics-distributor/core';
import { AdminAuth, isLoopbackHost, type AdminCredential } from './auth.js';
import { ContextsExplorer } from './contexts.js';
import { EventStreams } from './events.js';
import { RequestBucket } from './limiter.js';
import { buildAdminApp, type AdminApp } from './routes.js';
import { DEFAULT_RING_SAMPLES, RateRing } from './sampler.js';
import type { AdminSources } from './sources.js';
import { TapStreams } from './tap.js';
import { DEFAULT_FAILING_AFTER_MS, buildStatus, type StatusReport } from './status.js';

/** Options of the {@link AdminServer}; every field has a default. */
export interface AdminServerOptions {
  /** Address to bind. Default `127.0.0.1`; anything but loopback needs `credentials`. */
  host?: string;
  /** Port to bind; 0 picks an ephemeral port. Default {@link DEFAULT_ADMIN_PORT}. */
  port?: number;
  /** Accepted HTTP Basic credentials; when set, every route but `/healthz` needs one. Default none. */
  credentials?: readonly AdminCredential[];
  /** PEM certificate and key: the listener speaks HTTPS; replace them later with {@link AdminServer.setTls}. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * Without credentials, only requests whose `Host` is a loopback name (`localhost`, `127.x`, `[::1]`)
   * are answered, against DNS rebinding; these names (without port, e.g. a local proxy's) are accepted too. Default none.
   */
  allowedHosts?: readonly string[];
  /** How often counters are sampled for rates and event streams are fed, in ms. Default 1000. */
  sampleIntervalMs?: number;
  /** Rate points kept (the page's charts show this many). Default 30. */
  ringSamples?: number;
  /** Requests admitted per second on average (one second of burst); beyond it 429. `/healthz` is exempt. Default 20. */
  maxRequestsPerSecond?: number;
  /** Event streams open at once; beyond it 503 (the page then polls). Default 8. */
  maxEventStreams?: number;
  /** Tap streams (`/api/tap`) open at once; beyond it 503. Default 2. */
  maxTapStreams?: number;
  /** Longest wait for `topContexts`, in ms; beyond it 503. Default 2000. */
  contextsTimeoutMs?: number;
  /** A sink with an error since its last success turns from `retrying` to `failing` after this, in ms. Default 60000. */
  failingAfterMs?: number;
  /** A whole request must arrive within this, in ms. Default 10000. */
  requestTimeoutMs?: number;
}

/** Collaborators of the {@link AdminServer}. */
export interface AdminServerDeps {
  /** The root logger (a child with `component: admin` is made); requests are logged at debug only. */
  logger: Logger;
  /** For tests: the clock. */
  now?: () => number;
}

/** The admin port etsy statsd used for its admin interface. */
export const DEFAULT_ADMIN_PORT = 8126;
/** The component id of the admin listener's own self-metrics. */
export const ADMIN_COMPONENT = 'admin';

function int(name: string, v: number | undefined, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n < min || n > max) throw new MdError('MD_ERR_CONFIG_INVALID', `admin ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return n;
}

/** The admin listener. `start()` binds and starts sampling; `close()` ends event streams and stops. */
export class AdminServer {
  private readonly host: string;
  private readonly port: number;
  private readonly sampleIntervalMs: number;
  private readonly failingAfterMs: number;
  private readonly now: () => number;
  private readonly ring: RateRing;
  private readonly events: EventStreams;
  private readonly taps: TapStreams;
  private readonly app: AdminApp;
  /** The admin component's context: requests, and rejections by reason. */
  readonly context: ComponentContext<'admin'>;
  private readonly auth: AdminAuth;
  private readonly tls: boolean;
  private timer: NodeJS.Timeout | undefined;
  private bound: string | undefined;
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    opts: AdminServerOptions,
    private readonly sources: AdminSources,
    deps: AdminServerDeps,
  ) {
    this.host = opts.host ?? '127.0.0.1';
    this.port = int('port', opts.port, DEFAULT_ADMIN_PORT, 0, 65535);
    this.sampleIntervalMs = int('sampleIntervalMs', opts.sampleIntervalMs, 1000, 50, 3_600_000);
    this.failingAfterMs = int('failingAfterMs', opts.failingAfterMs, DEFAULT_FAILING_AFTER_MS, 0);
    const ringSamples = int('ringSamples', opts.ringSamples, DEFAULT_RING_SAMPLES, 2, 3600);
    const perSecond = int('maxRequestsPerSecond', opts.maxRequestsPerSecond, 20, 1);
    const maxStreams = int('maxEventStreams', opts.maxEventStreams, 8, 0);
    const maxTapStreams = int('maxTapStreams', opts.maxTapStreams, 2, 0);
    const contextsTimeoutMs = int('contextsTimeoutMs', opts.contextsTimeoutMs, 2000, 1);
    const requestTimeoutMs = int('requestTimeoutMs', opts.requestTimeoutMs, 10_000, 100);
    const credentials = opts.credentials ?? [];
    // Never echo a credential: only its position.
    for (const [i, c] of credentials.entries()) if (c.user === '') throw new MdError('MD_ERR_CONFIG_INVALID', `admin credential #${i + 1} needs a user`);
    this.checkCredentials(credentials);
    this.tls = opts.tls !== undefined;
    this.auth = new AdminAuth(credentials);
    this.now = deps.now ?? Date.now;
    this.context = componentContext({ logger: deps.logger, stats: sources.stats }, 'admin', ADMIN_COMPONENT);
    this.ring = new RateRing(sources.stats, ringSamples, this.now);
    this.events = new EventStreams(maxStreams, () => JSON.stringify(this.status()));
    this.taps = new TapStreams(maxTapStreams);
    this.app = buildAdminApp(
      {
        sources,
        status: () => this.status(),
        contexts: new ContextsExplorer(sources, contextsTimeoutMs, this.sampleIntervalMs, this.now),
        events: this.events,
        taps: this.taps,
        auth: this.auth,
        ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
        allowedHosts: new Set((opts.allowedHosts ?? []).map((h) => h.toLowerCase())),
        bucket: new RequestBucket(perSecond, this.now),
        ctx: this.context,
        closing: () => this.closing !== undefined,
        requestTimeoutMs,
      },
      this.context.logger,
    );
  }

  /** Throws `MD_ERR_CONFIG_INVALID` for an unusable credential set, naming only positions, never values. */
  private checkCredentials(credentials: readonly AdminCredential[]): void {
    for (const [i, c] of credentials.entries()) if (c.user === '') throw new MdError('MD_ERR_CONFIG_INVALID', `admin credential #${i + 1} needs a user`);
    if (credentials.length === 0 && !isLoopbackHost(this.host)) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `admin: refusing to listen on ${this.host} without credentials; configure --admin-auth user:pass, or listen on 127.0.0.1`);
    }
  }

  /** Replaces the accepted credentials (config reload) under the start-up rules; on error the old set stays. */
  setCredentials(credentials: readonly AdminCredential[]): void {
    this.checkCredentials(credentials);
    this.auth.replace(credentials);
  }

  /** Replaces certificate and key for new handshakes; open connections keep theirs. Throws when started without TLS. */
  setTls(pair: { cert: string | Buffer; key: string | Buffer }): void {
    if (!this.tls) throw new MdError('MD_ERR_CONFIG_INVALID', 'admin: the listener was started without TLS; turning it on needs a restart');
    (this.app.server as unknown as HttpsServer).setSecureContext({ cert: pair.cert, key: pair.key });
  }

  /** The fastify instance, for `inject()` in tests; usable before `start()`. */
  get server(): AdminApp {
    return this.app;
  }

  /** The status document as `/api/status` serves it now. */
  status(): StatusReport {
    return buildStatus(this.sources, this.ring, { nowMs: this.now(), sampleIntervalMs: this.sampleIntervalMs, failingAfterMs: this.failingAfterMs, ringPoints: this.ring.points });
  }

  /** Takes one sample and feeds the event streams; the timer calls it, tests may too. Never throws. */
  tick(): void {
    try {
      this.ring.sample();
      this.events.tick();
    } catch (err) {
      // A source that throws must not take the process down from a timer; count it, log it once a minute.
      this.context.drop('internal_error', 1, { code: 'MD_ERR_ADMIN_SOURCE', message: 'Admin sample tick failed; the status page may be stale.', cause: err, level: 'error' });
    }
  }

  /** Listens, takes the first sample and starts the tick; rejects with `MD_ERR_ADMIN_BIND` (cause kept) when it cannot bind. */
  start(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new MdError('MD_ERR_ADMIN_BIND', 'admin was closed; create a new server'));
    return (this.starting ??= this.listen());
  }

  private async listen(): Promise<void> {
    try {
      await this.app.listen({ host: this.host, port: this.port, listenTextResolver: (address) => `Admin listener at ${address} (status page, /metrics, /api/status).` });
    } catch (err) {
      this.starting = undefined;
      throw new MdError('MD_ERR_ADMIN_BIND', `admin could not listen on ${this.host}:${this.port}: ${(err as Error).message}`, { cause: err });
    }
    const addr = this.app.server.address() as AddressInfo;
    this.bound = `${this.tls ? 'https' : 'http'}://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    this.ring.sample();
    this.timer = setInterval(() => this.tick(), this.sampleIntervalMs);
    // The admin listener must never be what keeps the process alive.
    this.timer.unref();
  }

  /** Stops the tick, ends event streams, lets other requests finish and closes. Idempotent; safe before `start()`. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    if (this.starting !== undefined) await this.starting.catch(() => undefined);
    clearInterval(this.timer);
    this.events.closeAll();
    this.taps.closeAll();
    await this.app.close();
    this.bound = undefined;
  }

  /** `http://host:port` once listening; empty before start and after close. */
  addresses(): readonly string[] {
    return this.bound === undefined ? [] : [this.bound];
  }
}
