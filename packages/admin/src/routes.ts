/**
 * The fastify application of the admin listener: the gate (credentials, request rate) in front of
 * every route but `/healthz`, and the routes themselves. Every answer other than the page and
 * `/metrics` is JSON; every error is `{ error: { code, message } }` with an `MD_ERR_ADMIN_*` code.
 */
import fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify';
import { RateLimitedLog, debugLogController, type ComponentContext, type ErrorCode, type Logger } from '@metrics-distributor/core';
import { hostAllowed, type AdminAuth } from './auth.js';
import { parseContextsQuery, type ContextsExplorer } from './contexts.js';
import type { EventStreams } from './events.js';
import type { RequestBucket } from './limiter.js';
import { PAGE_CSP, PAGE_HTML } from './page.js';
import { PROMETHEUS_CONTENT_TYPE, scrape } from './prometheus.js';
import type { AdminSources } from './sources.js';
import { parseTapQuery, type TapStreams } from './tap.js';

/** The fastify instance of the admin listener; tests may drive it with `inject()`. */
export type AdminApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, Logger>;

/** Everything the routes use, built once by the server. */
export interface AdminRouteContext {
  /** What is shown. */
  sources: AdminSources;
  /** The status document as of now (the server builds it; event streams share it). */
  status: () => unknown;
  /** The cardinality explorer. */
  contexts: ContextsExplorer;
  /** Open event streams. */
  events: EventStreams;
  /** Open tap streams. */
  taps: TapStreams;
  /** Credentials check. */
  auth: AdminAuth;
  /** PEM certificate and key: the listener speaks HTTPS. Absent: plain HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Host names accepted besides loopback ones while no credentials are configured. */
  allowedHosts: ReadonlySet<string>;
  /** Request rate limit. */
  bucket: RequestBucket;
  /** The `admin` component: requests counted, rejections dropped with a reason. */
  ctx: ComponentContext<'admin'>;
  /** True once the server is closing: `/readyz` says so. */
  closing: () => boolean;
  /** Longest time for a request's headers and for a whole request, in ms. */
  requestTimeoutMs: number;
}

/** Paths served, for a 405 instead of a 404 on a known path with another method. */
export const ROUTES = ['/', '/healthz', '/readyz', '/metrics', '/api/status', '/api/contexts', '/api/events', '/api/tap'] as const;

/** Request and response logging at debug only (core's controller): a scraper every few seconds must not fill the log. */
const DebugLogController = debugLogController(LogController, 'Admin');

/** Sends `{ error: { code, message } }` with `status`. */
export function sendError(reply: FastifyReply, status: number, code: ErrorCode, message: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ error: { code, message } });
}

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Builds the application; nothing listens until the server calls `listen()`. */
export function buildAdminApp(rc: AdminRouteContext, logger: Logger): AdminApp {
  const { sources, auth, bucket, ctx } = rc;
  const stats = ctx.stats;
  const errorLog = new RateLimitedLog(60_000);
  const serverOptions = { headersTimeout: Math.min(10_000, rc.requestTimeoutMs), requestTimeout: rc.requestTimeoutMs, connectionsCheckingInterval: 1000 };
  const common = {
    loggerInstance: logger,
    logController: new DebugLogController(),
    bodyLimit: 1024,
    requestTimeout: rc.requestTimeoutMs,
    // Event streams stay open: keep-alive must not be what ends them.
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
  };
  // fastify types an HTTPS instance apart; the routes use nothing that differs, so one type serves both.
  const app =
    rc.tls === undefined
      ? fastify({ ...common, http: serverOptions })
      : (fastify({ ...common, https: { ...serverOptions, cert: rc.tls.cert, key: rc.tls.key } }) as unknown as AdminApp);

  app.setErrorHandler((err: { statusCode?: number; code?: string; message?: string }, request, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      ctx.drop('internal_error');
      errorLog.maybe((suppressed) => request.log.error({ err, suppressed }, 'Admin request failed.'));
      return sendError(reply, 500, 'MD_ERR_ADMIN_SOURCE', 'internal error');
    }
    ctx.drop('bad_request');
    return sendError(reply, status, 'MD_ERR_ADMIN_BAD_REQUEST', err.code ?? 'bad request');
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0]!;
    ctx.drop('bad_request');
    if ((ROUTES as readonly string[]).includes(path)) return sendError(reply.header('allow', 'GET, HEAD'), 405, 'MD_ERR_ADMIN_BAD_REQUEST', 'only GET and HEAD are served');
    return sendError(reply, 404, 'MD_ERR_ADMIN_NOT_FOUND', `no such route; routes: ${ROUTES.join(', ')}`);
  });

  // The gate. /healthz stays open and unmetered so a liveness probe never fails for a scraper's sake.
  app.addHook('onRequest', (request, reply, done) => {
    stats.received++;
    if (request.routeOptions.url === '/healthz') return done();
    // The rate limit comes first so it also bounds how fast credentials can be guessed.
    if (!bucket.take()) {
      ctx.drop('rate_limited');
      reply.header('retry-after', '1');
      return void sendError(reply, 429, 'MD_ERR_ADMIN_RATE_LIMITED', `more than ${bucket.perSecond} requests per second`);
    }
    if (!auth.enabled && !hostAllowed(header(request, 'host'), rc.allowedHosts)) {
      ctx.drop('forbidden_host');
      return void sendError(reply, 403, 'MD_ERR_ADMIN_FORBIDDEN_HOST', 'this listener has no credentials, so it answers only to loopback host names (or allowedHosts); use http://127.0.0.1:<port>/');
    }
    if (!auth.check(header(request, 'authorization'))) {
      ctx.drop('unauthorized');
      reply.header('www-authenticate', 'Basic realm="metrics-distributor admin", charset="UTF-8"');
      return void sendError(reply, 401, 'MD_ERR_ADMIN_UNAUTHORIZED', 'credentials required (HTTP Basic)');
    }
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (reply.statusCode < 400) stats.sent++;
    done(null, payload);
  });

  app.get('/healthz', (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok', uptimeSeconds: Math.max(0, Math.round((Date.now() - sources.startedAtMs) / 1000)) }));

  app.get('/readyz', (_request, reply) => {
    const r = sources.readiness();
    const problems = rc.closing() ? [...r.problems, 'shutting down'] : [...r.problems];
    const ready = r.ready && problems.length === 0;
    return reply.code(ready ? 200 : 503).header('cache-control', 'no-store').send({ ready, problems });
  });

  app.get('/metrics', (_request, reply) => {
    const { text } = scrape(sources, Date.now());
    return reply.header('content-type', PROMETHEUS_CONTENT_TYPE).header('cache-control', 'no-store').send(text);
  });

  app.get('/api/status', (_request, reply) => reply.header('cache-control', 'no-store').send(rc.status()));

  app.get('/api/contexts', async (request, reply) => {
    const parsed = parseContextsQuery(request.query as Record<string, unknown>);
    if (!parsed.ok) {
      ctx.drop('bad_request');
      return sendError(reply, 400, 'MD_ERR_ADMIN_BAD_REQUEST', parsed.message);
    }
    const out = await rc.contexts.query(parsed.query);
    if (!out.ok) {
      if (out.code === 'MD_ERR_ADMIN_SOURCE') {
        ctx.drop('internal_error');
        errorLog.maybe((suppressed) => request.log.error({ err: out.cause, suppressed }, 'Contexts query failed.'));
        return sendError(reply, 500, out.code, out.message);
      }
      ctx.drop(out.code === 'MD_ERR_ADMIN_BUSY' ? 'busy' : 'timeout');
      return sendError(reply.header('retry-after', '1'), 503, out.code, out.message);
    }
    return reply.header('cache-control', 'no-store').send({ query: parsed.query, clamped: parsed.clamped, elapsedMs: out.elapsedMs, cached: out.cached, report: out.report });
  });

  app.get('/api/events', (request, reply) => {
    // A HEAD would hold a stream open whose every write is discarded.
    if (request.method === 'HEAD') return reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-store').send();
    if (!rc.events.canOpen()) {
      ctx.drop('too_many_streams');
      return sendError(reply.header('retry-after', '5'), 503, 'MD_ERR_ADMIN_BUSY', `at most ${rc.events.max} event streams at once; close a page or poll /api/status`);
    }
    // Serialised before hijacking: should it throw, the error handler can still answer.
    const first = JSON.stringify(rc.status());
    reply.hijack();
    rc.events.open(request.raw, reply.raw, first);
    return reply;
  });

  app.get('/api/tap', (request, reply) => {
    const tap = sources.tap;
    if (tap === undefined) {
      ctx.drop('bad_request');
      return sendError(reply, 404, 'MD_ERR_ADMIN_NOT_FOUND', 'this server has no tap');
    }
    const parsed = parseTapQuery(request.query as Record<string, unknown>);
    if (!parsed.ok) {
      ctx.drop('bad_request');
      return sendError(reply, 400, 'MD_ERR_ADMIN_BAD_REQUEST', parsed.message);
    }
    // A HEAD would subscribe a stream whose every write is discarded.
    if (request.method === 'HEAD') return reply.header('content-type', 'application/x-ndjson; charset=utf-8').header('cache-control', 'no-store').send();
    if (!rc.taps.canOpen()) {
      ctx.drop('too_many_streams');
      return sendError(reply.header('retry-after', '5'), 503, 'MD_ERR_ADMIN_BUSY', `at most ${rc.taps.max} tap streams at once`);
    }
    reply.hijack();
    rc.taps.open(request.raw, reply.raw, tap, parsed.filter);
    return reply;
  });

  app.get('/', (_request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', PAGE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-store')
      .send(PAGE_HTML),
  );

  return app;
}
