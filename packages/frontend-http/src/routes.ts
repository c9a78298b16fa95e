/**
 * The fastify application: `POST /logs`, `POST /statsd`, `GET /healthz`, and the gate in front of the
 * POST routes (shutdown, credentials, size, load) that answers before a byte of the body is read.
 *
 * Status codes follow logplex's retry rules (logreference §1.4): any 4xx but 429 makes logplex drop
 * the batch for good, so bad lines never cause one; 503 makes it retry.
 */
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify';
import { debugLogController, type ComponentContext, type IngestTarget, type Logger } from '@metrics-distributor/core';
import { verifyVercelSignature, type CredentialStore } from './auth.js';
import { BodyError, decodeBody, detectFormat } from './body.js';
import type { RecentIds } from './dedupe.js';
import type { LogIngest } from './ingest.js';

/** The fastify instance this package builds (logging through the shared pino logger); tests drive it with `inject()`. */
export type HttpApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, Logger>;

/** Limits and switches the routes need, already validated. */
export interface RouteLimits {
  /** Largest body as sent and after decompression; beyond it 413. */
  maxBodyBytes: number;
  /** POSTs handled at once; beyond it 503. */
  maxInflightRequests: number;
  /** When set, `x-vercel-signature` is verified. */
  vercelSecret: string | undefined;
  /** Whole request (headers and body) must arrive within this; else 408 and the connection is closed. Default {@link REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number;
  /** Headers must arrive within this (also bounds a connection that sends nothing); else 408. Default {@link HEADERS_TIMEOUT_MS}. */
  headersTimeoutMs?: number;
  /** An idle kept-alive connection is closed after this. Default {@link KEEP_ALIVE_TIMEOUT_MS}. */
  keepAliveTimeoutMs?: number;
  /** PEM certificate and key: the listener speaks HTTPS. Absent: plain HTTP. */
  tls?: TlsPair;
}

/** A PEM certificate (chain) and its private key, as read from the files. */
export interface TlsPair {
  /** PEM certificate, leaf first, then any intermediates. */
  cert: string | Buffer;
  /** PEM private key of the leaf. */
  key: string | Buffer;
}

/** Mutable lifecycle state shared with the front-end: it sets `closing`, the routes keep `inflight`. */
export interface RouteRuntime {
  /** Once true, `/healthz` and every POST answer 503. */
  closing: boolean;
  /** POST requests past the gate and not yet answered. */
  inflight: number;
  /** Called when `inflight` drops to 0 while closing. */
  onIdle: (() => void) | undefined;
}

/** Everything the routes use; built once by the front-end. */
export interface RouteContext {
  /** Limits and switches. */
  options: RouteLimits;
  /** Accepted credentials; empty means open. */
  credentials: CredentialStore;
  /** Recently accepted frame ids. */
  recent: RecentIds;
  /** Parses `/logs` bodies into the target. */
  ingest: LogIngest;
  /** Where `/statsd` bodies go; it counts their packets, bytes and lines (component `http-statsd`). */
  statsd: IngestTarget;
  /** The `http` context: its counters, and every request-level drop of both routes. */
  context: ComponentContext<'http'>;
  /** Lifecycle state shared with the front-end. */
  runtime: RouteRuntime;
}

/** Default longest time for a whole request (headers and body) to arrive; logplex itself gives up after 5 s. */
export const REQUEST_TIMEOUT_MS = 60_000;
/**
 * Default longest time for a request's headers to arrive, counted from the connection (or from the end
 * of the previous response). Headers are a few hundred bytes: a client still sending them after this
 * is trickling them on purpose (slowloris), and a connection that sends nothing goes at the same time.
 */
export const HEADERS_TIMEOUT_MS = 10_000;
/** Default idle time of a kept-alive connection; fastify's default, above the 60 s of common load balancers. */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;
/**
 * How often Node checks the two timeouts above. Its default of 30 s let a slow client hold its
 * connection up to 30 s past either limit (90 s instead of 60 s for a body).
 */
const CONNECTIONS_CHECK_INTERVAL_MS = 1000;
/** Sent with 503 so well-behaved clients back off a little before retrying. */
const RETRY_AFTER_S = '5';
/** `?app=` values accepted as the `app` tag: Heroku app names and the like, nothing unbounded. */
export const APP_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** Longest `Logplex-Frame-Id` / drain token remembered; ids are 32 hex chars, tokens a uuid. */
const MAX_ID_LENGTH = 128;

/** Per-request facts the gate establishes for the handler. */
interface RequestState {
  /** Who sent it: a credential index, `vercel` (signature pending), or `open` (no credentials configured). */
  identity: string;
  /** `app` mapped from the credential, if any. */
  app: string | undefined;
  /** Whether this request holds an `inflight` slot. */
  holdsSlot: boolean;
  /** The `Content-Type` as sent (fastify is shown a neutral one, see {@link NEUTRAL_CONTENT_TYPE}). */
  contentType: string | undefined;
}

/**
 * What fastify sees as the Content-Type of a request past the gate. fastify answers 415 by itself to a
 * type it cannot parse (`text`, an empty value, `a b`) before any handler runs, but bodies are read raw
 * whatever their type and the format is sniffed from the value as sent, so that check must not apply.
 */
const NEUTRAL_CONTENT_TYPE = 'application/octet-stream';

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** How long a connection answered 413 mid-body keeps reading (and dropping) what the client still sends. */
const LINGER_MS = 2000;

/**
 * Answers `status` to a request whose body is still arriving, then lingers: half-closes, reads and
 * drops what the client still sends for up to {@link LINGER_MS}, and closes. Closing at once with
 * unread data makes the kernel answer with a reset, which can destroy the answer before the client
 * reads it (RFC 9112 §9.6); so the answer carries no `Connection: close`, on which Node would close
 * at once, and the connection is ended here once the answer is out.
 */
function denyLingering(request: FastifyRequest, reply: FastifyReply, status: number, error: string): FastifyReply {
  const socket = request.raw.socket;
  // Injected requests (tests) have no real connection to linger on.
  if (!(socket instanceof Socket)) return deny(reply, status, error, true);
  reply.raw.once('finish', () => {
    socket.end();
    request.raw.resume();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  });
  return deny(reply, status, error, false);
}

/** Answers an error status; `close` asks Node to drop the connection instead of reading an unwanted body. */
function deny(reply: FastifyReply, status: number, error: string, close: boolean): FastifyReply {
  if (close) reply.header('connection', 'close');
  if (status === 503) reply.header('retry-after', RETRY_AFTER_S);
  return reply.code(status).send({ error });
}

/**
 * Reads a request body up to `limit` bytes. Resolves undefined as soon as the limit is passed (the rest
 * is never buffered); rejects when the client goes away first.
 */
export function readRaw(stream: Readable | undefined, limit: number): Promise<Buffer | undefined> {
  if (stream === undefined) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
      fn();
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > limit) {
        // Pausing (not destroying) keeps the socket alive for the 413 response.
        stream.pause();
        settle(() => resolve(undefined));
        return;
      }
      chunks.push(chunk);
    };
    // A body that arrived in one chunk is used as it is: Node never reuses a chunk's memory.
    const onEnd = (): void => settle(() => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total)));
    const onError = (err: Error): void => settle(() => reject(err));
    const onClose = (): void => settle(() => reject(new Error('request closed before its body was complete')));
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

/** fastify's per-request lines at `debug` (core's controller: a drain posts several times a second). */
export const DebugLogController = debugLogController(LogController, 'HTTP');

/**
 * Builds the application. Nothing listens until `listen()`; `inject()` works at once. fastify logs
 * through the shared pino logger, per-request lines at `debug` only.
 */
export function buildApp(ctx: RouteContext): HttpApp {
  const { options, credentials, recent, ingest, statsd, runtime, context } = ctx;
  const { stats, logger } = context;
  const states = new WeakMap<FastifyRequest, RequestState>();

  const requestTimeout = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS, requestTimeout);
  const serverOptions = { headersTimeout, requestTimeout, connectionsCheckingInterval: Math.min(CONNECTIONS_CHECK_INTERVAL_MS, headersTimeout) };
  const common = {
    loggerInstance: logger,
    logController: new DebugLogController(),
    requestTimeout,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? KEEP_ALIVE_TIMEOUT_MS,
  };
  // fastify types an HTTPS instance apart; the routes use nothing that differs, so one type serves both.
  const app =
    options.tls === undefined
      ? fastify({ ...common, http: serverOptions })
      : (fastify({ ...common, https: { ...serverOptions, cert: options.tls.cert, key: options.tls.key } }) as unknown as HttpApp);

  // No JSON/text parsers: every body is handed over as a stream and read raw, capped, by readRaw, so
  // the HMAC sees the exact bytes and a gzip bomb is stopped at the decompressed limit.
  app.removeAllContentTypeParsers();
  const passThrough = (_request: FastifyRequest, payload: Readable, done: (err: Error | null, body?: unknown) => void): void => done(null, payload);
  app.addContentTypeParser('*', passThrough);
  // The type the gate shows fastify (see NEUTRAL_CONTENT_TYPE). fastify caches the parser it finds
  // for a registered type, but looks the catch-all up afresh (parsing the header) for every request.
  app.addContentTypeParser(NEUTRAL_CONTENT_TYPE, passThrough);

  const release = (request: FastifyRequest): void => {
    const s = states.get(request);
    if (s === undefined || !s.holdsSlot) return;
    s.holdsSlot = false;
    runtime.inflight--;
    if (runtime.closing && runtime.inflight === 0) runtime.onIdle?.();
  };
  app.addHook('onResponse', (request, _reply, done) => {
    release(request);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    release(request);
    done();
  });

  app.setErrorHandler((err: { statusCode?: number; code?: string; message?: string }, request, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      context.drop('internal_error', 1, { code: 'MD_ERR_FRONTEND_INTERNAL', level: 'error', cause: err, fields: { reqId: request.id }, message: 'HTTP request failed.' });
    } else {
      request.log.debug({ code: err.code, statusCode: status }, 'HTTP request rejected.');
    }
    return reply.code(status).send({ error: status >= 500 ? 'internal error' : (err.code ?? 'bad request') });
  });

  // fastify's default 404 body echoes the method and URL; answer without request data.
  app.setNotFoundHandler((_request, reply) => {
    void reply.code(404).send({ error: 'not found' });
  });

  /** The gate: shutdown, credentials, declared size, load. Runs before the body is touched. */
  const check = (request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined => {
    if (runtime.closing) {
      context.drop('shutting_down');
      return deny(reply, 503, 'shutting down', true);
    }
    const state: RequestState = { identity: 'open', app: undefined, holdsSlot: false, contentType: header(request, 'content-type') };
    if (credentials.size > 0) {
      const auth = credentials.checkHeader(header(request, 'authorization'));
      if (auth.ok) {
        state.identity = String(auth.index);
        state.app = auth.app;
      } else if (options.vercelSecret !== undefined && header(request, 'x-vercel-signature') !== undefined) {
        // Vercel cannot always send Basic credentials; its body signature, checked once read, stands in.
        state.identity = 'vercel';
      } else {
        context.drop('unauthorized');
        reply.header('www-authenticate', 'Basic realm="metrics-distributor"');
        return deny(reply, 401, 'unauthorized', true);
      }
    }
    const declared = Number(header(request, 'content-length'));
    if (declared > options.maxBodyBytes) {
      context.drop('body_too_large');
      return deny(reply, 413, 'body too large', true);
    }
    if (runtime.inflight >= options.maxInflightRequests) {
      context.drop('overloaded');
      return deny(reply, 503, 'overloaded', true);
    }
    runtime.inflight++;
    state.holdsSlot = true;
    states.set(request, state);
    if (state.contentType !== undefined) request.raw.headers['content-type'] = NEUTRAL_CONTENT_TYPE;
    return undefined;
  };
  // Callback style: after answering, `done` must not be called, which ends the chain there.
  const gate = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    if (check(request, reply) === undefined) done();
  };

  /** Reads, verifies and decodes the body; answers the error itself and returns undefined when it cannot. */
  const readBody = async (request: FastifyRequest, reply: FastifyReply): Promise<{ raw: Buffer; body: Buffer } | undefined> => {
    let raw: Buffer | undefined;
    try {
      raw = await readRaw(request.body as Readable | undefined, options.maxBodyBytes);
    } catch (err) {
      // The client went away mid-body: nothing to count but the loss, and nobody to answer.
      context.drop('client_aborted');
      request.log.debug({ err }, 'HTTP body incomplete: the client went away.');
      deny(reply, 400, 'incomplete body', true);
      return undefined;
    }
    if (raw === undefined) {
      context.drop('body_too_large');
      denyLingering(request, reply, 413, 'body too large');
      return undefined;
    }
    const signature = header(request, 'x-vercel-signature');
    if (options.vercelSecret !== undefined && signature !== undefined && !verifyVercelSignature(options.vercelSecret, raw, signature)) {
      context.drop('bad_signature');
      deny(reply, 403, 'invalid_signature', false);
      return undefined;
    }
    try {
      return { raw, body: await decodeBody(raw, header(request, 'content-encoding'), options.maxBodyBytes) };
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      const [status, reason] = err.kind === 'too_large' ? ([413, 'body_too_large'] as const) : err.kind === 'unsupported_encoding' ? ([415, 'unsupported_encoding'] as const) : ([400, 'bad_encoding'] as const);
      context.drop(reason);
      request.log.debug({ reason }, err.message);
      deny(reply, status, reason, false);
      return undefined;
    }
  };

  /** The `app` tag value: the credential's, else a valid `?app=`, else none. */
  const appOf = (request: FastifyRequest, state: RequestState): string | undefined => {
    const fromQuery = (request.query as Record<string, unknown> | undefined)?.['app'];
    return state.app ?? (typeof fromQuery === 'string' && APP_RE.test(fromQuery) ? fromQuery : undefined);
  };

  const frameKey = (request: FastifyRequest, state: RequestState): string | undefined => {
    const id = header(request, 'logplex-frame-id');
    if (id === undefined || id.length === 0 || id.length > MAX_ID_LENGTH) return undefined;
    const token = (header(request, 'logplex-drain-token') ?? '').slice(0, MAX_ID_LENGTH);
    // Scoped by credential too, so one tenant cannot suppress another's frames by reusing ids.
    return `${state.identity}\u0000${token}\u0000${id}`;
  };

  app.post('/logs', { onRequest: gate }, async (request, reply) => {
    const state = states.get(request)!;
    const key = frameKey(request, state);
    if (key !== undefined && recent.has(key)) {
      // A logplex retry of a body already counted: acknowledge it so logplex stops, count it once.
      context.drop('duplicate');
      return reply.code(200).send();
    }
    const read = await readBody(request, reply);
    if (read === undefined) return reply;
    const { raw, body } = read;
    // Check again: an identical retry may have finished while this body was arriving.
    if (key !== undefined && recent.has(key)) {
      context.drop('duplicate');
      return reply.code(200).send();
    }
    stats.packets++;
    stats.bytes += raw.length;
    const format = detectFormat(state.contentType, body);
    const result = ingest.ingest(body, format, appOf(request, state));
    if (key !== undefined) recent.add(key);
    const declared = header(request, 'logplex-msg-count');
    if (format === 'logplex' && declared !== undefined && /^\d+$/.test(declared) && Number(declared) !== result.frames) {
      stats.count('msg_count_mismatch');
      request.log.debug({ declared: Number(declared), found: result.frames }, 'Logplex-Msg-Count differs from the frames found.');
    }
    return reply.code(200).send();
  });

  app.post('/statsd', { onRequest: gate }, async (request, reply) => {
    const read = await readBody(request, reply);
    if (read === undefined) return reply;
    // The target counts packets, bytes, lines and bad lines in the `http-statsd` component.
    statsd.statsd(read.body);
    return reply.code(200).send();
  });

  app.get('/healthz', async (_request, reply) => {
    if (runtime.closing) return reply.code(503).header('retry-after', RETRY_AFTER_S).send({ status: 'shutting down' });
    return reply.code(200).send({ status: 'ok' });
  });

  return app;
}
