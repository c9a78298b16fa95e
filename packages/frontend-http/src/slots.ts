/**
 * The cached samples of the hot path and how they are handed to the ingest target. A drain repeats
 * the same few dynos, statuses and metric names all day, so each kind of line keeps its `Sample`
 * objects (a {@link Slot} each) instead of building them again for every line.
 *
 * Within one body, counter increments (whole numbers) and gauge settings of the same slot are added
 * up and handed over once when the body ends, still before it is answered, with the number of
 * samples they stand for as the weight. Gauges keep the last value, as the aggregator would; counters
 * are exact because whole-number sums below 2^53 are exact in any order. A counter that ever gets a
 * fractional value is not merged for the rest of the window, so its sum is built in arrival order as
 * before. Only a context that another listener feeds fractions in the same window could see its sum
 * differ in the last bit.
 */
import type { IngestTarget, Sample } from '@metrics-distributor/core';
import type { L2metKind } from './heroku-metrics.js';

/** Entries kept in each cache before it is emptied: bounds memory whatever the drains send. */
export const MAX_CACHED = 4096;

/** Entries kept under one key (dyno, metric name) before that list is emptied. */
const MAX_PER_KEY = 64;

/**
 * Longest raw `dyno=` or `source=` value used as a cache key: above any dyno name `dynoTags` accepts
 * (69 characters) and the 100 characters a tag value is cut to.
 */
export const MAX_KEY_CHARS = 128;

/** A drain-level tag list; cache entries point to theirs, compared by identity. */
export interface Base {
  /** `[]` or `['app:<name>']`. */
  tags: readonly string[];
}

/** One sample kind (name, type, tags) and what this body has merged into it so far. */
export class Slot {
  /** Handed to the target, which copies what it keeps; only `value` changes. */
  readonly sample: Sample;
  /** What an app metric's slot is found by, besides its name: base, kind, unit and `source` tag. */
  base: Base | undefined;
  kind: L2metKind | undefined;
  unit: string | undefined;
  sourceTag = '';
  /** Sum of the merged counter increments, or the last gauge value. */
  pending = 0;
  /** Samples merged into `pending` in this body; 0 when none is waiting. */
  merged = 0;
  /** Window start in which a fractional counter value went through; no merging there. */
  fractionalWindow = -1;

  constructor(name: string, type: Sample['type'], tags: readonly string[]) {
    this.sample = { name, type, value: 0, tags };
  }
}

/**
 * Short lists of cache entries by key, bounded in total ({@link MAX_CACHED}) and per key
 * ({@link MAX_PER_KEY}): when full, it starts over rather than grow, as hostile input could make it.
 */
export class BoundedLists<V> {
  private readonly lists = new Map<string, V[]>();
  private count = 0;

  /** Entries held, over every key. */
  get size(): number {
    return this.count;
  }

  /** The entries under `key`, if any; callers search them by comparing fields. */
  get(key: string): V[] | undefined {
    return this.lists.get(key);
  }

  /** Adds `value` under `key`, first emptying everything at the total bound or that key's list at its bound. */
  add(key: string, value: V): void {
    if (this.count >= MAX_CACHED) this.clear();
    let list = this.lists.get(key);
    if (list === undefined) this.lists.set(key, (list = []));
    else if (list.length >= MAX_PER_KEY) {
      this.count -= list.length;
      list.length = 0;
    }
    list.push(value);
    this.count++;
  }

  /** Forgets every entry. */
  clear(): void {
    this.lists.clear();
    this.count = 0;
  }
}

/** Hands slot values to the target: counters and gauges merged per body, everything else at once. */
export class SlotMerger {
  private readonly touched: Slot[] = [];
  /** Start of the window the current body goes to, read once per body. */
  windowStart = 0;

  constructor(private readonly target: IngestTarget) {}

  /** Starts a body: the window it goes to is the one open now. */
  begin(): void {
    this.windowStart = this.target.windowStartMs;
  }

  /** Hands over one sample in object form at once (lines off the hot path). */
  add(sample: Sample): void {
    this.target.addSample(sample);
  }

  /** Hands over `v` at once: timers, histograms, and values that must not be merged. */
  direct(slot: Slot, v: number): void {
    slot.sample.value = v;
    this.target.addSample(slot.sample);
  }

  /** A counter increment: merged when whole, else handed over in order with what was waiting. */
  count(slot: Slot, v: number): void {
    if (Number.isSafeInteger(v) && slot.fractionalWindow !== this.windowStart) {
      if (slot.merged === 0) {
        this.touched.push(slot);
        slot.pending = v;
        slot.merged = 1;
        return;
      }
      const sum = slot.pending + v;
      if (Number.isSafeInteger(sum)) {
        slot.pending = sum;
        slot.merged++;
        return;
      }
    } else if (!Number.isSafeInteger(v)) {
      slot.fractionalWindow = this.windowStart;
    }
    // Not mergeable: what is waiting goes first, so the target sees the increments in order.
    if (slot.merged > 0) this.flushSlot(slot);
    this.direct(slot, v);
  }

  /** A gauge setting: only the last one of the body is handed over. */
  gauge(slot: Slot, v: number): void {
    if (slot.merged === 0) this.touched.push(slot);
    slot.pending = v;
    slot.merged++;
  }

  /**
   * Hands over every merged sample now. Called before a line of another kind adds samples, so the
   * target sees everything in line order (a gauge set by both keeps the right last value).
   */
  flush(): void {
    const touched = this.touched;
    for (let i = 0; i < touched.length; i++) {
      const slot = touched[i]!;
      if (slot.merged > 0) this.flushSlot(slot);
    }
    touched.length = 0;
  }

  /** Hands over one slot's merged samples early; it stays in `touched` with nothing waiting. */
  private flushSlot(slot: Slot): void {
    const merged = slot.merged;
    slot.sample.value = slot.pending;
    slot.pending = 0;
    slot.merged = 0;
    // The weight makes a full context table count every merged sample as dropped, as one by one would.
    this.target.addSample(slot.sample, merged);
  }
}
