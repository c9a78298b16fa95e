/**
 * The hot path from router and l2met app lines to the aggregator. It reads lines with the same scanners
 * as `extractLine` and produces the same samples, but keeps, per kind of line, the tag lists and the
 * `Sample` objects it hands over, instead of building them again for every line: a drain repeats the
 * same few dynos, statuses and metric names all day, and building them was most of the cost.
 *
 * Within one body, counter increments (whole numbers) and gauge settings of the same sample are added
 * up and handed over once when the body ends, still before it is answered. Gauges keep the last value,
 * as the aggregator would; counters are exact because whole-number sums below 2^53 are exact in any
 * order. A counter that ever gets a fractional value here is not merged for the rest of the window,
 * so its sum is built in arrival order as before. Only a context that another listener feeds
 * fractions in the same window could see its sum differ in the last bit.
 */
import type { Aggregator, ComponentStats, Sample } from '@metrics-distributor/core';
import {
  RouterField,
  isRouterAt,
  routerErrors,
  routerFields,
  routerMethod,
  routerOffsets,
  routerStatus,
  routerString,
  routerStrings,
  routerTags,
  routerValue,
  scanRouterOffsets,
  tag,
  type OnBad,
  type RouterFields,
} from './heroku.js';
import { L2MET_TYPES, LogfmtCursor, cleanName, l2metKindAt, nameUnit, scanUnitValue, scanned, type L2metKind } from './l2met.js';

/** Entries kept in each cache before it is emptied: bounds memory whatever the drains send. */
export const MAX_CACHED = 4096;
/** Distinct drain-level tag lists (`app:`) remembered before every cache is emptied. */
export const MAX_BASES = 64;

/** One sample kind (name, type, tags) and what this body has merged into it so far. */
class Slot {
  /** Handed to the aggregator, which copies what it keeps; only `value` changes. */
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

/** Slots of one router line kind (base, method, status, dyno). */
interface RouterEntry {
  base: Base;
  method: string | undefined;
  status: string | undefined;
  request: Slot;
  connect: Slot;
  service: Slot;
  bytes: Slot;
  /** Dyno tags, for `heroku.error` on error lines. */
  dyno: string[];
}

/** A drain-level tag list; cache entries point to theirs, compared by identity. */
interface Base {
  tags: readonly string[];
}

/** Router line kinds compared in place before the cache is searched; a drain has a handful of dynos. */
const RECENT_ROUTERS = 16;

/** A recently seen router line kind: its raw method, status and dyno values (undefined: absent or bare). */
interface RecentRouter {
  entry: RouterEntry;
  method: string | undefined;
  status: string | undefined;
  dyno: string | undefined;
}

/** True when value `k` of a scanned line is exactly `raw` (undefined: absent or bare). */
function rangeIs(msg: string, pos: Int32Array, k: number, raw: string | undefined): boolean {
  const start = pos[2 * k]!;
  if (raw === undefined) return start < 0;
  return start >= 0 && pos[2 * k + 1]! - start === raw.length && msg.startsWith(raw, start);
}

/** Places in an app line whose key is remembered; l2met lines hold a few pairs. */
const MAX_KEY_MEMO = 16;
/** `source=` values compared in place before the tag cache is searched. */
const RECENT_SOURCES = 8;

/** What an app-line key means: `source`, an l2met metric (its cleaned name and any unit segment), or nothing. */
interface KeyMemo {
  raw: string;
  isSource: boolean;
  kind: L2metKind | undefined;
  /** Cleaned name; undefined when the name is bad (empty or too long). */
  name: string | undefined;
  /** The unit written as the last name segment, and the name without it. */
  suffix: string | undefined;
  stripped: string | undefined;
  /** The last value unit seen with this key, so the same one is not cut again. */
  unit: string | undefined;
}

function describeKey(raw: string): KeyMemo {
  const kind = l2metKindAt(raw, 0);
  const name = kind === undefined ? undefined : cleanName(raw.slice(kind.length + 1));
  const dot = name === undefined ? -1 : name.lastIndexOf('.');
  const suffix = name === undefined ? undefined : nameUnit(name, dot);
  return { raw, isSource: raw === 'source', kind, name, suffix, stripped: suffix === undefined ? undefined : name!.slice(0, dot), unit: undefined };
}

/**
 * Longest raw `dyno=` or `source=` value used as a cache key: above any dyno name `dynoTags` accepts
 * (69 characters) and the 100 characters a tag value is cut to.
 */
const MAX_KEY_CHARS = 128;

/** Entries kept under one name (dyno, metric name) before that list is emptied. */
const MAX_PER_NAME = 64;

/**
 * Short lists of cache entries by key, bounded in total ({@link MAX_CACHED}) and per key
 * ({@link MAX_PER_NAME}): when full, it starts over rather than grow, as hostile input could make it.
 */
class BoundedLists<V> {
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
    else if (list.length >= MAX_PER_NAME) {
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

/** Feeds router and l2met app lines into one aggregator through cached samples; one per front-end. */
export class SampleFeed {
  private readonly bases = new Map<string, Base>();
  /**
   * Router entries by raw `dyno=` value, then app metric slots by cleaned name and `source=` tags by
   * raw value. The few entries under one key are told apart by comparing fields, which costs less
   * than building a composite string key for every line.
   */
  private readonly routers = new BoundedLists<RouterEntry>();
  private readonly slots = new BoundedLists<Slot>();
  private readonly sourceTags = new Map<string, string>();
  private readonly touched: Slot[] = [];
  private readonly fields = routerFields();
  private readonly offsets = routerOffsets();
  private readonly recentRouters: RecentRouter[] = [];
  /** What the key at each place of the last app lines meant. */
  private readonly keyMemo: (KeyMemo | undefined)[] = [];
  private readonly recentSources: { raw: string; tag: string }[] = [];
  private recentSourceNext = 0;
  private recentNext = 0;
  private readonly cursor = new LogfmtCursor();
  private readonly errors: Sample[] = [];
  /** Metrics found in the current app line; `source=` may come after them, so they wait for it. */
  private readonly kinds: L2metKind[] = [];
  private readonly names: string[] = [];
  private readonly values: number[] = [];
  private readonly units: (string | undefined)[] = [];
  private readonly aggStats: ComponentStats;
  private base: Base | undefined;
  private windowStart = 0;

  constructor(private readonly aggregator: Aggregator) {
    this.aggStats = aggregator.stats.component('aggregator');
  }

  /**
   * Starts a body whose samples all carry `base`. False when this base cannot be cached (the caller
   * then uses the generic path for the whole body).
   */
  begin(base: readonly string[]): boolean {
    this.base = undefined;
    this.windowStart = this.aggregator.currentWindowStart;
    const key = base.length === 0 ? '' : base.length === 1 ? base[0]! : base.join('\u0000');
    let b = this.bases.get(key);
    if (b === undefined) {
      // Only `app:` tags (what the routes pass): a base `source:` or `unit:` tag could make two cached
      // samples one context, and their merged values would then arrive out of order.
      if (!base.every((t) => t.startsWith('app:'))) return false;
      if (this.bases.size >= MAX_BASES) this.clear();
      b = { tags: base.slice() };
      this.bases.set(key, b);
    } else if (!sameTags(b.tags, base)) {
      // Two lists joined the same way (a tag holding the separator): not worth a second cache.
      return false;
    }
    this.base = b;
    return true;
  }

  /** Hands over what the body merged; must be called once its lines are done. */
  end(): void {
    this.flush();
    this.base = undefined;
  }

  /**
   * Hands over every merged sample now. Called before a line of another kind adds samples, so the
   * aggregator sees everything in line order (a gauge set by both keeps the right last value).
   */
  flush(): void {
    const touched = this.touched;
    for (let i = 0; i < touched.length; i++) {
      const slot = touched[i]!;
      if (slot.merged > 0) this.flushSlot(slot);
    }
    touched.length = 0;
  }

  /** A `heroku router` line, as `extractRouter` reads it; returns the number of samples. */
  router(msg: string, onBad: OnBad): number {
    const o = scanRouterOffsets(msg, this.offsets);
    const pos = o.at;
    // Escaped values are rare: read them as strings, the plain path's way.
    if (o.escaped !== 0) return this.routerFromStrings(routerStrings(msg, o, this.fields), onBad);
    const atStart = pos[0]!;
    const atLen = pos[1]! - atStart;
    const isError = atLen === 5 && msg.startsWith('error', atStart);
    if (!isError && !(atLen === 4 && msg.startsWith('info', atStart))) return 0;
    const base = this.base!;
    let e: RouterEntry | undefined;
    // The last kinds of line seen, compared in place: no string is cut for the usual line.
    const recent = this.recentRouters;
    for (let i = 0; i < recent.length; i++) {
      const r = recent[i]!;
      if (r.entry.base === base && rangeIs(msg, pos, RouterField.Dyno, r.dyno) && rangeIs(msg, pos, RouterField.Status, r.status) && rangeIs(msg, pos, RouterField.Method, r.method)) {
        e = r.entry;
        break;
      }
    }
    if (e === undefined) {
      const rawMethod = routerString(msg, o, RouterField.Method);
      const rawStatus = routerString(msg, o, RouterField.Status);
      const rawDyno = routerString(msg, o, RouterField.Dyno);
      e = this.routerEntry(base, routerMethod(rawMethod), routerStatus(rawStatus), rawDyno);
      recent[this.recentNext] = { entry: e, method: rawMethod, status: rawStatus, dyno: rawDyno };
      this.recentNext = (this.recentNext + 1) % RECENT_ROUTERS;
    }
    let n = 1;
    this.count(e.request, 1);
    n += this.routerValueAt(msg, pos, RouterField.Connect, 'connect', e.connect, onBad);
    n += this.routerValueAt(msg, pos, RouterField.Service, 'service', e.service, onBad);
    n += this.routerValueAt(msg, pos, RouterField.Bytes, 'bytes', e.bytes, onBad);
    if (isError && pos[2 * RouterField.Code]! >= 0) n += this.routerErrors(routerStrings(msg, o, this.fields), base, e);
    return n;
  }

  /** {@link router} for a line read into strings. */
  private routerFromStrings(f: RouterFields, onBad: OnBad): number {
    if (!isRouterAt(f.at)) return 0;
    const base = this.base!;
    const e = this.routerEntry(base, routerMethod(f.method), routerStatus(f.status), f.dyno);
    let n = 1;
    this.count(e.request, 1);
    n += this.routerField(f.connect, 'connect', e.connect, onBad);
    n += this.routerField(f.service, 'service', e.service, onBad);
    n += this.routerField(f.bytes, 'bytes', e.bytes, onBad);
    if (f.at === 'error' && f.code !== undefined) n += this.routerErrors(f, base, e);
    return n;
  }

  private routerErrors(f: RouterFields, base: Base, e: RouterEntry): number {
    const out = this.errors;
    out.length = 0;
    routerErrors(f, base.tags, e.dyno, out);
    if (out.length === 0) return 0;
    for (const s of out) this.aggregator.addSample(s);
    return out.length;
  }

  /** The cached entry of a router line kind: cleaned method and status, raw dyno. */
  private routerEntry(base: Base, method: string | undefined, status: string | undefined, rawDyno: string | undefined): RouterEntry {
    // No dyno name is longer than MAX_KEY_CHARS, so a longer value tags like none: share that entry
    // rather than keep a line-sized key.
    if (rawDyno !== undefined && rawDyno.length > MAX_KEY_CHARS) rawDyno = undefined;
    const dyno = rawDyno ?? '';
    const list = this.routers.get(dyno);
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        const x = list[i]!;
        if (x.base === base && x.method === method && x.status === status) return x;
      }
    }
    // Tags from the raw value: an absent dyno and an empty one both give none.
    const t = routerTags(base.tags, method, status, rawDyno);
    const e: RouterEntry = {
      base,
      method,
      status,
      request: new Slot('heroku.router.request', 'c', t.request),
      connect: new Slot('heroku.router.connect', 'ms', t.timer),
      service: new Slot('heroku.router.service', 'ms', t.timer),
      bytes: new Slot('heroku.router.bytes', 'h', t.timer),
      dyno: t.dyno,
    };
    this.routers.add(dyno, e);
    return e;
  }

  /** A router timing or size read in place (as `routerValue` reads it); returns the samples added. */
  private routerValueAt(msg: string, pos: Int32Array, k: RouterField, field: string, slot: Slot, onBad: OnBad): number {
    const start = pos[2 * k]!;
    const end = pos[2 * k + 1]!;
    if (start < 0 || end === start) return 0;
    let ok = scanUnitValue(msg, start, end);
    if (ok) {
      const unitStart = scanned.unitStart;
      const unitLen = end - unitStart;
      if (unitLen > 0) ok = slot.sample.type === 'ms' ? unitLen === 2 && msg.startsWith('ms', unitStart) : unitLen === 5 && msg.startsWith('bytes', unitStart);
    }
    if (!ok) {
      onBad('bad_value', field);
      return 0;
    }
    this.direct(slot, scanned.value);
    return 1;
  }

  private routerField(raw: string | undefined, field: string, slot: Slot, onBad: OnBad): number {
    if (raw === undefined || raw === '') return 0;
    const v = routerValue(raw, slot.sample.type === 'ms' ? 'ms' : 'h');
    if (v === undefined) {
      onBad('bad_value', field);
      return 0;
    }
    this.direct(slot, v);
    return 1;
  }

  /**
   * An application line, as `extractApp` reads it: every `count#`/`sample#`/`measure#` metric, tagged
   * `source` and `unit`. Returns the number of samples.
   */
  app(msg: string, onBad: OnBad): number {
    // Most app lines carry no metric: skip the tokeniser for them.
    if (!msg.includes('#')) return 0;
    const c = this.cursor.reset(msg);
    const { kinds, names, values, units, keyMemo } = this;
    let found = 0;
    let pair = 0;
    let sourceTag: string | undefined;
    // Lines of one app repeat their keys in the same places: the cursor compares the last key seen at
    // this place in place, and only a different key is cut and read again.
    while (c.next(pair < MAX_KEY_MEMO ? keyMemo[pair]?.raw : undefined)) {
      let m = keyMemo[pair];
      if (m === undefined || !c.matched) {
        m = describeKey(c.key());
        if (pair < MAX_KEY_MEMO) keyMemo[pair] = m;
      }
      pair++;
      if (m.isSource) {
        if (sourceTag === undefined && c.valueEnd > c.valueStart) sourceTag = this.sourceTagAt(c);
        continue;
      }
      const kind = m.kind;
      if (kind === undefined) continue;
      if (m.name === undefined) {
        onBad('bad_name', m.raw);
        continue;
      }
      let value: number;
      let unit: string | undefined;
      if (c.valueStart < 0) {
        value = 1;
        unit = undefined;
      } else {
        // A quoted value with escapes is unescaped first; any other is read in place.
        const raw = c.escaped ? c.value()! : msg;
        const start = c.escaped ? 0 : c.valueStart;
        const end = c.escaped ? raw.length : c.valueEnd;
        if (end === start || !scanUnitValue(raw, start, end)) {
          onBad('bad_value', m.raw);
          continue;
        }
        value = scanned.value;
        const unitStart = scanned.unitStart;
        if (unitStart === end) unit = undefined;
        else {
          const last = m.unit;
          unit = last !== undefined && last.length === end - unitStart && raw.startsWith(last, unitStart) ? last : (m.unit = raw.slice(unitStart, end));
        }
      }
      let name = m.name;
      if (unit === undefined && m.suffix !== undefined) {
        unit = m.suffix;
        name = m.stripped!;
      }
      kinds[found] = kind;
      names[found] = name;
      values[found] = value;
      units[found] = unit;
      found++;
    }
    if (found === 0) return 0;
    const base = this.base!;
    sourceTag ??= '';
    for (let i = 0; i < found; i++) {
      const kind = kinds[i]!;
      const name = names[i]!;
      const unit = units[i];
      // Found by what the tags are made of, cleaned (name, unit, source tag): two slots never name
      // one context, so merged values cannot arrive out of order.
      const list = this.slots.get(name);
      let slot: Slot | undefined;
      if (list !== undefined) {
        for (let j = 0; j < list.length; j++) {
          const x = list[j]!;
          if (x.base === base && x.kind === kind && x.unit === unit && x.sourceTag === sourceTag) {
            slot = x;
            break;
          }
        }
      }
      if (slot === undefined) {
        const tags = base.tags.slice();
        if (sourceTag !== '') tags.push(sourceTag);
        const unitTag = tag('unit', unit);
        if (unitTag !== undefined) tags.push(unitTag);
        slot = new Slot(name, L2MET_TYPES[kind], tags);
        slot.base = base;
        slot.kind = kind;
        slot.unit = unit;
        slot.sourceTag = sourceTag;
        this.slots.add(name, slot);
      }
      const v = values[i]!;
      if (kind === 'count') this.count(slot, v);
      else if (kind === 'sample') this.gauge(slot, v);
      else this.direct(slot, v);
    }
    return found;
  }

  private direct(slot: Slot, v: number): void {
    slot.sample.value = v;
    this.aggregator.addSample(slot.sample);
  }

  private count(slot: Slot, v: number): void {
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
    // Not mergeable: what is waiting goes first, so the aggregator sees the increments in order.
    if (slot.merged > 0) this.flushSlot(slot);
    this.direct(slot, v);
  }

  private gauge(slot: Slot, v: number): void {
    if (slot.merged === 0) this.touched.push(slot);
    slot.pending = v;
    slot.merged++;
  }

  /** Hands over one slot's merged samples early; it stays in `touched` with nothing waiting. */
  private flushSlot(slot: Slot): void {
    const merged = slot.merged;
    slot.sample.value = slot.pending;
    slot.pending = 0;
    slot.merged = 0;
    if (merged === 1) {
      this.aggregator.addSample(slot.sample);
      return;
    }
    // A full context table drops each sample; count the merged ones as the aggregator would have.
    const before = this.aggStats.dropped('max_contexts');
    this.aggregator.addSample(slot.sample);
    if (this.aggStats.dropped('max_contexts') > before) this.aggStats.drop('max_contexts', merged - 1);
  }

  /** The `source:` tag of the cursor's (non-empty) value, from the recent ones when it is one of them. */
  private sourceTagAt(c: LogfmtCursor): string {
    const recent = this.recentSources;
    if (!c.escaped) {
      const len = c.valueEnd - c.valueStart;
      for (let i = 0; i < recent.length; i++) {
        const r = recent[i]!;
        if (r.raw.length === len && c.line.startsWith(r.raw, c.valueStart)) return r.tag;
      }
    }
    const raw = c.value()!;
    const t = this.sourceTag(raw);
    recent[this.recentSourceNext] = { raw, tag: t };
    this.recentSourceNext = (this.recentSourceNext + 1) % RECENT_SOURCES;
    return t;
  }

  /** The `source:` tag of a raw `source=` value, '' for none. */
  private sourceTag(source: string | undefined): string {
    if (source === undefined) return '';
    // A long value is cut to the same tag as its first characters; not worth keeping as a key.
    if (source.length > MAX_KEY_CHARS) return tag('source', source) ?? '';
    let t = this.sourceTags.get(source);
    if (t === undefined) {
      if (this.sourceTags.size >= MAX_CACHED) this.sourceTags.clear();
      t = tag('source', source) ?? '';
      this.sourceTags.set(source, t);
    }
    return t;
  }

  private clear(): void {
    this.bases.clear();
    this.routers.clear();
    this.slots.clear();
  }
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
