/** Every error code this project raises or returns, one registry so codes, docs and tests stay in sync. */
export const ErrorCodes = {
  MD_ERR_CONFIG_INVALID: 'Invalid configuration',
  MD_ERR_CONFIG_UNKNOWN_KEY: 'Unknown configuration key',
  MD_ERR_CONFIG_TLS_UNREADABLE: 'TLS certificate or key file unreadable or not PEM',
  MD_ERR_CONFIG_TLS_MISMATCH: 'TLS certificate and key do not match',
  MD_ERR_CONFIG_RELOAD: 'Config reload rejected; the running config stays',
  MD_ERR_PARSE_FORMAT: 'Invalid DogStatsD message format',
  MD_ERR_PARSE_TYPE: 'Invalid metric type',
  MD_ERR_PARSE_VALUE: 'Invalid metric value',
  MD_ERR_PARSE_RATE: 'Invalid sample rate',
  MD_ERR_PARSE_TIMESTAMP: 'Invalid timestamp',
  MD_ERR_PARSE_EVENT: 'Invalid event',
  MD_ERR_PARSE_SERVICE_CHECK: 'Invalid service check',
  MD_ERR_PARSE_METRIC_NAME: 'Metric name not usable',
  MD_ERR_AGG_MAX_CONTEXTS: 'Context limit reached',
  MD_ERR_AGG_TIMESTAMPED_TYPE: 'Timestamped sample of an unsupported type',
  MD_ERR_AGG_NON_FINITE: 'Non-finite value',
  MD_ERR_AGG_MAX_EVENTS: 'Event and service check limit of the window reached',
  MD_ERR_SINK_QUEUE_FULL: 'Sink queue full',
  MD_ERR_SINK_EXPORT: 'Sink export failed',
  MD_ERR_SINK_TIMEOUT: 'Sink timed out',
  MD_ERR_SINK_REJECTED: 'Payload rejected by the destination',
  MD_ERR_SINK_AUTH: 'Destination refused the credentials',
  MD_ERR_SINK_PAYLOAD_TOO_LARGE: 'Item too large for any payload',
  MD_ERR_SINK_RETRY_BUFFER_FULL: 'Retry buffer full',
  MD_ERR_SINK_EXPIRED: 'Data too old for the destination',
  MD_ERR_SINK_LISTEN: 'Sink could not listen',
  MD_ERR_SINK_NAME_CLASH: 'Two series map to the same exposed name',
  MD_ERR_SINK_TYPE_CLASH: 'One metric name used with two types',
  MD_ERR_SINK_MAX_SERIES: 'Series limit reached',
  MD_ERR_SINK_CONNECT: 'Connection to the destination failed or was lost',
  MD_ERR_SINK_UNSUPPORTED: 'Item the destination has no way to store',
  MD_ERR_SINK_BAD_NAME: 'Metric name empty after sanitising',
  MD_ERR_SINK_PARTIAL_SUCCESS: 'Destination accepted the request but rejected some data points',
  MD_ERR_DISK_OPEN: 'Data directory unusable',
  MD_ERR_DISK_WRITE: 'Data directory write failed',
  MD_ERR_DISK_READ: 'Data directory read failed',
  MD_ERR_DISK_CORRUPT: 'Data directory record failed its checks',
  MD_ERR_DISK_FULL: 'Data directory bound reached',
  MD_ERR_CHECKPOINT_CORRUPT: 'Open-window checkpoint failed its checks',
  MD_ERR_CHECKPOINT_WRITE: 'Open-window checkpoint could not be written',
  MD_ERR_FRONTEND_BIND: 'Front-end could not bind',
  MD_ERR_FRONTEND_TRUNCATED: 'Datagram truncated',
  MD_ERR_FRONTEND_KERNEL_DROPS: 'The kernel dropped datagrams',
  MD_ERR_FRONTEND_READER: 'The UDP batch reader was asked for but cannot run',
  MD_ERR_FRONTEND_INTERNAL: 'Input could not be processed because of a bug; it was dropped',
  MD_ERR_FRONTEND_LINE_TOO_LONG: 'Line longer than the limit',
  MD_ERR_FRONTEND_MAX_CONNECTIONS: 'Connection limit reached',
  MD_ERR_FRONTEND_IDLE_TIMEOUT: 'Connection closed for being idle',
  MD_ERR_FRONTEND_PARTIAL_LINE: 'Connection closed in the middle of a line',
  MD_ERR_ADMIN_BIND: 'Admin listener could not bind',
  MD_ERR_ADMIN_BAD_REQUEST: 'Bad admin request',
  MD_ERR_ADMIN_UNAUTHORIZED: 'Admin credentials missing or wrong',
  MD_ERR_ADMIN_FORBIDDEN_HOST: 'Host header not allowed on an open admin listener',
  MD_ERR_ADMIN_RATE_LIMITED: 'Too many admin requests',
  MD_ERR_ADMIN_BUSY: 'Admin listener busy',
  MD_ERR_ADMIN_TIMEOUT: 'Admin data source timed out',
  MD_ERR_ADMIN_SOURCE: 'Admin data source failed',
  MD_ERR_ADMIN_NOT_FOUND: 'No such admin route',
} as const;

/** A code from {@link ErrorCodes}. */
export type ErrorCode = keyof typeof ErrorCodes;

/** The one error class of the project: a typed `code`, a message, and the original `cause` kept. */
export class MdError extends Error {
  /** Stable, documented code callers match on instead of the message. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ErrorCodes[code], options);
    this.name = 'MdError';
    this.code = code;
  }
}

/** True when `err` is an {@link MdError}, optionally with the given code. */
export function isMdError(err: unknown, code?: ErrorCode): err is MdError {
  return err instanceof MdError && (code === undefined || err.code === code);
}
