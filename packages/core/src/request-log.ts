/**
 * fastify's per-request log lines moved to `debug`, for every fastify listener of the project (the
 * HTTP front-end, the admin listener): a drain posting several times a second, or a scraper, must not
 * fill the log at `info`. Fields are the route pattern and status, never the raw URL or headers
 * (tokens travel in query strings, `Authorization` must never be logged). Core does not depend on
 * fastify: the caller passes fastify's `LogController` in and gets the subclass back.
 */

/** The logger calls the controller makes (pino's, structurally). */
export interface RequestLogger {
  debug(obj: object, msg: string): void;
  debug(msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the controller reads of a fastify request. */
export interface LoggedRequest {
  method: string;
  routeOptions: { url?: string | undefined };
  log: RequestLogger;
}

/** What the controller reads of a fastify reply. */
export interface LoggedReply {
  statusCode: number;
  elapsedTime: number;
  log: RequestLogger;
}

/** fastify's `LogController` constructor (it takes `{ disableRequestLogging }`); `any[]` is what TypeScript requires of a mixin base. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LogControllerBase = new (...args: any[]) => object;

/**
 * The debug-level log controller over `Base` (fastify's `LogController`), its messages starting with
 * `label` (`HTTP`, `Admin`). 4xx are the client's problem (debug); 5xx are logged at error.
 */
export function debugLogController<B extends LogControllerBase>(Base: B, label: string) {
  return class DebugLogController extends Base {
    // A mixin's constructor must take `...any[]`; fastify calls it with none.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    constructor(..._args: any[]) {
      super({ disableRequestLogging: false });
    }

    /** Request start, at debug. */
    incomingRequest(request: LoggedRequest): void {
      request.log.debug({ method: request.method, route: request.routeOptions.url }, `${label} request received.`);
    }

    /** Request end, at debug; an error here is one the error handler already counted and logged. */
    requestCompleted(_error: unknown, request: LoggedRequest, reply: LoggedReply): void {
      reply.log.debug({ method: request.method, route: request.routeOptions.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) }, `${label} request completed.`);
    }

    /** Unknown routes are a client's problem: debug only. */
    routeNotFound(request: LoggedRequest): void {
      request.log.debug({ method: request.method }, `${label} route not found.`);
    }

    /** 4xx at debug, 5xx at error (the error handlers normally handle both first). */
    defaultErrorLog(error: Error, _request: unknown, reply: LoggedReply): void {
      if (reply.statusCode >= 500) reply.log.error({ err: error }, `${label} request failed.`);
      else reply.log.debug({ statusCode: reply.statusCode }, error.message);
    }

    /** Requests refused while fastify closes: expected during shutdown, so debug. */
    serviceUnavailable(logger: RequestLogger): void {
      logger.debug(`${label} request refused: the server is closing.`);
    }
  };
}
