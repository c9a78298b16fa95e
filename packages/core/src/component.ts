/**
 * The one context every front-end, sink and internal component is built with: its name, its logger
 * child and its self-metrics, plus the one call through which it reports a drop. In the spirit of
 * Vector's instrumentation spec, a drop is always counted (`metrics_distributor.dropped{reason}`) and
 * its log line is rate-limited per reason, so a flood turns into one line a minute.
 */
import type { ErrorCode } from './errors.js';
import { MdError } from './errors.js';
import { RateLimitedLog, type Logger } from './logger.js';
import type { ComponentStats, StatsRegistry } from './stats.js';

/**
 * Every drop reason, by component kind. A reason is a short bounded token: it becomes a tag value, so
 * the set is closed here and a typo is a type error, not a new time series.
 */
export const DROP_REASONS = {
  'statsd-udp': ['truncated', 'internal_error', 'kernel_rcvbuf'],
  'statsd-tcp': ['max_connections', 'internal_error', 'line_too_long', 'idle_timeout', 'partial_line'],
  http: [
    'internal_error',
    'shutting_down',
    'unauthorized',
    'body_too_large',
    'overloaded',
    'client_aborted',
    'bad_signature',
    'duplicate',
    'frame_too_large',
    'bad_value',
    'bad_name',
    'unsupported_encoding',
    'bad_encoding',
  ],
  aggregator: ['non_finite', 'timestamped_type', 'max_events', 'max_contexts'],
  transform: ['blocked'],
  sink: [
    'closed',
    'queue_full',
    'shutdown',
    'shutdown_unsent',
    'invalid_value',
    'payload_too_large',
    'internal_error',
    'bad_request',
    'forbidden',
    'retry_buffer_full',
    'expired',
    'name_clash',
    'type_clash',
    'max_series',
    'unsupported',
    'bad_name',
    'rejected',
    'partial_success',
    'disk_full',
    'disk_corrupt',
  ],
  admin: ['unauthorized', 'forbidden_host', 'rate_limited', 'bad_request', 'busy', 'timeout', 'too_many_streams', 'internal_error'],
  process: [],
  workers: [],
  embedded: [],
  checkpoint: ['corrupt'],
} as const satisfies Record<string, readonly string[]>;

/** A kind of component; each has its own closed set of drop reasons. */
export type ComponentKind = keyof typeof DROP_REASONS;

/** A drop reason valid for components of kind `K`. */
export type DropReason<K extends ComponentKind = ComponentKind> = (typeof DROP_REASONS)[K][number];

/** Component names as they appear in `component:` tags and log bindings, built in this one place. */
export const ComponentNames = {
  statsdUdp: 'statsd-udp',
  statsdTcp: 'statsd-tcp',
  http: 'http',
  httpStatsd: 'http-statsd',
  aggregator: 'aggregator',
  transform: 'transform',
  process: 'process',
  workers: 'workers',
  embedded: 'embedded',
  checkpoint: 'checkpoint',
  /** `sink-<name>`, e.g. `sink-datadog`. */
  sink: (sinkName: string): string => `sink-${sinkName}`,
} as const;

/** What the log line of a drop says, besides the counted reason. */
export interface DropLog {
  /** The error code logged as `err.code`. */
  code: ErrorCode;
  /** The message; by default one naming the self-metric to watch. */
  message?: string;
  /** Extra fields for the log object (kept small: they are logged at most once a minute per reason). */
  fields?: Record<string, unknown>;
  /** Default `warn`; `error` for losses of data that was accepted (sinks); `info` for what clients do on purpose (idle connections). */
  level?: 'info' | 'warn' | 'error';
  /** The underlying error, kept as `cause`. */
  cause?: unknown;
  /** At most one line per this long for this reason; default one a minute. Fixed per reason by its first drop. */
  intervalMs?: number;
}

/** Logs about one drop reason are limited to one line per this interval. */
const DROP_LOG_INTERVAL_MS = 60_000;

/** The `{ name, logger, stats }` context of one component, with its one drop call. */
export class ComponentContext<K extends ComponentKind = ComponentKind> {
  private readonly dropLogs = new Map<string, RateLimitedLog>();

  constructor(
    /** The component's kind: which drop reasons it may report. */
    readonly kind: K,
    /** The component name, e.g. `statsd-udp` or `sink-datadog`. */
    readonly name: string,
    /** A child of the root logger carrying `component: name`. */
    readonly logger: Logger,
    /** This component's self-metrics. */
    readonly stats: ComponentStats,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Counts `n` items lost for `reason` and, when `log` is given, writes one rate-limited log line for
   * that reason (with how many lines were suppressed since the last one).
   */
  drop(reason: DropReason<K>, n = 1, log?: DropLog): void {
    this.stats.drop(reason, n);
    if (log === undefined) return;
    let limiter = this.dropLogs.get(reason);
    if (limiter === undefined) {
      limiter = new RateLimitedLog(log.intervalMs ?? DROP_LOG_INTERVAL_MS, this.now);
      this.dropLogs.set(reason, limiter);
    }
    limiter.maybe((suppressed) => {
      const err = new MdError(log.code, undefined, log.cause === undefined ? undefined : { cause: log.cause });
      const obj = { ...log.fields, err, reason, count: n, totalDropped: this.stats.dropped(reason), suppressed };
      const msg = log.message ?? `Dropped ${n} item(s) (${reason}); see metrics_distributor.dropped{component:${this.name},reason:${reason}}.`;
      if (log.level === 'error') this.logger.error(obj, msg);
      else if (log.level === 'info') this.logger.info(obj, msg);
      else this.logger.warn(obj, msg);
    });
  }
}

/** What the CLI (or an embedder) holds to build every component's context from. */
export interface ComponentRoot {
  /** The process's one root logger. */
  logger: Logger;
  /** The process's self-metrics registry. */
  stats: StatsRegistry;
}

/** Contexts already built, by root logger, registry and name: one context (one set of log limiters) per component. */
const built = new WeakMap<Logger, WeakMap<StatsRegistry, Map<string, ComponentContext>>>();

/**
 * The context of component `name` (default: the kind itself) from the root logger and registry. The
 * same root and name always give the same object, so every part of the process that reports for a
 * component (its package, the CLI, core's sink queue) shares its counters and its log rate limits.
 */
export function componentContext<K extends ComponentKind>(root: ComponentRoot, kind: K, name: string = kind): ComponentContext<K> {
  let byRegistry = built.get(root.logger);
  if (byRegistry === undefined) built.set(root.logger, (byRegistry = new WeakMap()));
  let byName = byRegistry.get(root.stats);
  if (byName === undefined) byRegistry.set(root.stats, (byName = new Map<string, ComponentContext>()));
  const known = byName.get(name);
  if (known !== undefined) {
    if (known.kind !== kind) throw new MdError('MD_ERR_CONFIG_INVALID', `component ${name} is already a ${known.kind}, not a ${kind}`);
    return known as ComponentContext<K>;
  }
  const ctx = new ComponentContext(kind, name, root.logger.child({ component: name }), root.stats.component(name));
  byName.set(name, ctx);
  return ctx;
}

/** The context of sink `sinkName`: component `sink-<sinkName>`. */
export function sinkContext(root: ComponentRoot, sinkName: string): ComponentContext<'sink'> {
  return componentContext(root, 'sink', ComponentNames.sink(sinkName));
}
