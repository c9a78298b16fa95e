/**
 * Feeds one decoded drain body into the aggregator and keeps the counts: every frame, line or object
 * is received once and then parsed, bad or dropped (`frame_too_large`); values skipped inside a good
 * line are dropped as `bad_value`/`bad_name`; lines stamped before the open window are counted as late.
 */
import { RateLimitedLog, type Aggregator, type ComponentStats, type Logger, type Sample } from '@metrics-distributor/core';
import { forEachRecord, type BadRecordReason, type BodyFormat, type LogRecord, type RecordVisitor } from './body.js';
import { SampleFeed } from './feed.js';
import { extractLine, routeOf, type ExtractBadReason } from './heroku.js';

/** What one body contained; the route compares `frames` with `Logplex-Msg-Count`. */
export interface IngestResult {
  /** Frames, lines or objects seen (parsed + bad + too large). */
  frames: number;
  /** Of those, the ones that parsed. */
  parsed: number;
  /** Metric samples added to the aggregator. */
  samples: number;
}

/** Named counter (on the front-end's component) of lines stamped before the open window. */
export const LATE_LINES = 'late_lines';

/** Logs about bad input are limited to one line per this interval. */
const LOG_INTERVAL_MS = 60_000;

/** Turns bodies into samples for one aggregator; one instance per front-end. */
export class LogIngest {
  private readonly badLog = new RateLimitedLog(LOG_INTERVAL_MS);
  private readonly valueLog = new RateLimitedLog(LOG_INTERVAL_MS);
  private readonly largeLog = new RateLimitedLog(LOG_INTERVAL_MS);
  private readonly samples: Sample[] = [];
  private readonly feed: SampleFeed;

  constructor(
    private readonly aggregator: Aggregator,
    /** The front-end's self-metrics (`http`). */
    readonly stats: ComponentStats,
    private readonly logger: Logger,
    private readonly maxLineBytes: number,
  ) {
    this.feed = new SampleFeed(aggregator);
  }

  /** Lines received so far whose timestamp was older than the open window. */
  get lateLines(): number {
    return this.stats.counter(LATE_LINES);
  }

  /**
   * Splits, parses and aggregates `body`. `tags` (the drain's `app:`) go on every sample. Synchronous,
   * so a body is always counted whole and `close()` never sees half of one.
   */
  ingest(body: Buffer, format: BodyFormat, tags: readonly string[]): IngestResult {
    const result: IngestResult = { frames: 0, parsed: 0, samples: 0 };
    const stats = this.stats;
    const windowStart = this.aggregator.currentWindowStart;
    const onBad = (reason: ExtractBadReason, key: string): void => this.badValue(reason, key);
    const feed = this.feed;
    const fast = feed.begin(tags);
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
        if (fast) {
          const route = routeOf(r);
          if (route === 'router') {
            result.samples += feed.router(r.msg, onBad);
            return;
          }
          if (route === 'app') {
            result.samples += feed.app(r.msg, onBad);
            return;
          }
        }
        const out = this.samples;
        out.length = 0;
        extractLine(r, tags, out, onBad);
        if (out.length === 0) return;
        // What the feed merged so far goes first, so the aggregator sees the samples in line order.
        feed.flush();
        for (const s of out) this.aggregator.addSample(s);
        result.samples += out.length;
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
        stats.drop('frame_too_large');
        this.largeLog.maybe((suppressed) =>
          this.logger.warn({ bytes, maxFrameBytes: this.maxLineBytes, suppressed }, 'Log line over maxFrameBytes skipped; see metrics_distributor.dropped{reason:frame_too_large}.'),
        );
      },
    };
    try {
      forEachRecord(body, format, this.maxLineBytes, visitor);
    } finally {
      if (fast) feed.end();
    }
    return result;
  }

  private badRecord(reason: BadRecordReason, sample: string): void {
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ reason, line: sample }, 'Bad log line.');
    this.badLog.maybe((suppressed) =>
      this.logger.warn({ reason, line: sample, suppressed, totalBad: this.stats.bad }, 'Bad log-drain lines skipped; see metrics_distributor.bad.'),
    );
  }

  private badValue(reason: ExtractBadReason, key: string): void {
    this.stats.drop(reason);
    const k = key.slice(0, 100);
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ reason, key: k }, 'Metric value skipped.');
    this.valueLog.maybe((suppressed) =>
      this.logger.warn({ reason, key: k, suppressed }, `Metric values that do not parse were skipped; see metrics_distributor.dropped{reason:${reason}}.`),
    );
  }
}
