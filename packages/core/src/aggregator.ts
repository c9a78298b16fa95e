import { hostname as osHostname } from 'node:os';
import type { Sink } from './contracts.js';
import { MdError, type ErrorCode } from './errors.js';
import { RateLimitedLog, silentLogger, type Logger } from './logger.js';
import type { MetricBatch, MetricType, Sample, Series, ServiceCheck, SketchData, SketchSeries, StatsdEvent } from './model.js';
import { StatsdParser } from './parser/statsd.js';
import type { SampleView, StatsdHandler } from './parser/types.js';
import { AgentSketch } from './aggregates/agent-sketch.js';
import { HistogramAgg, type HistogramState } from './aggregates/histogram.js';
import { CounterAgg, GaugeAgg, SetAgg } from './aggregates/scalar.js';
import { RawKeyIndex, type RawKeyEntry } from './raw-index.js';
import { SinkQueue, type SinkQueueOptions } from './sink-queue.js';
import { COUNTER_FIELDS, StatsRegistry, type ComponentStats } from './stats.js';

/** Histogram aggregates the agent knows. */
export type HistogramAggregate = 'max' | 'min' | 'median' | 'avg' | 'sum' | 'count';

/** The aggregates a histogram context flushes by default (agent `histogram_aggregates`). */
export const DEFAULT_HISTOGRAM_AGGREGATES: readonly HistogramAggregate[] = ['max', 'median', 'avg', 'count'];
/** The percentiles a histogram context flushes by default (agent `histogram_percentiles`). */
export const DEFAULT_HISTOGRAM_PERCENTILES: readonly number[] = [0.95];

/** Options of the {@link Aggregator}. Every duration is in milliseconds. */
export interface AggregatorOptions {
  /** Window length; windows are aligned to the wall clock. Default 10000. */
  flushIntervalMs?: number;
  /** Host put on series that carry no `host:` tag. Default: the OS hostname. */
  hostname?: string;
  /** Counters (and histogram `.count`) flush as a per-second `rate` (agent default) or a `count`. */
  countersAs?: 'rate' | 'count';
  /** Default `max, median, avg, count`. */
  histogramAggregates?: readonly HistogramAggregate[];
  /** Default `[0.95]`. */
  histogramPercentiles?: readonly number[];
  /** Histogram samples kept exactly per context per window before switching to a sketch. Default 1000. */
  histogramExactSamples?: number;
  /** An idle counter reports 0 for this long after its last sample. Default 300000. */
  counterExpiryMs?: number;
  /** Live contexts at most; samples for new contexts beyond it are dropped and counted. Default 200000. */
  maxContexts?: number;
  /** Events plus service checks kept per window at most. Default 10000. */
  maxEventsPerWindow?: number;
  /** Etsy-style gauge deltas (`+4|g`). Default false, as in the agent. */
  gaugeDeltas?: boolean;
  /** Tags added to every series, sketch, event and service check. */
  globalTags?: readonly string[];
  /** Emit `metrics_distributor.*` self-metrics each window. Default true. */
  selfMetrics?: boolean;
  /** Per-sink queue settings. */
  sinkQueue?: SinkQueueOptions;
  /** Clock, injectable for tests. Default `Date.now`. */
  now?: () => number;
  /** Logger; the aggregator takes `child({ component: 'aggregator' })`. */
  logger?: Logger;
  /** Shared self-metrics registry; one is created when absent. */
  stats?: StatsRegistry;
}

/** One context's aggregate for one window, in a structured-cloneable form (see {@link Aggregator.drainState}). */
export interface ContextState {
  type: MetricType;
  name: string;
  host: string;
  /** Already normalised: sorted, de-duplicated, `host:` removed, global tags added. */
  tags: readonly string[];
  counter?: number;
  gauge?: { value: number; updatedAtMs: number };
  set?: string[];
  histogram?: HistogramState;
  sketch?: SketchData;
}

/** A partial window from one aggregator, to be merged into another with {@link Aggregator.mergeState}. */
export interface WindowState {
  /** Window start (epoch ms) it was collected for. */
  windowStartMs: number;
  contexts: ContextState[];
  timestamped: Series[];
  events: StatsdEvent[];
  serviceChecks: ServiceCheck[];
}

/** Per-context kind, resolved once when the context is created. */
const enum Kind {
  Counter,
  Gauge,
  Set,
  Histogram,
  Distribution,
}

function kindOf(type: MetricType): Kind {
  switch (type) {
    case 'c':
      return Kind.Counter;
    case 'g':
      return Kind.Gauge;
    case 's':
      return Kind.Set;
    case 'h':
    case 'ms':
      return Kind.Histogram;
    case 'd':
      return Kind.Distribution;
  }
}

/**
 * One context's aggregates for one window. Kept apart from the Context so a closed window can be
 * turned into series a chunk at a time while the same contexts already collect the next window.
 */
class Win {
  counter: CounterAgg | undefined;
  gauge: GaugeAgg | undefined;
  set: SetAgg | undefined;
  hist: HistogramAgg | undefined;
  sketch: AgentSketch | undefined;

  constructor(readonly ctx: Context) {}
}

/** What a window close takes from the aggregator at the boundary, before its series are built. */
interface TakenWindow {
  start: number;
  wins: Win[];
  timestamped: Series[];
  events: StatsdEvent[];
  serviceChecks: ServiceCheck[];
}

/** Contexts handled between two yields to the event loop while a window's series are built. */
const FLUSH_CHUNK = 2000;

/** One (name, host, tag set, type), alive across windows while it gets samples. */
class Context {
  /** Window (start ms) of `win`; -1 before the first sample. */
  windowStart = -1;
  lastSeenMs = 0;
  /** Aggregates of the window `windowStart`. */
  win: Win | undefined;
  /** Last gauge value of any window while the context lives: Etsy deltas build on it. */
  lastGauge: number | undefined;
  /** Object-form keys that resolve to this context, removed with it; created on first use. */
  aliases: string[] | undefined;
  /** Byte-form keys (see RawKeyIndex) that resolve to this context; created on first use. */
  rawEntries: RawKeyEntry<Context>[] | undefined;

  constructor(
    readonly key: string,
    readonly kind: Kind,
    readonly type: MetricType,
    readonly name: string,
    readonly host: string,
    readonly tags: readonly string[],
  ) {}
}

/** A raw alias map can be poisoned by clients sending tags in many orders; cap aliases per context. */
const MAX_ALIASES = 4;

/** Splits tags into sorted, de-duplicated tags and the `host:` override, removing reserved ones. */
export function normalizeTags(tags: readonly string[], globalTags: readonly string[] = []): { tags: string[]; host: string | undefined } {
  let host: string | undefined;
  const out = new Set<string>();
  for (const list of [tags, globalTags]) {
    for (const tag of list) {
      if (tag.startsWith('host:')) {
        host = tag.slice(5);
        continue;
      }
      if (tag.startsWith('dd.internal.entity_id:') || tag.startsWith('dd.internal.card:') || tag.startsWith('dd.internal.jmx_check_name:')) continue;
      if (tag.length > 0) out.add(tag);
    }
  }
  return { tags: [...out].sort(), host };
}

/** Window start (ms) for time `ms`, aligned to the wall clock. */
export function alignWindow(ms: number, intervalMs: number): number {
  return ms - (ms % intervalMs);
}

/**
 * The windowed aggregator: DogStatsD agent semantics, one open window at a time, closed windows handed to
 * every sink's bounded queue without waiting. Also the in-process API for services that embed it.
 */
export class Aggregator {
  readonly flushIntervalMs: number;
  readonly hostname: string;
  private readonly opts: Required<Omit<AggregatorOptions, 'logger' | 'stats' | 'now' | 'sinkQueue' | 'hostname' | 'flushIntervalMs'>>;
  private readonly now: () => number;
  private readonly logger: Logger;
  /** Children for receivers and sink queues come from the root so `component` is bound once. */
  private readonly rootLogger: Logger;
  /** Self-metrics of every component in this process. */
  readonly stats: StatsRegistry;
  private readonly selfStats: ComponentStats;
  private readonly contexts = new Map<string, Context>();
  private readonly aliases = new Map<string, Context>();
  private readonly rawIndex = new RawKeyIndex<Context>();
  private active: Win[] = [];
  /** Batches are built one after another, so a slow build never overlaps the next close. */
  private building: Promise<void> = Promise.resolve();
  private timestamped: Series[] = [];
  private events: StatsdEvent[] = [];
  private serviceChecks: ServiceCheck[] = [];
  private windowStart: number;
  private readonly sinks: SinkQueue[] = [];
  private readonly sinkQueueOpts: SinkQueueOptions;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastFlushMs = 0;
  private readonly reported = new Map<string, number>();
  private readonly dropLog = new RateLimitedLog(60_000);
  private readonly parser: StatsdParser;

  constructor(options: AggregatorOptions = {}) {
    this.flushIntervalMs = options.flushIntervalMs ?? 10_000;
    if (!Number.isInteger(this.flushIntervalMs) || this.flushIntervalMs < 1) {
      throw new MdError('MD_ERR_CONFIG_INVALID', `flushIntervalMs must be a positive integer, got ${String(options.flushIntervalMs)}`);
    }
    this.hostname = options.hostname ?? osHostname();
    const percentiles = options.histogramPercentiles ?? DEFAULT_HISTOGRAM_PERCENTILES;
    for (const p of percentiles) {
      if (!(p > 0 && p <= 1)) throw new MdError('MD_ERR_CONFIG_INVALID', `histogram percentile must be in (0, 1], got ${p}`);
    }
    this.opts = {
      countersAs: options.countersAs ?? 'rate',
      histogramAggregates: options.histogramAggregates ?? DEFAULT_HISTOGRAM_AGGREGATES,
      histogramPercentiles: percentiles,
      histogramExactSamples: options.histogramExactSamples ?? 1000,
      counterExpiryMs: options.counterExpiryMs ?? 300_000,
      maxContexts: options.maxContexts ?? 200_000,
      maxEventsPerWindow: options.maxEventsPerWindow ?? 10_000,
      gaugeDeltas: options.gaugeDeltas ?? false,
      globalTags: options.globalTags ?? [],
      selfMetrics: options.selfMetrics ?? true,
    };
    this.now = options.now ?? Date.now;
    this.rootLogger = options.logger ?? silentLogger();
    this.logger = this.rootLogger.child({ component: 'aggregator' });
    this.stats = options.stats ?? new StatsRegistry();
    this.selfStats = this.stats.component('aggregator');
    this.sinkQueueOpts = options.sinkQueue ?? {};
    this.windowStart = alignWindow(this.now(), this.flushIntervalMs);
    this.parser = new StatsdParser({ gaugeDeltas: this.opts.gaugeDeltas });
  }

  // ---------------------------------------------------------------- sinks and lifecycle

  /** Attaches a sink behind its own bounded queue. */
  addSink(sink: Sink, queueOptions?: SinkQueueOptions): void {
    const stats = this.stats.component(`sink-${sink.name}`);
    this.sinks.push(new SinkQueue(sink, stats, this.rootLogger.child({ component: `sink-${sink.name}` }), { ...this.sinkQueueOpts, ...queueOptions }));
  }

  /**
   * Starts the wall-clock-aligned flush timer. Without it, call {@link closeWindow} yourself.
   * `beforeClose(windowStartMs)` runs at each boundary before the window closes, e.g. to wait for
   * partial windows from worker processes.
   */
  start(opts: { beforeClose?: (windowStartMs: number) => Promise<void> } = {}): void {
    if (this.timer !== undefined || this.closed) return;
    this.beforeClose = opts.beforeClose;
    this.windowStart = alignWindow(this.now(), this.flushIntervalMs);
    this.schedule();
  }
  private beforeClose: ((windowStartMs: number) => Promise<void>) | undefined;

  private schedule(): void {
    const delay = Math.max(0, this.windowStart + this.flushIntervalMs - this.now());
    this.timer = setTimeout(() => {
      const close = () => {
        this.timer = undefined;
        // close() may have flushed the window while we waited.
        if (this.closed) return;
        void this.closeWindowAsync();
        this.schedule();
      };
      if (this.beforeClose === undefined) return close();
      this.beforeClose(this.windowStart).then(close, (err: unknown) => {
        this.logger.error({ err }, 'beforeClose failed; closing the window anyway.');
        close();
      });
    }, delay);
  }

  /**
   * Closes the open window: builds its batch, hands it to every sink queue and opens the next window.
   * Never waits for a sink. Returns the batch (tests and embedders use it).
   */
  closeWindow(): MetricBatch {
    const started = performance.now();
    const taken = this.takeWindow();
    const { batch, steps } = this.buildBatch(taken);
    for (let r = steps.next(); r.done !== true; r = steps.next());
    this.deliver(batch, started);
    return batch;
  }

  /**
   * Closes the open window like {@link closeWindow}, but builds its series a chunk of contexts at a
   * time, yielding to the event loop in between, so a window with hundreds of thousands of contexts
   * never stalls ingestion. The next window is open from the first moment. Resolves with the batch.
   */
  closeWindowAsync(): Promise<MetricBatch> {
    const taken = this.takeWindow();
    const done = this.building.then(async () => {
      const started = performance.now();
      const { batch, steps } = this.buildBatch(taken);
      for (let r = steps.next(); r.done !== true; r = steps.next()) await new Promise<void>((resolve) => setImmediate(resolve));
      this.deliver(batch, started);
      return batch;
    });
    this.building = done.then(
      () => undefined,
      (err: unknown) => this.logger.error({ err }, 'Building a window failed; it is lost.'),
    );
    return done;
  }

  private deliver(batch: MetricBatch, started: number): void {
    for (const q of this.sinks) q.push(batch);
    this.lastFlushMs = performance.now() - started;
  }

  /** Swaps out the open window's aggregates at the boundary and opens the next window. */
  private takeWindow(): TakenWindow {
    const start = this.windowStart;
    // Self-metrics go into the closing window, so record them before it is taken.
    if (this.opts.selfMetrics) this.recordSelfMetrics();
    const taken: TakenWindow = { start, wins: this.active, timestamped: this.timestamped, events: this.events, serviceChecks: this.serviceChecks };
    this.active = [];
    this.timestamped = [];
    this.events = [];
    this.serviceChecks = [];
    this.windowStart = Math.max(start + this.flushIntervalMs, alignWindow(this.now(), this.flushIntervalMs));
    return taken;
  }

  /**
   * Stops the timer, flushes the open (partial) window, then gives every sink until `deadlineMs`
   * (epoch ms) to deliver. Idempotent.
   */
  async close(deadlineMs = Date.now() + 10_000): Promise<MetricBatch | undefined> {
    if (this.closed) return undefined;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.building;
    const batch = this.closeWindow();
    await Promise.all(this.sinks.map((q) => q.shutdown(deadlineMs)));
    return batch;
  }

  /**
   * Takes the open window as a partial-window state and opens the next one, without producing series:
   * a worker's aggregator does this and its parent merges the states with {@link mergeState}. Idle
   * contexts are forgotten here, since zero-fill and expiry are the merging side's job.
   */
  drainState(): WindowState {
    const start = this.windowStart;
    if (this.opts.selfMetrics) this.recordSelfMetrics();
    const contexts: ContextState[] = [];
    for (const win of this.active) {
      const ctx = win.ctx;
      const cs: ContextState = { type: ctx.type, name: ctx.name, host: ctx.host, tags: ctx.tags };
      if (win.counter !== undefined) cs.counter = win.counter.sum;
      if (win.gauge !== undefined) cs.gauge = { value: win.gauge.value, updatedAtMs: win.gauge.updatedAtMs };
      if (win.set !== undefined) cs.set = [...win.set.members];
      if (win.hist !== undefined) cs.histogram = win.hist.toState();
      if (win.sketch !== undefined) cs.sketch = win.sketch.toData();
      contexts.push(cs);
      ctx.win = undefined;
    }
    this.active = [];
    for (const ctx of this.contexts.values()) if (ctx.windowStart !== start) this.forget(ctx);
    const state: WindowState = { windowStartMs: start, contexts, timestamped: this.timestamped, events: this.events, serviceChecks: this.serviceChecks };
    this.timestamped = [];
    this.events = [];
    this.serviceChecks = [];
    this.windowStart = Math.max(start + this.flushIntervalMs, alignWindow(this.now(), this.flushIntervalMs));
    return state;
  }

  /**
   * Merges a partial window from another aggregator into the open window, with every aggregate's own
   * merge: counters add, gauges keep the latest update, sets unite, histograms and sketches merge.
   */
  mergeState(state: WindowState): void {
    for (const cs of state.contexts) {
      const key = `${cs.type}\u0000${cs.name}\u0000${cs.host}\u0000${cs.tags.join(',')}`;
      let ctx = this.contexts.get(key);
      if (ctx === undefined) {
        if (this.contexts.size >= this.opts.maxContexts) {
          this.dropSample('max_contexts', cs.name);
          continue;
        }
        ctx = new Context(key, kindOf(cs.type), cs.type, cs.name, cs.host, cs.tags);
        this.contexts.set(key, ctx);
      }
      const win = this.touch(ctx);
      if (cs.counter !== undefined) (win.counter ??= new CounterAgg()).sum += cs.counter;
      if (cs.gauge !== undefined) {
        const g = new GaugeAgg();
        g.set(cs.gauge.value, cs.gauge.updatedAtMs);
        (win.gauge ??= new GaugeAgg()).merge(g);
        ctx.lastGauge = win.gauge.value;
      }
      if (cs.set !== undefined) {
        const set = (win.set ??= new SetAgg());
        for (const m of cs.set) set.add(m);
      }
      if (cs.histogram !== undefined) {
        const h = HistogramAgg.fromState(cs.histogram, this.opts.histogramExactSamples);
        if (win.hist === undefined) win.hist = h;
        else win.hist.merge(h);
      }
      if (cs.sketch !== undefined) (win.sketch ??= new AgentSketch()).merge(AgentSketch.fromData(cs.sketch));
    }
    for (const s of state.timestamped) this.timestamped.push(s);
    for (const e of state.events) this.events.push(e);
    for (const c of state.serviceChecks) this.serviceChecks.push(c);
  }

  private forget(ctx: Context): void {
    this.contexts.delete(ctx.key);
    if (ctx.aliases !== undefined) for (const a of ctx.aliases) this.aliases.delete(a);
    if (ctx.rawEntries !== undefined) for (const e of ctx.rawEntries) this.rawIndex.delete(e);
  }

  /** Number of live contexts (idle counters included). */
  get contextCount(): number {
    return this.contexts.size;
  }

  /** Start (epoch ms) of the window currently open. */
  get currentWindowStart(): number {
    return this.windowStart;
  }

  // ---------------------------------------------------------------- ingestion

  /**
   * A parser handler bound to one front-end's stats: feed it raw StatsD bytes with `packet()` or `line()`.
   * Front-ends keep one and call it for every datagram or line.
   */
  statsdReceiver(component: string): StatsdReceiver {
    return new StatsdReceiver(this, this.parser, this.stats.component(component), this.rootLogger.child({ component }));
  }

  /** Parses raw StatsD/DogStatsD bytes (one or more lines) and aggregates them, counted as `embedded`. */
  ingestStatsd(buf: Buffer): void {
    (this.embedded ??= this.statsdReceiver('embedded')).packet(buf);
  }
  private embedded: StatsdReceiver | undefined;

  /** Adds a counter increment (`value` defaults to 1). */
  increment(name: string, value = 1, tags?: readonly string[], sampleRate = 1): void {
    this.addSample({ name, type: 'c', value, tags, sampleRate });
  }

  /** Sets a gauge. */
  gauge(name: string, value: number, tags?: readonly string[]): void {
    this.addSample({ name, type: 'g', value, tags });
  }

  /** Records a histogram sample (`h`). */
  histogram(name: string, value: number, tags?: readonly string[], sampleRate = 1): void {
    this.addSample({ name, type: 'h', value, tags, sampleRate });
  }

  /** Records a timer sample in milliseconds (`ms`, aggregated as a histogram). */
  timing(name: string, valueMs: number, tags?: readonly string[], sampleRate = 1): void {
    this.addSample({ name, type: 'ms', value: valueMs, tags, sampleRate });
  }

  /** Records a distribution sample (`d`), kept as an agent-compatible sketch. */
  distribution(name: string, value: number, tags?: readonly string[], sampleRate = 1): void {
    this.addSample({ name, type: 'd', value, tags, sampleRate });
  }

  /** Adds a member to a set (`s`); the window reports the number of distinct members. */
  set(name: string, member: string | number, tags?: readonly string[]): void {
    this.addSample({ name, type: 's', value: 0, setMember: String(member), tags });
  }

  /** Adds one sample in object form (log-drain extraction and the embedding API use this). */
  addSample(sample: Sample): void {
    const tags = sample.tags ?? [];
    if (sample.timestampS !== undefined && sample.timestampS > 0) {
      this.addTimestamped(sample.name, sample.type, sample.value, tags, sample.timestampS, sample.host);
      return;
    }
    if (sample.type !== 's' && !Number.isFinite(sample.value)) {
      this.dropSample('non_finite', sample.name);
      return;
    }
    const rawKey = `\u0001${sample.type}\u0000${sample.name}\u0000${sample.host ?? ''}\u0000${tags.join(',')}`;
    let ctx = this.aliases.get(rawKey);
    if (ctx === undefined) {
      ctx = this.resolve(sample.type, sample.name, tags, sample.host);
      if (ctx === undefined) return;
      if (ctx.aliases === undefined || ctx.aliases.length < MAX_ALIASES) {
        (ctx.aliases ??= []).push(rawKey);
        this.aliases.set(rawKey, ctx);
      }
    }
    const win = this.touch(ctx);
    if (ctx.kind === Kind.Set) {
      (win.set ??= new SetAgg()).add(sample.setMember ?? String(sample.value));
    } else {
      this.addValue(ctx, win, sample.value, sample.sampleRate ?? 1, sample.gaugeDelta ?? 0);
    }
  }

  /** @internal Called by {@link StatsdReceiver} for each parsed metric line. */
  addView(view: SampleView): void {
    const buf = view.buf;
    if (view.timestampS > 0) {
      if (view.type === 's') {
        this.dropSample('timestamped_type', buf.toString('utf8', view.nameStart, view.nameEnd));
        return;
      }
      const name = buf.toString('utf8', view.nameStart, view.nameEnd);
      const tags = view.tagsStart >= 0 ? buf.toString('utf8', view.tagsStart, view.tagsEnd).split(',') : [];
      for (let i = 0; i < view.valueCount; i++) this.addTimestamped(name, view.type, view.values[i]!, tags, view.timestampS, undefined);
      return;
    }
    if (view.type !== 's' && !this.hasFiniteValue(view)) return;
    const { nameStart, nameEnd, tagsStart, tagsEnd } = view;
    // 'ms' and 'h' differ in their first byte, so one byte identifies the type.
    const typeCode = view.type.charCodeAt(0);
    const hash = this.rawIndex.hash(typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd);
    let ctx = this.rawIndex.get(hash, typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd);
    if (ctx === undefined) {
      const name = buf.toString('utf8', nameStart, nameEnd);
      const tags = tagsStart >= 0 ? buf.toString('utf8', tagsStart, tagsEnd).split(',') : [];
      ctx = this.resolve(view.type, name, tags, undefined);
      if (ctx === undefined) return;
      // Sized exactly: an empty array grows to 17 slots on its first push, per context.
      if (ctx.rawEntries === undefined) ctx.rawEntries = [this.rawIndex.add(hash, typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd, ctx)];
      else if (ctx.rawEntries.length < MAX_ALIASES) ctx.rawEntries.push(this.rawIndex.add(hash, typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd, ctx));
    }
    const win = this.touch(ctx);
    if (ctx.kind === Kind.Set) {
      (win.set ??= new SetAgg()).add(buf.toString('latin1', view.setStart, view.setEnd));
      return;
    }
    for (let i = 0; i < view.valueCount; i++) {
      const v = view.values[i]!;
      // Already counted by hasFiniteValue.
      if (Number.isFinite(v)) this.addValue(ctx, win, v, view.sampleRate, view.gaugeDelta);
    }
  }

  /** Counts non-finite values as dropped; false when none is left, so no context is created for them. */
  private hasFiniteValue(view: SampleView): boolean {
    let finite = 0;
    for (let i = 0; i < view.valueCount; i++) {
      if (Number.isFinite(view.values[i])) finite++;
      else this.dropSample('non_finite', '(statsd)');
    }
    return finite > 0;
  }

  /** @internal Called by {@link StatsdReceiver} for each event. */
  addEvent(event: StatsdEvent): void {
    if (this.enrich(event, event.title)) this.events.push(event);
  }

  /** @internal Called by {@link StatsdReceiver} for each service check. */
  addServiceCheck(check: ServiceCheck): void {
    if (this.enrich(check, check.name)) this.serviceChecks.push(check);
  }

  /** Applies the per-window cap, then the agent's host, tag and timestamp rules shared by events and checks. */
  private enrich(item: StatsdEvent | ServiceCheck, name: string): boolean {
    if (this.events.length + this.serviceChecks.length >= this.opts.maxEventsPerWindow) {
      this.dropSample('max_events', name);
      return false;
    }
    const { tags, host } = normalizeTags(item.tags, this.opts.globalTags);
    item.tags = tags;
    item.host = item.host ?? host ?? this.hostname;
    if (item.timestampS === 0) item.timestampS = Math.floor(this.now() / 1000);
    return true;
  }

  private resolve(type: MetricType, name: string, rawTags: readonly string[], hostOverride: string | undefined): Context | undefined {
    const { tags, host } = normalizeTags(rawTags, this.opts.globalTags);
    const finalHost = hostOverride ?? host ?? this.hostname;
    const key = `${type}\u0000${name}\u0000${finalHost}\u0000${tags.join(',')}`;
    let ctx = this.contexts.get(key);
    if (ctx === undefined) {
      // Self-metrics are exempt (a small, bounded set): a table full of user contexts must not hide
      // the very counters that report the drops, `dropped{reason:max_contexts}` first of all.
      if (this.contexts.size >= this.opts.maxContexts && !this.recordingSelf) {
        this.dropSample('max_contexts', name);
        return undefined;
      }
      ctx = new Context(key, kindOf(type), type, name, finalHost, tags);
      this.contexts.set(key, ctx);
    }
    return ctx;
  }

  /** The context's aggregates for the open window, created on its first sample of the window. */
  private touch(ctx: Context): Win {
    ctx.lastSeenMs = this.windowStart;
    if (ctx.windowStart === this.windowStart) return ctx.win!;
    ctx.windowStart = this.windowStart;
    const win = new Win(ctx);
    ctx.win = win;
    this.active.push(win);
    return win;
  }

  private addValue(ctx: Context, win: Win, v: number, rate: number, delta: 0 | 1 | -1): void {
    const r = rate > 0 && rate <= 1 ? rate : 1;
    switch (ctx.kind) {
      case Kind.Counter:
        (win.counter ??= new CounterAgg()).add(v, r);
        return;
      case Kind.Gauge:
        // Etsy semantics: a signed value adjusts the gauge only when one exists, else it sets it.
        ctx.lastGauge = delta !== 0 && ctx.lastGauge !== undefined ? ctx.lastGauge + v : v;
        (win.gauge ??= new GaugeAgg()).set(ctx.lastGauge, this.now());
        return;
      case Kind.Histogram:
        (win.hist ??= new HistogramAgg(this.opts.histogramExactSamples)).add(v, r);
        return;
      case Kind.Distribution:
        (win.sketch ??= new AgentSketch()).insert(v, AgentSketch.weightForRate(r));
        return;
      case Kind.Set:
        return;
    }
  }

  private addTimestamped(name: string, type: MetricType, value: number, rawTags: readonly string[], ts: number, hostOverride: string | undefined): void {
    if (type !== 'g' && type !== 'c') {
      this.dropSample('timestamped_type', name);
      return;
    }
    if (!Number.isFinite(value)) {
      this.dropSample('non_finite', name);
      return;
    }
    const { tags, host } = normalizeTags(rawTags, this.opts.globalTags);
    const interval = this.flushIntervalMs / 1000;
    const asCount = this.opts.countersAs === 'count';
    this.timestamped.push({
      metric: name,
      type: type === 'g' ? 'gauge' : asCount ? 'count' : 'rate',
      timestamp: ts,
      // The agent's no-aggregation path ignores the sample rate and divides by the interval.
      value: type === 'g' || asCount ? value : value / interval,
      interval,
      tags,
      host: hostOverride ?? host ?? this.hostname,
    });
  }

  private dropSample(reason: string, name: string): void {
    this.selfStats.drop(reason);
    this.dropLog.maybe((suppressed) =>
      this.logger.warn({ reason, metric: name.slice(0, 200), suppressed }, 'Dropped samples; see metrics_distributor.dropped.'),
    );
  }

  // ---------------------------------------------------------------- flushing

  /**
   * Turns a taken window into its batch. The returned generator does the work and yields every
   * FLUSH_CHUNK contexts; the batch is complete once it is exhausted.
   */
  private buildBatch(taken: TakenWindow): { batch: MetricBatch; steps: Generator<void, void, undefined> } {
    const series: Series[] = taken.timestamped;
    const sketches: SketchSeries[] = [];
    const batch: MetricBatch = {
      windowStartMs: taken.start,
      intervalMs: this.flushIntervalMs,
      series,
      sketches,
      events: taken.events,
      serviceChecks: taken.serviceChecks,
    };
    return { batch, steps: this.buildSteps(taken, series, sketches) };
  }

  private *buildSteps(taken: TakenWindow, series: Series[], sketches: SketchSeries[]): Generator<void, void, undefined> {
    const start = taken.start;
    const ts = Math.floor(start / 1000);
    const interval = this.flushIntervalMs / 1000;
    const countType = this.opts.countersAs;
    let n = 0;
    for (const win of taken.wins) {
      if (++n % FLUSH_CHUNK === 0) yield;
      const ctx = win.ctx;
      switch (ctx.kind) {
        case Kind.Counter:
          if (win.counter !== undefined) {
            const sum = win.counter.sum;
            series.push(this.point(ctx, ctx.name, countType, ts, countType === 'rate' ? sum / interval : sum));
          }
          break;
        case Kind.Gauge:
          if (win.gauge !== undefined) series.push(this.point(ctx, ctx.name, 'gauge', ts, win.gauge.value));
          break;
        case Kind.Set:
          if (win.set !== undefined) series.push(this.point(ctx, ctx.name, 'gauge', ts, win.set.size));
          break;
        case Kind.Histogram:
          if (win.hist !== undefined) this.histogramSeries(ctx, win.hist, ts, series);
          break;
        case Kind.Distribution:
          if (win.sketch !== undefined && !win.sketch.isEmpty) {
            sketches.push({ metric: ctx.name, timestamp: ts, interval, tags: ctx.tags, host: ctx.host, sketch: win.sketch.toData() });
          }
          break;
      }
      if (ctx.win === win) ctx.win = undefined;
    }

    // Idle counters report 0 until they expire; every other idle context is dropped at once.
    // A context with samples in this window or a newer one (the build may run after the next window
    // opened) is left alone; a counter idle here but busy again by then misses this window's 0.
    for (const ctx of this.contexts.values()) {
      if (++n % FLUSH_CHUNK === 0) yield;
      if (ctx.windowStart >= start) continue;
      if (ctx.kind === Kind.Counter && ctx.lastSeenMs + this.opts.counterExpiryMs > start) {
        series.push(this.point(ctx, ctx.name, countType, ts, 0));
        continue;
      }
      this.forget(ctx);
    }
  }

  private point(ctx: Context, metric: string, type: Series['type'], timestamp: number, value: number): Series {
    return { metric, type, timestamp, value, interval: this.flushIntervalMs / 1000, tags: ctx.tags, host: ctx.host };
  }

  private histogramSeries(ctx: Context, h: HistogramAgg, ts: number, out: Series[]): void {
    const interval = this.flushIntervalMs / 1000;
    for (const agg of this.opts.histogramAggregates) {
      switch (agg) {
        case 'max':
          out.push(this.point(ctx, `${ctx.name}.max`, 'gauge', ts, h.max));
          break;
        case 'min':
          out.push(this.point(ctx, `${ctx.name}.min`, 'gauge', ts, h.min));
          break;
        case 'median':
          out.push(this.point(ctx, `${ctx.name}.median`, 'gauge', ts, h.median()));
          break;
        case 'avg':
          out.push(this.point(ctx, `${ctx.name}.avg`, 'gauge', ts, h.avg));
          break;
        case 'sum':
          out.push(this.point(ctx, `${ctx.name}.sum`, 'gauge', ts, h.sum));
          break;
        case 'count':
          out.push(
            this.opts.countersAs === 'rate'
              ? this.point(ctx, `${ctx.name}.count`, 'rate', ts, h.count / interval)
              : this.point(ctx, `${ctx.name}.count`, 'count', ts, h.count),
          );
          break;
      }
    }
    for (const q of this.opts.histogramPercentiles) {
      out.push(this.point(ctx, `${ctx.name}.${Math.trunc(q * 100 + 0.5)}percentile`, 'gauge', ts, h.percentile(q)));
    }
  }

  /** Turns the deltas of every component's counters into ordinary samples of the closing window. */
  private recordingSelf = false;

  private recordSelfMetrics(): void {
    this.recordingSelf = true;
    try {
      this.recordSelfMetricsNow();
    } finally {
      this.recordingSelf = false;
    }
  }

  private recordSelfMetricsNow(): void {
    const self = this.selfStats;
    self.gauge('contexts', this.contexts.size);
    self.gauge('flush_duration_ms', Math.round(this.lastFlushMs * 1000) / 1000);
    for (const q of this.sinks) this.stats.component(`sink-${q.sink.name}`).gauge('queue_depth', q.depth);
    for (const s of this.stats.all()) {
      const tag = `component:${s.component}`;
      for (const field of COUNTER_FIELDS) this.selfCounter(`metrics_distributor.${field}`, [tag], `${s.component}/${field}`, s[field]);
      for (const [name, total] of s.namedCounters()) this.selfCounter(`metrics_distributor.${name}`, [tag], `${s.component}/named/${name}`, total);
      for (const [reason, total] of s.dropReasons()) {
        this.selfCounter('metrics_distributor.dropped', [tag, `reason:${reason}`], `${s.component}/dropped/${reason}`, total);
      }
      for (const [name, value] of s.gaugeValues()) this.addSample({ name: `metrics_distributor.${name}`, type: 'g', value, tags: [tag] });
    }
  }

  private selfCounter(name: string, tags: string[], id: string, total: number): void {
    const prev = this.reported.get(id) ?? 0;
    if (total === 0 && prev === 0) return;
    this.reported.set(id, total);
    this.addSample({ name, type: 'c', value: total - prev, tags });
  }
}

/** Feeds raw StatsD bytes from one front-end into the aggregator, counting them in that front-end's stats. */
export class StatsdReceiver implements StatsdHandler {
  constructor(
    private readonly agg: Aggregator,
    private readonly parser: StatsdParser,
    /** The front-end's self-metrics. */
    readonly stats: ComponentStats,
    private readonly logger: Logger,
  ) {}
  private readonly badLog = new RateLimitedLog(60_000);

  /** Parses one packet (several lines) from `buf[start, end)`. */
  packet(buf: Buffer, start = 0, end = buf.length): void {
    this.stats.packets++;
    this.stats.bytes += end - start;
    this.stats.received += this.parser.parse(buf, this, start, end);
  }

  /** Parses one line `buf[start, end)` (no newline inside); bytes are counted by the caller. */
  line(buf: Buffer, start: number, end: number): void {
    if (this.parser.parseLine(buf, this, start, end)) this.stats.received++;
  }

  /** @internal parser callback */
  sample(view: SampleView): void {
    this.stats.parsed++;
    this.agg.addView(view);
  }

  /** @internal parser callback */
  event(event: StatsdEvent): void {
    this.stats.parsed++;
    this.agg.addEvent(event);
  }

  /** @internal parser callback */
  serviceCheck(check: ServiceCheck): void {
    this.stats.parsed++;
    this.agg.addServiceCheck(check);
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
