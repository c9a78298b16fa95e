/**
 * The Aggregator: wires the context table, the open window, the window builder, state merge and
 * self-metrics together and keeps the window clock. Each closed window goes to its listeners.
 */
import { componentContext, ComponentNames, type ComponentContext } from './component.js';
import { ContextTable, type TableTransform } from './context-table.js';
import type { AddResult, IngestTarget, Sink } from './contracts.js';
import { HistogramSeries } from './histogram-series.js';
import { silentLogger, type Logger } from './logger.js';
import type { MetricBatch, Sample } from './model.js';
import { OpenWindow, type TakenWindow } from './open-window.js';
import { resolveOptions, type AggregatorOptions, type ResolvedOptions } from './options.js';
import { StatsdParser } from './parser/statsd.js';
import { SelfMetrics } from './self-metrics.js';
import { SinkFanout } from './sink-fanout.js';
import type { SinkQueueOptions } from './sink-queue.js';
import { drainState, mergeState, snapshotState, type ContextState, type WindowState, type WindowStateRest } from './state-merge.js';
import { StatsdReceiver } from './statsd-receiver.js';
import { StatsRegistry } from './stats.js';
import { TransformStage } from './transform/stage.js';
import { TapHub } from './tap.js';
import { scanTopContexts, type TopContextsQuery, type TopContextsReport } from './top-contexts.js';
import { WindowBuilder } from './window-builder.js';
import { alignWindow, StorePools, WindowClock } from './window-store.js';

/**
 * Longest run of window building before yielding to the event loop. Node reads at most 32 datagrams
 * per socket per loop turn, so at 10k datagrams/s (200k lines/s in 20-line packets) a turn must
 * stay under ~3 ms or the socket queue grows for as long as the build runs.
 */
const FLUSH_SLICE_MS = 1;

/** Scanning time a top-contexts question may take in all, in ms, spread over loop turns of ~1 ms. */
const TOP_CONTEXTS_BUDGET_MS = 200;
/**
 * After a top-contexts question, window builds count samples per name for this long, so the next
 * question sees the last closed window; with nobody asking, builds skip it.
 */
const TALLY_AFTER_QUESTION_MS = 5 * 60_000;

/** Receives each closed window's batch; called synchronously at the close, so it must neither throw nor wait. */
export type WindowListener = (batch: MetricBatch) => void;

/**
 * The windowed aggregator: DogStatsD agent semantics, one open window at a time, each closed window
 * handed to its listeners (the sinks' fan-out) without waiting. Also the in-process API for services
 * that embed it.
 */
export class Aggregator {
  /** Window length (ms). */
  readonly flushIntervalMs: number;
  /** Host of series without a `host:` tag. */
  readonly hostname: string;
  /** Self-metrics of every component in this process. */
  readonly stats: StatsRegistry;
  /** Every front-end's parsed samples, offered to tap subscribers (`metrics-distributor tap`) while there are any. */
  readonly tap: TapHub;
  private readonly opts: ResolvedOptions;
  private readonly now: () => number;
  /** Children for front-ends and sinks come from the root, so `component` is bound once. */
  private readonly rootLogger: Logger;
  private readonly component: ComponentContext<'aggregator'>;
  private readonly table: ContextTable;
  private readonly pools: StorePools;
  private readonly open: OpenWindow;
  private readonly builder: WindowBuilder;
  private readonly self: SelfMetrics;
  /** One parser for every front-end: parsing is synchronous, so they never share it at once. */
  private readonly parser: StatsdParser;
  private readonly listeners: WindowListener[] = [];
  /** The sinks of {@link addSink}, made on first use. */
  private fanout: SinkFanout | undefined;
  private readonly sinkQueueOpts: SinkQueueOptions;
  /** Batches are built one after another, so a slow build never overlaps the next close. */
  private building: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private beforeClose: ((windowStartMs: number) => Promise<void>) | undefined;
  private closed = false;
  private embedded: StatsdReceiver | undefined;
  /** When topContexts was last asked (epoch ms); -∞ before. */
  private askedAtMs = -Infinity;

  constructor(options: AggregatorOptions = {}) {
    const opts = (this.opts = resolveOptions(options));
    this.flushIntervalMs = opts.flushIntervalMs;
    this.hostname = opts.hostname;
    this.now = options.now ?? Date.now;
    this.rootLogger = options.logger ?? silentLogger();
    this.stats = options.stats ?? new StatsRegistry();
    this.component = componentContext({ logger: this.rootLogger, stats: this.stats }, 'aggregator');
    this.sinkQueueOpts = options.sinkQueue ?? {};
    const clock = new WindowClock(alignWindow(this.now(), opts.flushIntervalMs), opts.flushIntervalMs);
    const histograms = new HistogramSeries(opts.histogramAggregates, opts.histogramPercentiles, opts.countersAs, opts.flushIntervalMs / 1000);
    this.table = new ContextTable(opts, this.transformOf(options));
    this.pools = new StorePools(opts.histogramExactSamples);
    const seriesPerKind = [1, 1, 1, histograms.count, histograms.count, 0];
    this.open = new OpenWindow(opts, this.table, this.pools, clock, seriesPerKind, this.component, this.now);
    this.builder = new WindowBuilder(opts, this.table, this.pools, clock, histograms);
    this.builder.tallyWanted = () => this.now() - this.askedAtMs < TALLY_AFTER_QUESTION_MS;
    this.tap = new TapHub(this.now);
    this.self = new SelfMetrics(this.stats, this.component.stats, this.table, this.open);
    this.parser = new StatsdParser({ gaugeDeltas: opts.gaugeDeltas, nameHashBasis: this.table.rawIndex.nameHashBasis });
  }

  /**
   * Swaps mapping, filters, namespace and global tags for metrics from now on (a config reload).
   * A bad transform throws before anything changes. Contexts already in the open window keep the
   * names and tags they were made with; lines after the call get the new ones.
   */
  reconfigure(options: Pick<AggregatorOptions, 'transform' | 'globalTags'>): void {
    const tf = this.transformOf(options);
    (this.opts as { globalTags: readonly string[] }).globalTags = options.globalTags ?? [];
    this.table.rekey(tf);
  }

  /** The compiled transform (throws on a bad config), or none when nothing is configured. */
  private transformOf(options: AggregatorOptions): TableTransform | undefined {
    if (options.transform === undefined) return undefined;
    const stage = new TransformStage(options.transform);
    if (stage.empty) return undefined;
    return { stage, component: componentContext({ logger: this.rootLogger, stats: this.stats }, 'transform', ComponentNames.transform) };
  }

  // ---------------------------------------------------------------- windows out

  /** Adds a listener for every closed window (a {@link SinkFanout}'s `push`, for example). */
  onWindow(listener: WindowListener): void {
    this.listeners.push(listener);
  }

  /** Attaches a sink behind its own bounded queue: a convenience over a {@link SinkFanout} of its own. */
  addSink(sink: Sink, queueOptions?: SinkQueueOptions): void {
    if (this.fanout === undefined) {
      const fanout = (this.fanout = new SinkFanout({ logger: this.rootLogger, stats: this.stats }, this.sinkQueueOpts));
      this.onWindow((batch) => void fanout.push(batch));
    }
    this.fanout.add(sink, queueOptions);
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Starts the wall-clock-aligned flush timer. Without it, call {@link closeWindow} yourself.
   * `beforeClose(windowStartMs)` runs at each boundary before the window closes, e.g. to wait for
   * partial windows from worker processes.
   */
  start(opts: { beforeClose?: (windowStartMs: number) => Promise<void> } = {}): void {
    if (this.timer !== undefined || this.closed) return;
    this.beforeClose = opts.beforeClose;
    this.open.open(alignWindow(this.now(), this.flushIntervalMs));
    this.schedule();
  }

  private schedule(): void {
    const delay = Math.max(0, this.open.start + this.flushIntervalMs - this.now());
    this.timer = setTimeout(() => {
      const close = () => {
        this.timer = undefined;
        // close() may have flushed the window while we waited.
        if (this.closed) return;
        void this.closeWindowAsync();
        this.schedule();
      };
      if (this.beforeClose === undefined) return close();
      this.beforeClose(this.open.start).then(close, (err: unknown) => {
        this.component.logger.error({ err }, 'beforeClose failed; closing the window anyway.');
        close();
      });
    }, delay);
  }

  /**
   * Closes the open window: builds its batch, hands it to every listener and opens the next window.
   * Never waits for a sink. Returns the batch (tests and embedders use it).
   */
  closeWindow(): MetricBatch {
    const started = performance.now();
    const { batch, steps } = this.builder.build(this.takeWindow());
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
      const { batch, steps } = this.builder.build(taken);
      let sliceStart = performance.now();
      for (let r = steps.next(); r.done !== true; r = steps.next()) {
        if (performance.now() - sliceStart < FLUSH_SLICE_MS) continue;
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
      this.deliver(batch, started);
      return batch;
    });
    this.building = done.then(
      () => undefined,
      (err: unknown) => this.component.logger.error({ err }, 'Building a window failed; it is lost.'),
    );
    return done;
  }

  private deliver(batch: MetricBatch, started: number): void {
    for (const l of this.listeners) l(batch);
    this.self.lastFlushMs = performance.now() - started;
  }

  /** Self-metrics go into the closing window, so they are recorded before it is taken. */
  private takeWindow(): TakenWindow {
    if (this.opts.selfMetrics) this.self.record();
    return this.open.take();
  }

  /**
   * Stops the timer, flushes the open (partial) window, then gives every sink of {@link addSink} until
   * `deadlineMs` (epoch ms) to deliver. Idempotent.
   */
  async close(deadlineMs = Date.now() + 10_000): Promise<MetricBatch | undefined> {
    if (this.closed) return undefined;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.building;
    const batch = this.closeWindow();
    await this.fanout?.shutdown(deadlineMs);
    return batch;
  }

  // ---------------------------------------------------------------- partial windows (--workers)

  /**
   * Takes the open window as a partial-window state and opens the next one, without producing series:
   * a worker's aggregator does this and its parent merges the states with {@link mergeState}. Idle
   * contexts are forgotten here, since zero-fill and expiry are the merging side's job.
   */
  drainState(): WindowState {
    if (this.opts.selfMetrics) this.self.record();
    return drainState(this.open, this.table, this.pools);
  }

  /**
   * Merges a partial window from another aggregator into the open window, with every aggregate's own
   * merge: counters add, gauges keep the latest update, sets unite, histograms and sketches merge.
   */
  mergeState(state: WindowState): void {
    mergeState(this.open, this.table, state, this.opts.histogramExactSamples, this.opts.gaugeDeltas);
  }

  /**
   * The open window as a state without taking it (`--checkpoint-open-window`): a generator of its
   * contexts, `chunk` at a time, that returns the rest of the window, or undefined if the window
   * closed before the last chunk was read.
   */
  snapshotState(chunk?: number): Generator<ContextState[], WindowStateRest | undefined, void> {
    return snapshotState(this.open, chunk);
  }

  /**
   * Puts a window saved by a checkpoint back: merged into the open window if it is that window (or a
   * later one, with a clock gone back), else closed again as itself, with its own start, and handed
   * to the listeners like any closed window. Call it before ingestion starts: an older window is
   * closed through the open window, so the open one must still be empty, and is merged otherwise.
   */
  restoreState(state: WindowState): 'merged' | 'closed' {
    const current = this.open.start;
    const empty = this.open.store.size === 0 && this.open.timestamped.length === 0 && this.open.events.length === 0 && this.open.serviceChecks.length === 0;
    if (state.windowStartMs >= current || !empty) {
      this.mergeState(state);
      return 'merged';
    }
    const started = performance.now();
    this.open.open(state.windowStartMs);
    this.mergeState(state);
    // Not takeWindow(): this process's self-metrics belong to its own windows, not to a restored one.
    const { batch, steps } = this.builder.build(this.open.take());
    for (let r = steps.next(); r.done !== true; r = steps.next());
    this.open.open(current);
    this.deliver(batch, started);
    return 'closed';
  }

  /** Number of live contexts (idle counters included). */
  get contextCount(): number {
    return this.table.size;
  }

  /** Start (epoch ms) of the window currently open. */
  get currentWindowStart(): number {
    return this.open.start;
  }

  /**
   * The cardinality explorer: metric names with the most live contexts (or the most samples in the
   * last closed window), with example tag sets and their busiest tag keys. Scans the context table
   * on request only, ~1 ms at a time between loop turns, and stops at a time budget (`truncated`).
   */
  topContexts(q: TopContextsQuery): Promise<TopContextsReport> {
    this.askedAtMs = this.now();
    return scanTopContexts(q, {
      table: this.table,
      tally: this.builder.lastTally,
      openStore: this.open.store,
      openStartMs: this.open.start,
      maxContexts: this.opts.maxContexts,
      budgetMs: TOP_CONTEXTS_BUDGET_MS,
    });
  }

  // ---------------------------------------------------------------- ingestion

  /**
   * The ingest target of one front-end, counting on its context's self-metrics: every front-end is
   * fed through one of these and sees nothing else of the aggregator.
   */
  target(context: Pick<ComponentContext, 'stats' | 'logger'>): IngestTarget {
    return this.receiver(context);
  }

  private receiver(context: Pick<ComponentContext, 'stats' | 'logger'>): StatsdReceiver {
    return new StatsdReceiver(this.open, this.parser, context.stats, context.logger, this.tap);
  }

  /** Parses raw StatsD/DogStatsD bytes (one or more lines) and aggregates them, counted as `embedded`. */
  ingestStatsd(buf: Buffer): void {
    (this.embedded ??= this.receiver(componentContext({ logger: this.rootLogger, stats: this.stats }, 'embedded'))).statsd(buf);
  }

  /** Adds a counter increment (`value` defaults to 1). */
  increment(name: string, value = 1, tags?: readonly string[], sampleRate = 1): void {
    this.open.addSample({ name, type: 'c', value, tags, sampleRate }, 1);
  }

  /** Sets a gauge. */
  gauge(name: string, value: number, tags?: readonly string[]): void {
    this.open.addSample({ name, type: 'g', value, tags }, 1);
  }

  /** Records a histogram sample (`h`). */
  histogram(name: string, value: number, tags?: readonly string[], sampleRate = 1): void {
    this.open.addSample({ name, type: 'h', value, tags, sampleRate }, 1);
  }

  /** Records a timer sample in milliseconds (`ms`, aggregated as a histogram). */
  timing(name: string, valueMs: number, tags?: readonly string[], sampleRate = 1): void {
    this.open.addSample({ name, type: 'ms', value: valueMs, tags, sampleRate }, 1);
  }

  /** Records a distribution sample (`d`), kept as an agent-compatible sketch. */
  distribution(name: string, value: number, tags?: readonly string[], sampleRate = 1): void {
    this.open.addSample({ name, type: 'd', value, tags, sampleRate }, 1);
  }

  /** Adds a member to a set (`s`); the window reports the number of distinct members. */
  set(name: string, member: string | number, tags?: readonly string[]): void {
    this.open.addSample({ name, type: 's', value: 0, setMember: String(member), tags }, 1);
  }

  /**
   * Adds one sample in object form (log-drain extraction and the embedding API use this). `weight` is
   * how many received items it stands for: a dropped sample counts as that many drops.
   */
  addSample(sample: Sample, weight = 1): AddResult {
    return this.open.addSample(sample, weight);
  }
}
