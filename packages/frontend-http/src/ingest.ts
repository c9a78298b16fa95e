/**
 * Feeds one decoded drain body into the ingest target and keeps the counts: every frame, line or
 * object is received once and then parsed, bad or dropped (`frame_too_large`); values skipped inside
 * a good line are dropped as `bad_value`/`bad_name`; lines stamped before the open window are counted
 * as late.
 */
import { RateLimitedLog, type ComponentContext, type IngestTarget } from '@metrics-distributor/core';
import { forEachRecord, type BadRecordReason, type BodyFormat, type LogRecord, type RecordVisitor } from './body.js';
import { SampleFeed } from './feed.js';
import type { BadValueReason } from './heroku-metrics.js';

/** What one body contained; the route compares `frames` with `Logplex-Msg-Count`. */
export interface IngestResult {
  /** Frames, lines or objects seen (parsed + bad + too large). */
  frames: number;
  /** Of those, the ones that parsed. */
  parsed: number;
  /** Metric samples made (a merged counter or gauge counts once per line it came from). */
  samples: number;
}

/** Named counter (on the front-end's component) of lines stamped before the open window. */
export const LATE_LINES = 'late_lines';

/** Logs about bad lines are limited to one line per this interval. */
const LOG_INTERVAL_MS = 60_000;

/** Turns bodies into samples for one target; one instance per front-end. */
export class LogIngest {
  private readonly badLog = new RateLimitedLog(LOG_INTERVAL_MS);
  private readonly feed: SampleFeed;
  private readonly onBad = (reason: BadValueReason, key: string): void => this.badValue(reason, key);

  constructor(
    private readonly target: IngestTarget,
    /** The front-end's context (`http`): its counters, its drops and its logger. */
    readonly context: ComponentContext<'http'>,
    private readonly maxLineBytes: number,
  ) {
    this.feed = new SampleFeed(target);
  }

  /** Lines received so far whose timestamp was older than the open window. */
  get lateLines(): number {
    return this.context.stats.counter(LATE_LINES);
  }

  /**
   * Splits, parses and aggregates `body`; every sample is tagged `app:<app>` when `app` is given.
   * Synchronous, so a body is always counted whole and `close()` never sees half of one.
   */
  ingest(body: Buffer, format: BodyFormat, app?: string): IngestResult {
    const result: IngestResult = { frames: 0, parsed: 0, samples: 0 };
    const { stats } = this.context;
    const windowStart = this.target.windowStartMs;
    const { feed, onBad } = this;
    feed.begin(app);
    const visitor: RecordVisitor = {
      record: (r: LogRecord) => {
        result.frames++;
        result.parsed++;
        stats.received++;
        stats.parsed++;
        // The aggregator has one open window: an older line cannot go back in time, so it joins the
        // open window and is counted; a newer or undated one simply belongs to the open window.
        if (r.timestampMs !== undefined && r.timestampMs < windowStart) {
          stats.count(LATE_LINES);
        }
        result.samples += feed.line(r, onBad);
      },
      bad: (reason: BadRecordReason, sample: string) => {
        result.frames++;
        stats.received++;
        stats.bad++;
        this.badRecord(reason, sample);
      },
      tooLarge: (bytes: number) => {
        result.frames++;
        stats.received++;
        this.context.drop('frame_too_large', 1, {
          code: 'MD_ERR_FRONTEND_LINE_TOO_LONG',
          message: 'Log line over maxFrameBytes skipped; see metrics_distributor.dropped{reason:frame_too_large}.',
          fields: { bytes, maxFrameBytes: this.maxLineBytes },
        });
      },
    };
    try {
      forEachRecord(body, format, this.maxLineBytes, visitor);
    } finally {
      feed.end();
    }
    return result;
  }

  /** A bad line is no drop (it is counted as `bad`), so it has its own rate-limited warning. */
  private badRecord(reason: BadRecordReason, sample: string): void {
    const { logger, stats } = this.context;
    if (logger.isLevelEnabled('debug')) logger.debug({ reason, line: sample }, 'Bad log line.');
    this.badLog.maybe((suppressed) => logger.warn({ reason, line: sample, suppressed, totalBad: stats.bad }, 'Bad log-drain lines skipped; see metrics_distributor.bad.'));
  }

  private badValue(reason: BadValueReason, key: string): void {
    const k = key.slice(0, 100);
    const { logger } = this.context;
    if (logger.isLevelEnabled('debug')) logger.debug({ reason, key: k }, 'Metric value skipped.');
    this.context.drop(reason, 1, {
      code: reason === 'bad_value' ? 'MD_ERR_PARSE_VALUE' : 'MD_ERR_PARSE_METRIC_NAME',
      message: `Metric values that do not parse were skipped; see metrics_distributor.dropped{reason:${reason}}.`,
      fields: { key: k },
    });
  }
}
