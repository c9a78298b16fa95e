/**
 * One window as plaintext lines (`name value timestamp\n`), cut into payloads of whole lines. Timers
 * are recognised by the run of series the aggregator emits for one histogram context (`<name>.max`,
 * `<name>.median`, … in its configured order, same tags and host): the batch carries no timer kind.
 * Sets are the gauges core marks `statsdType: 's'`.
 */
import { AgentSketch, type MetricBatch, type Series, type SketchSeries, type SinkDropReason } from '@metrics-distributor/core';
import { Namespaces, TIMER_STAT, TagRenderer, percentileNumber, sanitizeName } from './names.js';
import type { ResolvedOptions } from './options.js';

/** Whole lines ready to write, with what the retry policy needs to know about them. */
export interface Payload {
  /** The lines, each ending in `\n`. */
  readonly body: Buffer;
  /** Lines in `body`: what a drop counts. */
  readonly lines: number;
  /** Window start (epoch ms) of the oldest data in it, for the age limit. */
  readonly dataMs: number;
}

/** Where the encoder reports what it could not turn into lines. */
export interface EncodeLosses {
  /** `n` items of the window lost for `reason`; `sample` names one of them for the log line. */
  lose(reason: SinkDropReason, n: number, sample: string): void;
}

/** Rounds away binary noise from rate × interval (0.3 × 10 = 3.0000000000000004), so counts stay whole. */
function tidy(v: number): number {
  return Number(v.toPrecision(15));
}

/** Series encoded between two chances for the caller to yield, payload or not. */
const CHECKPOINT_SERIES = 2048;

/** One timer stat: etsy's name and the value. */
type Stat = readonly [string, number];

/** Turns windows into payloads, keeping the names of histogram runs it has worked out. */
export class LineEncoder {
  private readonly ns: Namespaces;
  private readonly tags: TagRenderer;
  /** Histogram series suffixes in the aggregator's order (`.max`, …, `.95percentile`). */
  private readonly suffixes: readonly string[];
  /** etsy's stat name of each suffix. */
  private readonly stats: readonly string[];
  private readonly countAt: number;

  constructor(private readonly o: ResolvedOptions) {
    this.ns = new Namespaces(o);
    this.tags = new TagRenderer(o.tagMode, o.hostTag);
    const pct = o.histogramPercentiles.map(percentileNumber);
    this.suffixes = [...o.histogramAggregates.map((a) => `.${a}`), ...pct.map((p) => `.${p}percentile`)];
    this.stats = [...o.histogramAggregates.map((a) => TIMER_STAT[a] ?? a), ...pct.map((p) => `upper_${p}`)];
    this.countAt = o.histogramAggregates.indexOf('count');
  }

  /**
   * The window's payloads, made one at a time as the caller pulls them (so a slow carbon holds one
   * payload of the window, not all), with a `null` every {@link CHECKPOINT_SERIES} series where the
   * caller may yield to the event loop even when nothing is being sent. Items with no line (events,
   * checks, empty names, clashes) are reported to `losses` once per reason at the end of the window;
   * the generator never throws for them.
   */
  *payloads(batch: MetricBatch, losses: EncodeLosses): Generator<Payload | null, void, undefined> {
    const max = this.o.maxPayloadBytes;
    // Summed per reason: a window of clashes must not cost a drop call (and its log object) per line.
    const lost = new Map<SinkDropReason, { n: number; sample: string }>();
    const lose = (reason: SinkDropReason, n: number, sample: string): void => {
      const had = lost.get(reason);
      if (had === undefined) lost.set(reason, { n, sample });
      else had.n += n;
    };
    let sinceCheckpoint = 0;
    const dataMs = batch.windowStartMs;
    const seen = new Set<string>();
    const windowTs = String(Math.floor(batch.windowStartMs / 1000));
    let text = '';
    let lines = 0;
    const take = (): Payload => {
      const p: Payload = { body: Buffer.from(text, 'utf8'), lines, dataMs };
      text = '';
      lines = 0;
      return p;
    };
    // Set per series below: the name's key, end (suffix and tags) and timestamp.
    let key = '';
    let end = '';
    let ts = '';
    const line = (head: string, leaf: string, value: number): void => {
      const name = `${head}${key}${leaf}${end}`;
      // Most lines carry the window's own timestamp: their name alone is the key, one string fewer each.
      const id = ts === windowTs ? name : `${name} ${ts}`;
      if (seen.has(id)) {
        lose('name_clash', 1, name);
        return;
      }
      seen.add(id);
      text += `${name} ${value} ${ts}\n`;
      lines++;
    };
    const series = batch.series;
    for (let i = 0; i < series.length; ) {
      const s = series[i]!;
      const run = this.histogramRun(series, i);
      const base = run > 0 ? s.metric.slice(0, s.metric.length - this.suffixes[0]!.length) : s.metric;
      i += run > 0 ? run : 1;
      if (!Number.isFinite(s.value)) {
        lose('invalid_value', run > 0 ? run : 1, s.metric);
        continue;
      }
      key = sanitizeName(base);
      if (key.length === 0) {
        lose('bad_name', run > 0 ? run : 1, s.metric);
        continue;
      }
      end = this.ns.suffix + this.tags.render(s.tags, s.host);
      ts = String(s.timestamp);
      if (run > 0) {
        for (const [stat, v] of this.timerStats(series, i - run)) line(this.ns.timer, `.${stat}`, v);
      } else if (s.statsdType === 's') {
        line(this.ns.set, '.count', s.value);
      } else if (s.type === 'gauge') {
        line(this.ns.gauge, '', s.value);
      } else {
        const rate = s.type === 'rate' ? s.value : tidy(s.value / s.interval);
        line(this.ns.counterRate, this.ns.rateLeaf, rate);
        if (this.o.flushCounts) line(this.ns.counterCount, this.ns.countLeaf, s.type === 'count' ? s.value : tidy(s.value * s.interval));
      }
      if (text.length >= max) yield take();
      else if (++sinceCheckpoint >= CHECKPOINT_SERIES) {
        sinceCheckpoint = 0;
        yield null;
      }
    }
    for (const sk of batch.sketches) {
      key = sanitizeName(sk.metric);
      if (key.length === 0) {
        lose('bad_name', 1, sk.metric);
        continue;
      }
      end = this.ns.suffix + this.tags.render(sk.tags, sk.host);
      ts = String(sk.timestamp);
      for (const [stat, v] of this.sketchStats(sk)) line(this.ns.timer, `.${stat}`, v);
      if (text.length >= max) yield take();
      else if (++sinceCheckpoint >= CHECKPOINT_SERIES) {
        sinceCheckpoint = 0;
        yield null;
      }
    }
    if (batch.events.length > 0) lose('unsupported', batch.events.length, `event: ${batch.events[0]!.title}`);
    if (batch.serviceChecks.length > 0) lose('unsupported', batch.serviceChecks.length, `service check: ${batch.serviceChecks[0]!.name}`);
    if (lines > 0) yield take();
    for (const [reason, { n, sample }] of lost) losses.lose(reason, n, sample);
  }

  /** Length of the histogram run starting at `i` (all its suffixes, in order, one context), else 0. */
  private histogramRun(series: readonly Series[], i: number): number {
    const n = this.suffixes.length;
    const first = series[i]!;
    if (n === 0 || i + n > series.length || !first.metric.endsWith(this.suffixes[0]!)) return 0;
    const base = first.metric.slice(0, first.metric.length - this.suffixes[0]!.length);
    if (base.length === 0) return 0;
    for (let j = 0; j < n; j++) {
      const s = series[i + j]!;
      const isCount = j === this.countAt;
      if (s.metric.length !== base.length + this.suffixes[j]!.length || !s.metric.startsWith(base) || !s.metric.endsWith(this.suffixes[j]!)) return 0;
      if (isCount ? s.type === 'gauge' : s.type !== 'gauge') return 0;
      if (s.host !== first.host || (s.tags !== first.tags && s.tags.join(',') !== first.tags.join(','))) return 0;
      if (!Number.isFinite(s.value) || s.statsdType !== undefined) return 0;
    }
    return n;
  }

  /** etsy's stats of the run at `at`: each aggregate renamed, the count as `count` and `count_ps`. */
  private timerStats(series: readonly Series[], at: number): Stat[] {
    const out: Stat[] = [];
    for (let j = 0; j < this.suffixes.length; j++) {
      const s = series[at + j]!;
      if (j === this.countAt) {
        out.push(['count', s.type === 'count' ? s.value : tidy(s.value * s.interval)]);
        out.push(['count_ps', s.type === 'rate' ? s.value : tidy(s.value / s.interval)]);
      } else {
        out.push([this.stats[j]!, s.value]);
      }
    }
    return out;
  }

  /** A distribution as a timer: exact count, sum, lower, upper, mean; median and percentiles from the sketch. */
  private sketchStats(sk: SketchSeries): Stat[] {
    const d = sk.sketch;
    const out: Stat[] = [
      ['count', d.count],
      ['count_ps', tidy(d.count / sk.interval)],
      ['lower', d.min],
      ['upper', d.max],
      ['mean', d.avg],
      ['sum', d.sum],
    ];
    if (d.count === 0) return out.slice(0, 2);
    const q = AgentSketch.fromData(d);
    out.push(['median', q.quantile(0.5)]);
    for (const p of this.o.histogramPercentiles) out.push([`upper_${percentileNumber(p)}`, q.quantile(p)]);
    return out;
  }
}
