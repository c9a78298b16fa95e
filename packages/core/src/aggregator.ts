import { hostname as osHostname } from 'node:os';
import type { AddResult, IngestTarget, Sink } from './contracts.js';
import type { ComponentContext } from './component.js';
import { MdError, type ErrorCode } from './errors.js';
import { RateLimitedLog, silentLogger, type Logger } from './logger.js';
import type { MetricBatch, MetricType, Sample, Series, ServiceCheck, SketchData, SketchSeries, StatsdEvent } from './model.js';
import { StatsdParser } from './parser/statsd.js';
import type { SampleView, StatsdHandler } from './parser/types.js';
import { AgentSketch } from './aggregates/agent-sketch.js';
import { HistogramAgg, type HistogramState } from './aggregates/histogram.js';
import { RawKey, RawKeyIndex, sameBytes, type RawKeyed } from './raw-index.js';
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
  /** Etsy-style gauge deltas (`+4|g`, and `Sample.gaugeDelta`). Default false, as in the agent. */
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

/** Per-context kind, resolved once when the context is created; `h` and `ms` aggregate alike. */
const enum Kind {
  Counter,
  Gauge,
  Set,
  Histogram,
  Timer,
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
      return Kind.Histogram;
    case 'ms':
      return Kind.Timer;
    case 'd':
      return Kind.Distribution;
  }
}

/** Wire type of each Kind, so a context need not keep both. */
const TYPE_OF_KIND: readonly MetricType[] = ['c', 'g', 's', 'h', 'ms', 'd'];

/** The aggregate object a window slot holds for sets, histograms and distributions. */
type SlotObject = Set<string> | HistogramAgg | AgentSketch;

/**
 * One window's aggregates, one slot per context with samples, in columns rather than an object per
 * context: a window of 200k contexts is then a few arrays instead of 400k small objects to allocate,
 * promote and collect every window. Stores are reused once a closed window has been built, so the
 * open window's columns are already allocated. A closed window is built from its store a chunk at a
 * time while the same contexts collect the next window in another store.
 */
class WindowStore {
  /** Slots in use. */
  size = 0;
  /** Series the slots will make, counted as they are claimed (idle counters' zeros come on top). */
  series = 0;
  /** The context of each slot. */
  readonly ctxs: (Context | undefined)[] = [];
  /** Counter Σ value/rate, or gauge value. */
  num = new Float64Array(1024);
  /** Gauge update time (epoch ms); -∞ until set, so a merged gauge always wins over none. */
  at = new Float64Array(1024);
  /** Set members, histogram or sketch of each slot; undefined for counters and gauges. */
  readonly objs: (SlotObject | undefined)[] = [];

  /** Takes the next slot for `ctx`, which makes `series` series. */
  claim(ctx: Context, series: number): number {
    const slot = this.size++;
    this.series += series;
    if (slot === this.num.length) {
      const num = new Float64Array(slot * 2);
      num.set(this.num);
      this.num = num;
      const at = new Float64Array(slot * 2);
      at.set(this.at);
      this.at = at;
    }
    this.ctxs[slot] = ctx;
    this.objs[slot] = undefined;
    this.num[slot] = 0;
    this.at[slot] = -Infinity;
    return slot;
  }
}

/**
 * A window's series array, sized up front: pushing 400k series grew it some 30 times, each a copy
 * of a multi-megabyte array left for the old generation to collect.
 */
class SeriesOut {
  readonly arr: Series[];
  private n = 0;

  constructor(expected: number) {
    // Capped: V8 makes a slow dictionary array of `new Array(n)` for n in the tens of millions.
    this.arr = new Array<Series>(Math.min(expected, 1 << 22));
  }

  /** Appends; past the expected size it simply grows. */
  add(s: Series): void {
    this.arr[this.n++] = s;
  }

  /** Drops unfilled room, should the count have been high. */
  done(): void {
    if (this.arr.length > this.n) this.arr.length = this.n;
  }
}

/** What a window close takes from the aggregator at the boundary, before its series are built. */
interface TakenWindow {
  start: number;
  store: WindowStore;
  timestamped: Series[];
  events: StatsdEvent[];
  serviceChecks: ServiceCheck[];
}

/** Contexts handled between two looks at the clock while a window's series are built. */
const FLUSH_CHUNK = 128;
/**
 * Longest run of window building before yielding to the event loop. Node reads at most 32 datagrams
 * per socket per loop turn, so at 10k datagrams/s (200k lines/s in 20-line packets) a turn must
 * stay under ~3 ms or the socket queue grows for as long as the build runs.
 */
const FLUSH_SLICE_MS = 1;

/** Wire type byte of each Kind (`m` for `ms`), as the raw index hashes it. */
const TYPE_CODE_OF_KIND: readonly number[] = [0x63, 0x67, 0x73, 0x68, 0x6d, 0x64];

/**
 * An interned (host, sorted tags) pair, shared by every context with the same host and tags while any
 * is alive: one tag array and one set of tag strings for all of them.
 */
class TagSet {
  /** Live contexts using it. */
  refs = 0;
  /** Next tag set in the same hash chain. */
  next: TagSet | undefined = undefined;

  constructor(
    readonly hash: number,
    readonly host: string,
    /** The tags joined with `,`. */
    readonly joined: string,
    readonly tags: readonly string[],
  ) {}
}

/** FNV-1a over a string's UTF-16 code units, continuing from `h`. */
function hashString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h;
}

/** Seeded per process, like the raw index, so crafted names cannot all collide. */
const HASH_SEED = (Math.random() * 0x100000000) >>> 0;

function tagSetHash(host: string, joined: string): number {
  return hashString(Math.imul(hashString(0x811c9dc5 ^ HASH_SEED, host) ^ 0, 16777619), joined);
}

function contextHash(kind: Kind, name: string, ts: TagSet): number {
  return hashString(Math.imul(ts.hash ^ (kind + 1), 16777619), name);
}

/**
 * One (name, host, tag set, type), alive across windows while it gets samples. It is also its own
 * entry in the raw index for the first byte form it arrives in, when its name and tags can be
 * compared with the bytes directly (see {@link Context.rawMatches}).
 */
class Context implements RawKeyed<Context> {
  /**
   * Window number (see Aggregator.windowNoOf) of the last sample; -1 before the first. A small
   * integer, where an epoch-ms field would cost a boxed number per context.
   */
  seen = -1;
  /** Slot in the open window's store; valid while `seen` is the open window. */
  slot = 0;
  /**
   * Keys that resolve to this context in the alias map (strings) and the raw index (entries),
   * removed with it: one key alone, or an array once there are several.
   */
  keys: string | RawKey<Context> | (string | RawKey<Context>)[] | undefined;
  /** Next context in the same hash chain of the contexts table. */
  next: Context | undefined = undefined;
  /** A histogram's series names, from its first flush on (see Aggregator.histNames). */
  seriesNames: readonly string[] | undefined = undefined;
  /** Raw-index hash of the byte form this context is its own entry for. */
  rawHash = 0;
  /** Owned by the raw index. */
  rawNext: RawKeyed<Context> | undefined = undefined;
  /**
   * Undefined while the context is not its own raw-index entry; then null when the raw tag bytes
   * equal `tagSet.joined`, or those bytes (latin1) when they differ (other order, `host:` tag...).
   */
  rawTags: string | null | undefined = undefined;

  constructor(
    readonly kind: Kind,
    readonly name: string,
    readonly tagSet: TagSet,
  ) {}

  /** Host of every series of the context. */
  get host(): string {
    return this.tagSet.host;
  }

  /** The context itself, as a raw-index entry. */
  get rawValue(): Context {
    return this;
  }

  /**
   * Compares with the name's chars, which equal its bytes (checked when the entry was made), and with
   * the raw tag bytes or, when they were the normalised tags, `tagSet.joined`.
   */
  rawMatches(type: number, buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number): boolean {
    const name = this.name;
    if (type !== TYPE_CODE_OF_KIND[this.kind] || name.length !== nameEnd - nameStart) return false;
    const tags = this.rawTags ?? this.tagSet.joined;
    const tagsLen = tagsStart >= 0 ? tagsEnd - tagsStart : 0;
    return tags.length === tagsLen && sameBytes(name, 0, buf, nameStart, name.length) && sameBytes(tags, 0, buf, tagsStart, tagsLen);
  }

  /** Wire type. */
  get type(): MetricType {
    return TYPE_OF_KIND[this.kind]!;
  }

  /** Sorted, de-duplicated tags; the same array for every window while the context lives. */
  get tags(): readonly string[] {
    return this.tagSet.tags;
  }
}

/**
 * Removes `item` from the hash chain at `hash` of `map` (chained through `next`). The item keeps its
 * `next`, so a walk paused on it (a window build between chunks) still reaches the rest of the chain.
 */
function unchain<T extends { next: T | undefined }>(map: Map<number, T>, hash: number, item: T): void {
  const head = map.get(hash);
  if (head === item) {
    if (item.next === undefined) map.delete(hash);
    else map.set(hash, item.next);
  } else {
    let prev = head;
    while (prev !== undefined && prev.next !== item) prev = prev.next;
    if (prev !== undefined) prev.next = item.next;
  }
}

/** Whether a context may take another key of this form (string alias or raw entry): at most MAX_ALIASES each. */
function roomForKey(ctx: Context, alias: boolean): boolean {
  const keys = ctx.keys;
  if (!Array.isArray(keys)) return true;
  let same = 0;
  for (const k of keys) if ((typeof k === 'string') === alias) same++;
  return same < MAX_ALIASES;
}

/** Records a key of the context; an array is made only for a second key (most contexts have one). */
function addKey(ctx: Context, key: string | RawKey<Context>): void {
  const keys = ctx.keys;
  if (keys === undefined) ctx.keys = key;
  else if (Array.isArray(keys)) keys.push(key);
  else ctx.keys = [keys, key];
}

/** A raw alias map can be poisoned by clients sending tags in many orders; cap aliases per context. */
const MAX_ALIASES = 4;

/** Splits tags into sorted, de-duplicated tags and the `host:` override, removing reserved ones. */
export function normalizeTags(tags: readonly string[], globalTags: readonly string[] = []): { tags: string[]; host: string | undefined } {
  // Clients mostly send tags already sorted and unique: then a copy is the answer, without the Set.
  if (globalTags.length === 0 && isPlainSorted(tags)) return { tags: tags.slice(), host: undefined };
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

/** Whether tags are strictly increasing (sorted, unique), none empty, `host:` or reserved. */
function isPlainSorted(tags: readonly string[]): boolean {
  for (let i = 0; i < tags.length; i++) {
    const tag = tags[i]!;
    if (tag.length === 0 || tag.startsWith('host:') || tag.startsWith('dd.internal.')) return false;
    if (i > 0 && !(tags[i - 1]! < tag)) return false;
  }
  return true;
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
  /**
   * Every live context, by contextHash, chained through `next` on collisions: comparing a context's
   * own fields spares a key string per context.
   */
  private readonly contexts = new Map<number, Context>();
  private liveContexts = 0;
  private readonly aliases = new Map<string, Context>();
  private readonly rawIndex = new RawKeyIndex<Context>();
  /** Interned tag sets by tagSetHash, chained through `next`. */
  private readonly tagSets = new Map<number, TagSet>();
  /** The open window's aggregates. */
  private store = new WindowStore();
  /** Stores of built windows, ready for reuse. */
  private readonly freeStores: WindowStore[] = [];
  /** Emptied histograms and sketches of built windows, reused by the next windows' contexts. */
  private readonly histPool: HistogramAgg[] = [];
  private readonly sketchPool: AgentSketch[] = [];
  /** Batches are built one after another, so a slow build never overlaps the next close. */
  private building: Promise<void> = Promise.resolve();
  private timestamped: Series[] = [];
  private events: StatsdEvent[] = [];
  private serviceChecks: ServiceCheck[] = [];
  private windowStart: number;
  /** windowNoOf(windowStart): what contexts record as `seen`. */
  private windowNo: number;
  /** Window numbers count from here, so they stay small integers (no boxed number per context). */
  private readonly epochMs: number;
  /**
   * Last gauge value of any window per live gauge context, kept only with gaugeDeltas: Etsy deltas
   * build on it, and nothing else reads it.
   */
  private readonly lastGauges = new Map<Context, number>();
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
    this.epochMs = this.windowStart;
    this.windowNo = 0;
    this.histSuffixes = [
      ...this.opts.histogramAggregates.map((a) => `.${a}`),
      ...this.opts.histogramPercentiles.map((q) => `.${Math.trunc(q * 100 + 0.5)}percentile`),
    ];
    this.seriesPerKind = [1, 1, 1, this.histSuffixes.length, this.histSuffixes.length, 0];
    this.parser = new StatsdParser({ gaugeDeltas: this.opts.gaugeDeltas, nameHashBasis: this.rawIndex.nameHashBasis });
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
    this.openWindow(alignWindow(this.now(), this.flushIntervalMs));
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
    const taken: TakenWindow = { start, store: this.store, timestamped: this.timestamped, events: this.events, serviceChecks: this.serviceChecks };
    this.store = this.freeStores.pop() ?? new WindowStore();
    this.timestamped = [];
    this.events = [];
    this.serviceChecks = [];
    this.openWindow(Math.max(start + this.flushIntervalMs, alignWindow(this.now(), this.flushIntervalMs)));
    return taken;
  }

  private openWindow(start: number): void {
    this.windowStart = start;
    this.windowNo = this.windowNoOf(start);
  }

  /** Number of the window starting at `start` (aligned, so the division is exact), counted from epochMs. */
  private windowNoOf(start: number): number {
    const no = (start - this.epochMs) / this.flushIntervalMs;
    // `| 0` makes it a small integer (the division alone yields a boxed double), exact in this range.
    return no >= -0x40000000 && no <= 0x3fffffff ? no | 0 : no;
  }

  /** Empties a slot's aggregate into the pools, so the next windows reuse it. */
  private release(obj: SlotObject | undefined): void {
    if (obj instanceof HistogramAgg) {
      obj.reset();
      this.histPool.push(obj);
    } else if (obj instanceof AgentSketch) {
      obj.reset();
      this.sketchPool.push(obj);
    }
  }

  /**
   * Returns a built window's store for reuse. The pools keep at most what this window used, and a
   * store grown far beyond it (by a burst of contexts) is let go, so memory shrinks again when
   * traffic does.
   */
  private recycle(store: WindowStore, hists: number, sketches: number): void {
    const used = store.size;
    store.size = 0;
    store.series = 0;
    if (this.freeStores.length < 2 && store.num.length <= 4 * Math.max(used, 1024)) this.freeStores.push(store);
    if (this.histPool.length > hists) this.histPool.length = hists;
    if (this.sketchPool.length > sketches) this.sketchPool.length = sketches;
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
    const store = this.store;
    let hists = 0, sketches = 0;
    for (let i = 0; i < store.size; i++) {
      const ctx = store.ctxs[i]!;
      const obj = store.objs[i];
      const cs: ContextState = { type: ctx.type, name: ctx.name, host: ctx.host, tags: ctx.tags };
      switch (ctx.kind) {
        case Kind.Counter:
          cs.counter = store.num[i]!;
          break;
        case Kind.Gauge:
          cs.gauge = { value: store.num[i]!, updatedAtMs: store.at[i]! };
          break;
        case Kind.Set:
          if (obj !== undefined) cs.set = [...(obj as Set<string>)];
          break;
        case Kind.Histogram:
        case Kind.Timer:
          if (obj !== undefined) {
            cs.histogram = (obj as HistogramAgg).toState();
            hists++;
          }
          break;
        case Kind.Distribution:
          if (obj !== undefined) {
            cs.sketch = (obj as AgentSketch).toData();
            sketches++;
          }
          break;
      }
      this.release(obj);
      store.ctxs[i] = undefined;
      store.objs[i] = undefined;
      contexts.push(cs);
    }
    this.recycle(store, hists, sketches);
    this.store = this.freeStores.pop() ?? new WindowStore();
    const startNo = this.windowNo;
    for (const head of this.contexts.values()) {
      for (let ctx: Context | undefined = head; ctx !== undefined; ) {
        const next: Context | undefined = ctx.next;
        if (ctx.seen !== startNo) this.forget(ctx);
        ctx = next;
      }
    }
    const state: WindowState = { windowStartMs: start, contexts, timestamped: this.timestamped, events: this.events, serviceChecks: this.serviceChecks };
    this.timestamped = [];
    this.events = [];
    this.serviceChecks = [];
    this.openWindow(Math.max(start + this.flushIntervalMs, alignWindow(this.now(), this.flushIntervalMs)));
    return state;
  }

  /**
   * Merges a partial window from another aggregator into the open window, with every aggregate's own
   * merge: counters add, gauges keep the latest update, sets unite, histograms and sketches merge.
   */
  mergeState(state: WindowState): void {
    for (const cs of state.contexts) {
      const kind = kindOf(cs.type);
      // A state without its kind's aggregate carries nothing, and must not open an empty slot.
      const carried =
        kind === Kind.Counter ? cs.counter : kind === Kind.Gauge ? cs.gauge : kind === Kind.Set ? cs.set : kind === Kind.Distribution ? cs.sketch : cs.histogram;
      if (carried === undefined) continue;
      const ctx = this.lookup(cs.type, cs.name, cs.host, cs.tags);
      if (ctx === undefined) continue;
      const slot = this.touch(ctx);
      const store = this.store;
      switch (kind) {
        case Kind.Counter:
          store.num[slot]! += cs.counter!;
          break;
        case Kind.Gauge: {
          const g = cs.gauge!;
          // Ties go to the later arrival, as in GaugeAgg.merge.
          if (g.updatedAtMs >= store.at[slot]!) {
            store.num[slot] = g.value;
            store.at[slot] = g.updatedAtMs;
          }
          if (this.opts.gaugeDeltas) this.lastGauges.set(ctx, store.num[slot]!);
          break;
        }
        case Kind.Set: {
          const set = (store.objs[slot] ??= new Set<string>()) as Set<string>;
          for (const m of cs.set!) set.add(m);
          break;
        }
        case Kind.Histogram:
        case Kind.Timer:
          // Into a pooled histogram, as samples go: a fresh one per context per merged window was churn.
          this.histOf(slot).merge(HistogramAgg.fromState(cs.histogram!, this.opts.histogramExactSamples));
          break;
        case Kind.Distribution:
          this.sketchOf(slot).merge(AgentSketch.fromData(cs.sketch!));
          break;
      }
    }
    for (const s of state.timestamped) this.timestamped.push(s);
    for (const e of state.events) this.events.push(e);
    for (const c of state.serviceChecks) this.serviceChecks.push(c);
  }

  private forget(ctx: Context): void {
    const ts = ctx.tagSet;
    unchain(this.contexts, contextHash(ctx.kind, ctx.name, ts), ctx);
    this.liveContexts--;
    if (--ts.refs === 0) unchain(this.tagSets, ts.hash, ts);
    if (ctx.rawTags !== undefined) this.rawIndex.delete(ctx);
    if (ctx.kind === Kind.Gauge) this.lastGauges.delete(ctx);
    const keys = ctx.keys;
    if (keys === undefined) return;
    if (Array.isArray(keys)) for (const k of keys) this.forgetKey(k);
    else this.forgetKey(keys);
  }

  private forgetKey(key: string | RawKey<Context>): void {
    if (typeof key === 'string') this.aliases.delete(key);
    else this.rawIndex.delete(key);
  }

  /** Number of live contexts (idle counters included). */
  get contextCount(): number {
    return this.liveContexts;
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

  /**
   * The ingest target of one front-end, counting on its context's self-metrics: every front-end is
   * fed through one of these and sees nothing else of the aggregator.
   */
  target(context: Pick<ComponentContext, 'stats' | 'logger'>): IngestTarget {
    return new StatsdReceiver(this, this.parser, context.stats, context.logger);
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

  /**
   * Adds one sample in object form (log-drain extraction and the embedding API use this). `weight` is
   * how many received items it stands for: a dropped sample counts as that many drops.
   */
  addSample(sample: Sample, weight = 1): AddResult {
    const tags = sample.tags ?? [];
    if (sample.timestampS !== undefined && sample.timestampS > 0) {
      return this.addTimestamped(sample.name, sample.type, sample.value, tags, sample.timestampS, sample.host, weight);
    }
    if (sample.type !== 's' && !Number.isFinite(sample.value)) {
      this.dropSample('non_finite', sample.name, weight);
      return 'dropped';
    }
    const rawKey = `\u0001${sample.type}\u0000${sample.name}\u0000${sample.host ?? ''}\u0000${tags.join(',')}`;
    let ctx = this.aliases.get(rawKey);
    if (ctx === undefined) {
      ctx = this.resolve(sample.type, sample.name, tags, sample.host, weight);
      if (ctx === undefined) return 'dropped';
      if (roomForKey(ctx, true)) {
        addKey(ctx, rawKey);
        this.aliases.set(rawKey, ctx);
      }
    }
    const slot = this.touch(ctx);
    if (ctx.kind === Kind.Set) {
      this.setOf(slot).add(sample.setMember ?? String(sample.value));
    } else {
      this.addValue(ctx, slot, sample.value, sample.sampleRate ?? 1, sample.gaugeDelta ?? 0);
    }
    return 'accepted';
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
    const hash = this.rawIndex.hashAfterName(view.nameHash, typeCode, buf, tagsStart, tagsEnd);
    let ctx = this.rawIndex.get(hash, typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd);
    if (ctx === undefined) {
      const name = buf.toString('utf8', nameStart, nameEnd);
      const tags = tagsStart >= 0 ? buf.toString('utf8', tagsStart, tagsEnd).split(',') : [];
      ctx = this.resolve(view.type, name, tags, undefined);
      if (ctx === undefined) return;
      this.addRawKey(ctx, hash, typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd);
    }
    const slot = this.touch(ctx);
    if (ctx.kind === Kind.Set) {
      this.setOf(slot).add(buf.toString('latin1', view.setStart, view.setEnd));
      return;
    }
    for (let i = 0; i < view.valueCount; i++) {
      const v = view.values[i]!;
      // Already counted by hasFiniteValue.
      if (Number.isFinite(v)) this.addValue(ctx, slot, v, view.sampleRate, view.gaugeDelta);
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

  private resolve(type: MetricType, name: string, rawTags: readonly string[], hostOverride: string | undefined, weight = 1): Context | undefined {
    const { tags, host } = normalizeTags(rawTags, this.opts.globalTags);
    return this.lookup(type, name, hostOverride ?? host ?? this.hostname, tags, weight);
  }

  /** The context of (type, name, host, normalised tags), created if there is room. */
  private lookup(type: MetricType, name: string, host: string, tags: readonly string[], weight = 1): Context | undefined {
    const kind = kindOf(type);
    const joined = tags.join(',');
    const tsHash = tagSetHash(host, joined);
    let ts = this.tagSets.get(tsHash);
    while (ts !== undefined && (ts.joined !== joined || ts.host !== host)) ts = ts.next;
    let hash = 0;
    if (ts !== undefined) {
      hash = contextHash(kind, name, ts);
      for (let ctx = this.contexts.get(hash); ctx !== undefined; ctx = ctx.next) {
        if (ctx.tagSet === ts && ctx.kind === kind && ctx.name === name) return ctx;
      }
    }
    // Self-metrics are exempt (a small, bounded set): a table full of user contexts must not hide
    // the very counters that report the drops, `dropped{reason:max_contexts}` first of all.
    if (this.liveContexts >= this.opts.maxContexts && !this.recordingSelf) {
      this.dropSample('max_contexts', name, weight);
      return undefined;
    }
    if (ts === undefined) {
      // Contexts differing only in name or type share one tag array (and its strings).
      ts = new TagSet(tsHash, host, joined, tags);
      ts.next = this.tagSets.get(tsHash);
      this.tagSets.set(tsHash, ts);
      hash = contextHash(kind, name, ts);
    }
    ts.refs++;
    const ctx = new Context(kind, name, ts);
    ctx.next = this.contexts.get(hash);
    this.contexts.set(hash, ctx);
    this.liveContexts++;
    return ctx;
  }

  /**
   * Makes this byte form find the context: the context is its own entry for its first form if its
   * name's chars are its bytes (ASCII); any other form gets a RawKey, up to MAX_ALIASES.
   */
  private addRawKey(ctx: Context, hash: number, typeCode: number, buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number): void {
    const name = ctx.name;
    if (ctx.rawTags === undefined && name.length === nameEnd - nameStart && sameBytes(name, 0, buf, nameStart, name.length)) {
      const joined = ctx.tagSet.joined;
      const tagsLen = tagsStart >= 0 ? tagsEnd - tagsStart : 0;
      ctx.rawTags = joined.length === tagsLen && sameBytes(joined, 0, buf, tagsStart, tagsLen) ? null : tagsLen === 0 ? '' : buf.toString('latin1', tagsStart, tagsEnd);
      ctx.rawHash = hash;
      this.rawIndex.add(ctx);
      return;
    }
    if (!roomForKey(ctx, false)) return;
    const key = new RawKey(hash, typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd, ctx);
    this.rawIndex.add(key);
    addKey(ctx, key);
  }

  /** The context's slot in the open window's store, claimed on its first sample of the window. */
  private touch(ctx: Context): number {
    if (ctx.seen === this.windowNo) return ctx.slot;
    ctx.seen = this.windowNo;
    return (ctx.slot = this.store.claim(ctx, this.seriesPerKind[ctx.kind]!));
  }

  private setOf(slot: number): Set<string> {
    return ((this.store.objs[slot] as Set<string> | undefined) ??= new Set<string>());
  }

  /** The slot's histogram in the open window, taken from the pool on first use. */
  private histOf(slot: number): HistogramAgg {
    const objs = this.store.objs;
    let h = objs[slot] as HistogramAgg | undefined;
    if (h === undefined) objs[slot] = h = this.histPool.pop() ?? new HistogramAgg(this.opts.histogramExactSamples);
    return h;
  }

  private sketchOf(slot: number): AgentSketch {
    const objs = this.store.objs;
    let sk = objs[slot] as AgentSketch | undefined;
    if (sk === undefined) objs[slot] = sk = this.sketchPool.pop() ?? new AgentSketch();
    return sk;
  }

  private addValue(ctx: Context, slot: number, v: number, rate: number, delta: 0 | 1 | -1): void {
    const r = rate > 0 && rate <= 1 ? rate : 1;
    const store = this.store;
    switch (ctx.kind) {
      case Kind.Counter:
        // As CounterAgg.add.
        store.num[slot]! += v / r;
        return;
      case Kind.Gauge:
        // Etsy semantics: a signed value adjusts the gauge only when one exists, else it sets it.
        if (this.opts.gaugeDeltas) {
          const last = this.lastGauges.get(ctx);
          if (delta !== 0 && last !== undefined) v += last;
          this.lastGauges.set(ctx, v);
        }
        store.num[slot] = v;
        store.at[slot] = this.now();
        return;
      case Kind.Histogram:
      case Kind.Timer:
        this.histOf(slot).add(v, r);
        return;
      case Kind.Distribution:
        this.sketchOf(slot).insert(v, AgentSketch.weightForRate(r));
        return;
      case Kind.Set:
        return;
    }
  }

  private addTimestamped(name: string, type: MetricType, value: number, rawTags: readonly string[], ts: number, hostOverride: string | undefined, weight = 1): AddResult {
    if (type !== 'g' && type !== 'c') {
      this.dropSample('timestamped_type', name, weight);
      return 'dropped';
    }
    if (!Number.isFinite(value)) {
      this.dropSample('non_finite', name, weight);
      return 'dropped';
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
    return 'accepted';
  }

  private dropSample(reason: string, name: string, n = 1): void {
    this.selfStats.drop(reason, n);
    this.dropLog.maybe((suppressed) =>
      this.logger.warn({ reason, metric: name.slice(0, 200), suppressed }, 'Dropped samples; see metrics_distributor.dropped.'),
    );
  }

  // ---------------------------------------------------------------- flushing

  /**
   * Turns a taken window into its batch. The returned generator does the work and yields every
   * FLUSH_CHUNK contexts, where the caller may give the event loop a turn; the batch is complete once
   * it is exhausted.
   */
  private buildBatch(taken: TakenWindow): { batch: MetricBatch; steps: Generator<void, void, undefined> } {
    // Counted at claim time: a pass over the slots here would hold the loop at the boundary.
    const out = new SeriesOut(taken.timestamped.length + taken.store.series);
    for (const s of taken.timestamped) out.add(s);
    const series = out.arr;
    const sketches: SketchSeries[] = [];
    const batch: MetricBatch = {
      windowStartMs: taken.start,
      intervalMs: this.flushIntervalMs,
      series,
      sketches,
      events: taken.events,
      serviceChecks: taken.serviceChecks,
    };
    return { batch, steps: this.buildSteps(taken, out, sketches) };
  }

  private *buildSteps(taken: TakenWindow, series: SeriesOut, sketches: SketchSeries[]): Generator<void, void, undefined> {
    const start = taken.start;
    const store = taken.store;
    // The work is in plain methods called per chunk: V8 optimises those after a few calls, while a
    // generator's own loop would run unoptimised for the whole of the first (coldest) window.
    const pooled = { hists: 0, sketches: 0 };
    for (let i = 0; i < store.size; i += FLUSH_CHUNK) {
      this.emitSlots(store, i, Math.min(store.size, i + FLUSH_CHUNK), start, series, sketches, pooled);
      yield;
    }
    this.recycle(store, pooled.hists, pooled.sketches);
    this.histNamesBefore = this.histNamesNow;
    this.histNamesNow = new Map();

    // Idle counters report 0 until they expire; every other idle context is dropped at once.
    // A context with samples in this window or a newer one (the build may run after the next window
    // opened) is left alone; a counter idle here but busy again by then misses this window's 0.
    const chains = this.contexts.values();
    while (!this.sweepIdle(chains, FLUSH_CHUNK, start, series)) yield;
    series.done();
  }

  /** Turns slots [from, to) of a closed window's store into series, emptying them into the pools. */
  private emitSlots(store: WindowStore, from: number, to: number, start: number, series: SeriesOut, sketches: SketchSeries[], pooled: { hists: number; sketches: number }): void {
    const ts = Math.floor(start / 1000);
    const interval = this.flushIntervalMs / 1000;
    const countType = this.opts.countersAs;
    for (let i = from; i < to; i++) {
      const ctx = store.ctxs[i]!;
      const obj = store.objs[i];
      switch (ctx.kind) {
        case Kind.Counter: {
          const sum = store.num[i]!;
          series.add(this.point(ctx, ctx.name, countType, ts, countType === 'rate' ? sum / interval : sum));
          break;
        }
        case Kind.Gauge:
          series.add(this.point(ctx, ctx.name, 'gauge', ts, store.num[i]!));
          break;
        case Kind.Set:
          if (obj !== undefined) series.add(this.point(ctx, ctx.name, 'gauge', ts, (obj as Set<string>).size));
          break;
        case Kind.Histogram:
        case Kind.Timer:
          if (obj !== undefined) {
            this.histogramSeries(ctx, obj as HistogramAgg, ts, series);
            pooled.hists++;
          }
          break;
        case Kind.Distribution:
          if (obj !== undefined) {
            const sk = obj as AgentSketch;
            if (!sk.isEmpty) sketches.push({ metric: ctx.name, timestamp: ts, interval, tags: ctx.tags, host: ctx.host, sketch: sk.toData() });
            pooled.sketches++;
          }
          break;
      }
      this.release(obj);
      store.ctxs[i] = undefined;
      store.objs[i] = undefined;
    }
  }

  /**
   * Zero-fills or forgets the contexts idle since before `start`, for up to `chunk` hash chains of
   * `chains`; true once every chain has been seen.
   */
  private sweepIdle(chains: IterableIterator<Context>, chunk: number, start: number, series: SeriesOut): boolean {
    const startNo = this.windowNoOf(start);
    const ts = Math.floor(start / 1000);
    const countType = this.opts.countersAs;
    const expiry = this.opts.counterExpiryMs;
    for (let n = 0; n < chunk; n++) {
      const r = chains.next();
      if (r.done === true) return true;
      for (let ctx: Context | undefined = r.value; ctx !== undefined; ) {
        // Taken before a possible forget, which unlinks ctx.
        const next: Context | undefined = ctx.next;
        if (ctx.seen < startNo) {
          if (ctx.kind === Kind.Counter && this.epochMs + ctx.seen * this.flushIntervalMs + expiry > start) series.add(this.point(ctx, ctx.name, countType, ts, 0));
          else this.forget(ctx);
        }
        ctx = next;
      }
    }
    return false;
  }

  private point(ctx: Context, metric: string, type: Series['type'], timestamp: number, value: number): Series {
    return { metric, type, timestamp, value, interval: this.flushIntervalMs / 1000, tags: ctx.tags, host: ctx.host };
  }

  private histogramSeries(ctx: Context, h: HistogramAgg, ts: number, out: SeriesOut): void {
    const interval = this.flushIntervalMs / 1000;
    const names = (ctx.seriesNames ??= this.histNames(ctx.name));
    const aggs = this.opts.histogramAggregates;
    let i = 0;
    for (; i < aggs.length; i++) {
      const name = names[i]!;
      switch (aggs[i]!) {
        case 'max':
          out.add(this.point(ctx, name, 'gauge', ts, h.max));
          break;
        case 'min':
          out.add(this.point(ctx, name, 'gauge', ts, h.min));
          break;
        case 'median':
          out.add(this.point(ctx, name, 'gauge', ts, h.median()));
          break;
        case 'avg':
          out.add(this.point(ctx, name, 'gauge', ts, h.avg));
          break;
        case 'sum':
          out.add(this.point(ctx, name, 'gauge', ts, h.sum));
          break;
        case 'count':
          out.add(this.opts.countersAs === 'rate' ? this.point(ctx, name, 'rate', ts, h.count / interval) : this.point(ctx, name, 'count', ts, h.count));
          break;
      }
    }
    for (const q of this.opts.histogramPercentiles) out.add(this.point(ctx, names[i++]!, 'gauge', ts, h.percentile(q)));
  }

  /**
   * A histogram name's series names (`.max`, `.median`… in the order histogramSeries emits them),
   * kept by each context from its first flush on: built afresh each window they were 300k strings
   * per window at 60k histogram contexts, all kept until the sinks are done, and ropes every sink
   * had to flatten. Contexts of the same name first flushed within a window of each other share them.
   */
  private histNames(name: string): readonly string[] {
    let names = this.histNamesNow.get(name);
    if (names === undefined) {
      names = this.histNamesBefore.get(name);
      if (names === undefined) {
        // Ropes, like any concatenation, but only once: the first sink to read one flattens it for good.
        const suffixes = this.histSuffixes;
        const made: string[] = [];
        for (let i = 0; i < suffixes.length; i++) made.push(name + suffixes[i]!);
        names = made;
      }
      this.histNamesNow.set(name, names);
    }
    return names;
  }
  private histNamesNow = new Map<string, readonly string[]>();
  /** Series a slot of each Kind makes: one, or one per histogram aggregate, or none (sketches). */
  private readonly seriesPerKind: readonly number[];
  private readonly histSuffixes: readonly string[];
  private histNamesBefore = new Map<string, readonly string[]>();

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
    self.gauge('contexts', this.liveContexts);
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
export class StatsdReceiver implements StatsdHandler, IngestTarget {
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

  /** {@link IngestTarget.statsd}: same as {@link packet}. */
  statsd(buf: Buffer, start = 0, end = buf.length): void {
    this.packet(buf, start, end);
  }

  /** {@link IngestTarget.statsdLine}: same as {@link line}. */
  statsdLine(buf: Buffer, start: number, end: number): void {
    this.line(buf, start, end);
  }

  /** {@link IngestTarget.addSample}: adds a sample in object form to the aggregator. */
  addSample(sample: Sample, weight = 1): AddResult {
    return this.agg.addSample(sample, weight);
  }

  /** {@link IngestTarget.windowStartMs}. */
  get windowStartMs(): number {
    return this.agg.currentWindowStart;
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
