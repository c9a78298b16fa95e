/** The ingest target each front-end is given: StatsD bytes and object-form samples into the open window. */
import type { AddResult, IngestTarget } from './contracts.js';
import type { ErrorCode } from './errors.js';
import { RateLimitedLog, type Logger } from './logger.js';
import type { Sample, ServiceCheck, StatsdEvent } from './model.js';
import type { OpenWindow } from './open-window.js';
import type { StatsdParser } from './parser/statsd.js';
import type { SampleView, StatsdHandler } from './parser/types.js';
import type { ComponentStats } from './stats.js';
import type { TapHub } from './tap.js';

/** Feeds raw StatsD bytes from one front-end into the aggregator, counting them in that front-end's stats. */
export class StatsdReceiver implements StatsdHandler, IngestTarget {
  private readonly badLog = new RateLimitedLog(60_000);

  /** @internal Made by Aggregator.target(). */
  constructor(
    private readonly open: OpenWindow,
    private readonly parser: StatsdParser,
    /** The front-end's self-metrics. */
    readonly stats: ComponentStats,
    private readonly logger: Logger,
    /** Offered each sample while someone taps; otherwise one boolean read per line. */
    private readonly tap: TapHub,
  ) {}

  /** {@link IngestTarget.statsd}: parses one packet (several lines) from `buf[start, end)`. */
  statsd(buf: Buffer, start = 0, end = buf.length): void {
    this.stats.packets++;
    this.stats.bytes += end - start;
    this.stats.received += this.parser.parse(buf, this, start, end);
  }

  /** {@link IngestTarget.statsdLine}: parses one line `buf[start, end)` (no newline inside); bytes are counted by the caller. */
  statsdLine(buf: Buffer, start: number, end: number): void {
    if (this.parser.parseLine(buf, this, start, end)) this.stats.received++;
  }

  /** {@link IngestTarget.addSample}: adds a sample in object form to the aggregator. */
  addSample(sample: Sample, weight = 1): AddResult {
    const tap = this.tap;
    if (tap.active && --tap.countdown <= 0) tap.offerSample(sample, this.stats.component);
    return this.open.addSample(sample, weight);
  }

  /** {@link IngestTarget.windowStartMs}. */
  get windowStartMs(): number {
    return this.open.start;
  }

  /** @internal parser callback */
  sample(view: SampleView): void {
    this.stats.parsed++;
    const tap = this.tap;
    // Only the sampled lines cost a call (see TapHub.countdown).
    if (tap.active && --tap.countdown <= 0) tap.offerView(view, this.stats.component);
    this.open.addView(view);
  }

  /** @internal parser callback */
  event(event: StatsdEvent): void {
    this.stats.parsed++;
    this.open.addEvent(event);
  }

  /** @internal parser callback */
  serviceCheck(check: ServiceCheck): void {
    this.stats.parsed++;
    this.open.addServiceCheck(check);
  }

  /** @internal parser callback */
  bad(code: ErrorCode, buf: Buffer, start: number, end: number): void {
    this.stats.bad++;
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ code, line: buf.toString('utf8', start, Math.min(end, start + 200)) }, 'Bad StatsD line.');
    this.badLog.maybe((suppressed) =>
      this.logger.warn(
        { code, line: buf.toString('utf8', start, Math.min(end, start + 200)), suppressed, totalBad: this.stats.bad },
        'Bad StatsD lines skipped; see metrics_distributor.bad.',
      ),
    );
  }
}
