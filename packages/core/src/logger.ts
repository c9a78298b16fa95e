import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

/** The pino logger type used across packages. */
export type { Logger } from 'pino';

/** Options for {@link createRootLogger}. */
export interface RootLoggerOptions {
  /** pino level name; default `info`. */
  level?: string;
  /** Where JSON lines go; default stderr so stdout stays free for the console sink. */
  destination?: DestinationStream;
  /** Called with every child logger made from this one (and their children): lets a caller change their level later. */
  onChild?: (child: Logger) => void;
}

/**
 * The one root logger of a process. Components take `root.child({ component })`.
 * Logs go to stderr by default: stdout belongs to the console sink.
 */
export function createRootLogger(opts: RootLoggerOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: { pid: process.pid },
    redact: { paths: ['apiKey', '*.apiKey', 'password', '*.password', 'authorization', '*.authorization'], censor: '***' },
    ...(opts.onChild !== undefined ? { onChild: opts.onChild } : {}),
  };
  return pino(options, opts.destination ?? pino.destination({ fd: 2, sync: false }));
}

/** A logger that discards everything; the default for library users who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Calls `fn` at most once per `intervalMs` and counts what it suppressed, so a
 * flood of bad input turns into one log line a minute, with the number skipped.
 */
export class RateLimitedLog {
  private lastAt = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Runs `fn(suppressedSinceLast)` unless one ran within the interval. */
  maybe(fn: (suppressed: number) => void): void {
    const t = this.now();
    if (t - this.lastAt < this.intervalMs) {
      this.suppressed++;
      return;
    }
    const n = this.suppressed;
    this.suppressed = 0;
    this.lastAt = t;
    fn(n);
  }
}
