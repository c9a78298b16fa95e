/**
 * The context table: every live context (name, host, tag set, type), found from a sample's raw bytes
 * (the raw-key index), from an object-form sample (string aliases) or from its normalised fields, with
 * tag sets interned so contexts of one host and tags share their tag array. With a transform, a key
 * seen for the first time is mapped and filtered before its context is resolved, and the key then
 * finds the mapped context (or the blocked mark) directly: the transform runs per key, never per line.
 */
import type { ComponentContext } from './component.js';
import { fnv1aBytes, fnv1aStep, fnv1aString, seededBasis } from './hash.js';
import type { MetricType, Sample } from './model.js';
import type { SampleView } from './parser/types.js';
import { dataViewOf, KeyWords, RawKey, RawKeyIndex, sameBytes, segmentMatches, wordsOf, type RawKeyed } from './raw-index.js';
import { normalizeTags, TagSet } from './tags.js';
import { TransformStage } from './transform/stage.js';

/** Per-context kind, resolved once when the context is created; `h` and `ms` aggregate alike. */
export const enum Kind {
  Counter,
  Gauge,
  Set,
  Histogram,
  Timer,
  Distribution,
}

/** The Kind of each wire type. */
const KIND_OF_TYPE: Readonly<Record<MetricType, Kind>> = { c: Kind.Counter, g: Kind.Gauge, s: Kind.Set, h: Kind.Histogram, ms: Kind.Timer, d: Kind.Distribution };

/** The Kind of a wire type. */
export function kindOf(type: MetricType): Kind {
  return KIND_OF_TYPE[type];
}

/** Wire type of each Kind, so a context need not keep both. */
const TYPE_OF_KIND: readonly MetricType[] = ['c', 'g', 's', 'h', 'ms', 'd'];

/** Wire type byte of each Kind (`m` for `ms`), as the raw index hashes it. */
const TYPE_CODE_OF_KIND: readonly number[] = [0x63, 0x67, 0x73, 0x68, 0x6d, 0x64];

/** A raw alias map can be poisoned by clients sending tags in many orders; cap aliases per context. */
const MAX_ALIASES = 4;

/**
 * Entries of the tag-segment cache (a power of two): direct-mapped and overwritten on a collision, so
 * its memory is bounded whatever the tag cardinality; far more distinct segments than this are rare.
 */
const SEGMENT_CACHE_SIZE = 4096;

/** Tag segments (raw bytes, as latin1) seen lately and their tag sets, in parallel columns. */
class SegmentCache {
  readonly hashes = new Int32Array(SEGMENT_CACHE_SIZE);
  readonly bytes: (string | undefined)[] = new Array<string | undefined>(SEGMENT_CACHE_SIZE).fill(undefined);
  readonly sets: (TagSet | undefined)[] = new Array<TagSet | undefined>(SEGMENT_CACHE_SIZE).fill(undefined);
}

/** Seeded per process, like the raw index, so crafted names cannot all collide. */
const HASH_BASIS = seededBasis();

function tagSetHash(host: string, joined: string): number {
  return fnv1aString(fnv1aStep(fnv1aString(HASH_BASIS, host), 0), joined);
}

function contextHash(kind: Kind, name: string, ts: TagSet): number {
  return fnv1aString(fnv1aStep(ts.hash, kind + 1), name);
}

/**
 * `seen` of a context without samples yet. Far below zero, not -1: a checkpoint restores windows from
 * before the clock's epoch (negative numbers), and a new context must never look already placed in one.
 */
const NEVER_SEEN = -0x40000000;

/**
 * One (name, host, tag set, type), alive across windows while it gets samples. It is also its own
 * entry in the raw index for the first byte form it arrives in, whose bytes its table keeps as words
 * (see {@link Context.rawMatches}).
 */
export class Context implements RawKeyed<Context> {
  /**
   * Window number (see WindowClock) of the last sample; {@link NEVER_SEEN} before the first. A small
   * integer, where an epoch-ms field would cost a boxed number per context.
   */
  seen = NEVER_SEEN;
  /** Slot in the open window's store; valid while `seen` is the open window. */
  slot = 0;
  /**
   * Keys that resolve to this context in the alias map (strings) and the raw index (entries),
   * removed with it: one key alone, or an array once there are several.
   */
  keys: string | RawKey<Context> | (string | RawKey<Context>)[] | undefined;
  /** Next context in the same hash chain of the contexts table. */
  next: Context | undefined = undefined;
  /** A histogram's series names, from its first flush on (see HistogramSeries.names). */
  seriesNames: readonly string[] | undefined = undefined;
  /** Raw-index hash of the byte form this context is its own entry for. */
  rawHash = 0;
  /** Owned by the raw index. */
  rawNext: RawKeyed<Context> | undefined = undefined;
  /** Word offset of its own byte form in `rawWords`; -1 while the context is not its own raw-index entry. */
  rawOff = -1;
  /** Length of the name segment of its own byte form. */
  rawNameLen = 0;
  /** Length of the tag segment of its own byte form (0: none). */
  rawTagsLen = 0;
  /** The table's word store its own byte form is in. */
  rawWords: KeyWords | undefined = undefined;

  constructor(
    /** How its samples aggregate. */
    readonly kind: Kind,
    /** Metric name. */
    readonly name: string,
    /** Its interned host and tags. */
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

  /** Compares type and lengths, then the bytes with its own byte form's words, four bytes per read. */
  rawMatches(type: number, buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number): boolean {
    const nameLen = nameEnd - nameStart;
    const tagsLen = tagsStart >= 0 ? tagsEnd - tagsStart : 0;
    if (type !== TYPE_CODE_OF_KIND[this.kind] || nameLen !== this.rawNameLen || tagsLen !== this.rawTagsLen) return false;
    const words = this.rawWords!.words;
    const dv = dataViewOf(buf);
    const at = this.rawOff;
    return segmentMatches(words, at, dv, nameStart, nameLen) && (tagsLen === 0 || segmentMatches(words, at + wordsOf(nameLen), dv, tagsStart, tagsLen));
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
 * What a key of a blocked metric resolves to: never a live context (not in the table, never given a
 * slot), only compared by identity, so a blocked line costs one raw-index lookup.
 */
export const BLOCKED: Context = new Context(Kind.Counter, '', new TagSet(0, '', '', []));

/** The transform a table applies to keys it has not seen, and the component its counts go to. */
export interface TableTransform {
  /** The compiled stage (not empty). */
  stage: TransformStage;
  /** The `transform` component: `dropped{reason:blocked}`, `tags_excluded`. */
  component: ComponentContext<'transform'>;
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

/** Keys of `ctx` beyond MAX_ALIASES of their form: those taken from the table's shared budget. */
function keysOverCap(ctx: Context): number {
  const keys = ctx.keys;
  if (!Array.isArray(keys)) return 0;
  let aliases = 0;
  for (const k of keys) if (typeof k === 'string') aliases++;
  return Math.max(0, aliases - MAX_ALIASES) + Math.max(0, keys.length - aliases - MAX_ALIASES);
}

/** Records a key of the context; an array is made only for a second key (most contexts have one). */
function addKey(ctx: Context, key: string | RawKey<Context>): void {
  const keys = ctx.keys;
  if (keys === undefined) ctx.keys = key;
  else if (Array.isArray(keys)) keys.push(key);
  else ctx.keys = [keys, key];
}

/** What identifies contexts beyond their samples: the limit, and the host and tags every context gets. */
export interface ContextTableOptions {
  /** Live contexts at most. */
  maxContexts: number;
  /** Host of contexts without a `host:` tag. */
  hostname: string;
  /** Tags added to every context. */
  globalTags: readonly string[];
}

/** Every live context, and the three ways to find one. */
export class ContextTable {
  /**
   * Every live context, by contextHash, chained through `next` on collisions: comparing a context's
   * own fields spares a key string per context.
   */
  private readonly contexts = new Map<number, Context>();
  private live = 0;
  /** Object-form samples' keys (type, name, host, raw tags as given). */
  private readonly aliases = new Map<string, Context>();
  /** StatsD lines' keys: their raw bytes. */
  readonly rawIndex = new RawKeyIndex<Context>();
  /** The byte forms of contexts that are their own raw-index entries. */
  private keyWords = new KeyWords();
  /** Interned tag sets by tagSetHash, chained through `next`. */
  private readonly tagSets = new Map<number, TagSet>();
  /** Tag segments of StatsD lines and their tag sets, used while there is no transform. */
  private segmentCache = new SegmentCache();
  /**
   * Last gauge value of any window per live gauge context, kept only with gaugeDeltas: Etsy deltas
   * build on it, and nothing else reads it.
   */
  readonly lastGauges = new Map<Context, number>();
  /**
   * While set, new contexts ignore maxContexts. Self-metrics set it (a small, bounded set): a table
   * full of user contexts must not hide the very counters that report the drops.
   */
  exempt = false;
  /**
   * Keys past a context's MAX_ALIASES, at most maxContexts in all: a transform maps many keys to one
   * context legitimately (a tag filter, a name template without `$1`), and each key found directly
   * spares the transform on its lines, but the table's memory stays bounded.
   */
  private extraKeys = 0;
  /** Raw keys of blocked metrics, oldest first once full: a ring of at most maxContexts entries. */
  private readonly blockedKeys: RawKey<Context>[] = [];
  private blockedNext = 0;
  /** Set by {@link transform}: whether the last transformed key's context may have other keys too. */
  private collapsed = false;

  constructor(
    private readonly opts: ContextTableOptions,
    /** Mapping, filters and namespace for every key not seen before; none by default. */
    private tf?: TableTransform,
  ) {}

  /**
   * Swaps the transform for every key from now on (a config reload): each byte form and alias is
   * forgotten, so the next line of each is resolved afresh, through the new rules and the options'
   * global tags as they are then. Contexts already made keep their names and tags until they idle out.
   */
  rekey(tf: TableTransform | undefined): void {
    for (const head of this.contexts.values()) {
      for (let ctx: Context | undefined = head; ctx !== undefined; ctx = ctx.next) {
        if (ctx.rawOff >= 0) {
          this.rawIndex.delete(ctx);
          ctx.rawOff = -1;
          ctx.rawWords = undefined;
        }
        const keys = ctx.keys;
        if (keys === undefined) continue;
        if (Array.isArray(keys)) for (const k of keys) this.forgetKey(k);
        else this.forgetKey(keys);
        ctx.keys = undefined;
      }
    }
    for (const k of this.blockedKeys) this.rawIndex.delete(k);
    this.blockedKeys.length = 0;
    this.blockedNext = 0;
    this.extraKeys = 0;
    this.aliases.clear();
    // Global tags may have changed with the transform.
    this.segmentCache = new SegmentCache();
    this.keyWords = new KeyWords();
    this.tf = tf;
  }

  /** Number of live contexts (idle counters included). */
  get size(): number {
    return this.live;
  }

  /** The context of a parsed StatsD line, created if there is room; undefined when the table is full, {@link BLOCKED} when filtered out. */
  ofView(view: SampleView): Context | undefined {
    const { buf, nameStart, nameEnd, tagsStart, tagsEnd } = view;
    // 'ms' and 'h' differ in their first byte, so one byte identifies the type.
    const typeCode = view.type.charCodeAt(0);
    const hash = this.rawIndex.hashAfterName(view.nameHash, typeCode, buf, tagsStart, tagsEnd);
    const ctx = this.rawIndex.get(hash, typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd);
    // The miss path apart: small enough, this lookup is inlined into the caller's per-line code.
    return ctx !== undefined ? ctx : this.ofNewView(view, hash, typeCode);
  }

  /** {@link ofView} for a byte form not in the raw index yet: resolves, creates and indexes its context. */
  private ofNewView(view: SampleView, hash: number, typeCode: number): Context | undefined {
    const { buf, nameStart, nameEnd, tagsStart, tagsEnd } = view;
    const name = buf.toString('utf8', nameStart, nameEnd);
    if (this.tf === undefined) {
      // Without a transform the tag segment alone decides the tag set: no split, sort or join per context.
      const ctx = this.contextIn(kindOf(view.type), name, this.tagSetOfSegment(buf, tagsStart, tagsEnd));
      if (ctx !== undefined) this.addRawKey(ctx, hash, typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd, false);
      return ctx;
    }
    const tags = tagsStart >= 0 ? buf.toString('utf8', tagsStart, tagsEnd).split(',') : [];
    const t = this.transform(name, tags);
    if (t === undefined) {
      this.addBlockedKey(new RawKey(hash, typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd, BLOCKED));
      return BLOCKED;
    }
    const ctx = this.resolve(view.type, t.name, t.tags, undefined);
    if (ctx !== undefined) this.addRawKey(ctx, hash, typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd, this.collapsed);
    return ctx;
  }

  /**
   * The live tag set of a line's tag segment (tagsStart < 0: none) as normalised with the options'
   * global tags and hostname, from the segment cache when it holds these bytes; only valid without a
   * transform, whose rules may change tags per name. Many contexts share few tag segments, so the
   * usual new context costs one hash of its tag bytes instead of split, normalise and join.
   */
  private tagSetOfSegment(buf: Buffer, tagsStart: number, tagsEnd: number): TagSet {
    const len = tagsStart >= 0 ? tagsEnd - tagsStart : 0;
    const h = len > 0 ? fnv1aBytes(HASH_BASIS, buf, tagsStart, tagsEnd) : HASH_BASIS;
    const i = h & (SEGMENT_CACHE_SIZE - 1);
    const cache = this.segmentCache;
    const ts = cache.sets[i];
    // A tag set no context uses any more has left the table; it is made again, not revived.
    if (ts !== undefined && ts.refs > 0 && cache.hashes[i] === h) {
      const bytes = cache.bytes[i]!;
      if (bytes.length === len && (len === 0 || sameBytes(bytes, 0, buf, tagsStart, len))) return ts;
    }
    const raw = len > 0 ? buf.toString('utf8', tagsStart, tagsEnd).split(',') : [];
    const { tags, host } = normalizeTags(raw, this.opts.globalTags);
    const found = this.tagSetOf(host ?? this.opts.hostname, tags);
    cache.hashes[i] = h;
    cache.bytes[i] = len > 0 ? buf.toString('latin1', tagsStart, tagsEnd) : '';
    cache.sets[i] = found;
    return found;
  }

  /**
   * A metric's name and tags after the transform (mapping, namespace, filters), or undefined when the
   * metric is blocked; the name as given when there is no transform. Counts the tags a filter removes.
   * The decision is the stage's, cached per name; the context table calls this once per new key.
   */
  transform(name: string, tags: readonly string[]): { name: string; tags: readonly string[] } | undefined {
    const tf = this.tf;
    this.collapsed = false;
    if (tf === undefined) return { name, tags };
    const d = tf.stage.decide(name);
    if (d.blocked) return undefined;
    const out = TransformStage.applyTags(d, tags);
    if (out.removed > 0) tf.component.stats.count('tags_excluded', out.removed);
    this.collapsed = d.name !== name || d.addTags.length > 0 || d.tagFilter !== undefined;
    return { name: d.name, tags: out.tags };
  }

  /** Counts `n` samples of blocked metrics (see {@link BLOCKED}). */
  dropBlocked(n: number): void {
    this.tf?.component.drop('blocked', n);
  }

  /** Keys currently in the raw-bytes index (contexts' own, aliases and blocked), for bounds checks. */
  get rawKeys(): number {
    return this.rawIndex.size;
  }

  /** Caches a blocked metric's byte form; past maxContexts of them the oldest is forgotten. */
  private addBlockedKey(key: RawKey<Context>): void {
    const ring = this.blockedKeys;
    if (ring.length < this.opts.maxContexts) ring.push(key);
    else {
      this.rawIndex.delete(ring[this.blockedNext]!);
      ring[this.blockedNext] = key;
      this.blockedNext = (this.blockedNext + 1) % ring.length;
    }
    this.rawIndex.add(key);
  }

  /** Whether `ctx` may take one more key of this form, from its own MAX_ALIASES or, if `shared`, the shared budget. */
  private roomFor(ctx: Context, alias: boolean, shared: boolean): boolean {
    if (roomForKey(ctx, alias)) return true;
    if (!shared || this.extraKeys >= this.opts.maxContexts) return false;
    this.extraKeys++;
    return true;
  }

  /** The context of an object-form sample, created if there is room; undefined when the table is full, {@link BLOCKED} when filtered out. */
  ofSample(sample: Sample): Context | undefined {
    const tags = sample.tags ?? [];
    const rawKey = `\u0001${sample.type}\u0000${sample.name}\u0000${sample.host ?? ''}\u0000${tags.join(',')}`;
    let ctx = this.aliases.get(rawKey);
    if (ctx === undefined) {
      // Self-metrics (recorded while exempt) describe this process: no user mapping or filter applies.
      const t = this.exempt ? { name: sample.name, tags } : this.transform(sample.name, tags);
      // Blocked keys are not cached here: the stage's per-name cache answers them without a regex.
      if (t === undefined) return BLOCKED;
      ctx = this.resolve(sample.type, t.name, t.tags, sample.host);
      if (ctx === undefined) return undefined;
      if (this.roomFor(ctx, true, !this.exempt && this.collapsed)) {
        addKey(ctx, rawKey);
        this.aliases.set(rawKey, ctx);
      }
    }
    return ctx;
  }

  private resolve(type: MetricType, name: string, rawTags: readonly string[], hostOverride: string | undefined): Context | undefined {
    const { tags, host } = normalizeTags(rawTags, this.opts.globalTags);
    return this.lookup(type, name, hostOverride ?? host ?? this.opts.hostname, tags);
  }

  /** The context of (type, name, host, normalised tags), created if there is room; undefined when full. */
  lookup(type: MetricType, name: string, host: string, tags: readonly string[]): Context | undefined {
    return this.contextIn(kindOf(type), name, this.tagSetOf(host, tags));
  }

  /**
   * The tag set of (host, normalised tags), interned. A new one has no contexts yet (refs 0) and stays
   * out of the table until {@link contextIn} gives it one, so a full table leaves nothing behind.
   */
  private tagSetOf(host: string, tags: readonly string[]): TagSet {
    const joined = tags.join(',');
    const tsHash = tagSetHash(host, joined);
    let ts = this.tagSets.get(tsHash);
    while (ts !== undefined && (ts.joined !== joined || ts.host !== host)) ts = ts.next;
    return ts ?? new TagSet(tsHash, host, joined, tags);
  }

  /** The context of (kind, name, tag set), created if there is room; undefined when full. */
  private contextIn(kind: Kind, name: string, ts: TagSet): Context | undefined {
    const hash = contextHash(kind, name, ts);
    // The chain head serves both the search and the new context's link: one Map lookup, not two.
    const head = this.contexts.get(hash);
    if (ts.refs > 0) {
      for (let ctx = head; ctx !== undefined; ctx = ctx.next) {
        if (ctx.tagSet === ts && ctx.kind === kind && ctx.name === name) return ctx;
      }
    }
    if (this.live >= this.opts.maxContexts && !this.exempt) return undefined;
    if (ts.refs++ === 0) {
      // Contexts differing only in name or type share one tag array (and its strings).
      ts.next = this.tagSets.get(ts.hash);
      this.tagSets.set(ts.hash, ts);
    }
    const ctx = new Context(kind, name, ts);
    ctx.next = head;
    this.contexts.set(hash, ctx);
    this.live++;
    return ctx;
  }

  /**
   * Makes this byte form find the context: the context is its own entry for its first form (its
   * bytes kept as words in the table's store); any other form gets a RawKey, up to MAX_ALIASES, or
   * from the shared budget when `shared` (a transform maps several keys to it).
   */
  private addRawKey(ctx: Context, hash: number, typeCode: number, buf: Buffer, nameStart: number, nameEnd: number, tagsStart: number, tagsEnd: number, shared: boolean): void {
    if (ctx.rawOff < 0) {
      if (this.keyWords.wantsCompaction) this.compactKeyWords();
      ctx.rawOff = this.keyWords.add(buf, nameStart, nameEnd, tagsStart, tagsEnd);
      ctx.rawNameLen = nameEnd - nameStart;
      ctx.rawTagsLen = tagsStart >= 0 ? tagsEnd - tagsStart : 0;
      ctx.rawWords = this.keyWords;
      ctx.rawHash = hash;
      this.rawIndex.add(ctx);
      return;
    }
    if (!this.roomFor(ctx, false, shared)) return;
    const key = new RawKey(hash, typeCode, buf, nameStart, nameEnd, tagsStart, tagsEnd, ctx);
    this.rawIndex.add(key);
    addKey(ctx, key);
  }

  /** Moves every live context's byte form into a fresh store, leaving the dead words behind. */
  private compactKeyWords(): void {
    const from = this.keyWords;
    const into = new KeyWords();
    for (const head of this.contexts.values()) {
      for (let ctx: Context | undefined = head; ctx !== undefined; ctx = ctx.next) {
        if (ctx.rawOff < 0) continue;
        ctx.rawOff = from.moveTo(into, ctx.rawOff, wordsOf(ctx.rawNameLen) + wordsOf(ctx.rawTagsLen));
        ctx.rawWords = into;
      }
    }
    this.keyWords = into;
  }

  /** The hash chains of every live context, for a walk over all of them (see {@link forget} on walking). */
  chains(): IterableIterator<Context> {
    return this.contexts.values();
  }

  /** Forgets every context not seen in window number `windowNo`. */
  forgetUnseen(windowNo: number): void {
    for (const head of this.contexts.values()) {
      for (let ctx: Context | undefined = head; ctx !== undefined; ) {
        const next: Context | undefined = ctx.next;
        if (ctx.seen !== windowNo) this.forget(ctx);
        ctx = next;
      }
    }
  }

  /** Removes a context and every key of it; a walk of {@link chains} paused on it still goes on. */
  forget(ctx: Context): void {
    const ts = ctx.tagSet;
    unchain(this.contexts, contextHash(ctx.kind, ctx.name, ts), ctx);
    this.live--;
    if (--ts.refs === 0) unchain(this.tagSets, ts.hash, ts);
    if (ctx.rawOff >= 0) {
      this.rawIndex.delete(ctx);
      ctx.rawWords!.free(ctx.rawNameLen, ctx.rawTagsLen);
      ctx.rawOff = -1;
    }
    if (ctx.kind === Kind.Gauge) this.lastGauges.delete(ctx);
    this.extraKeys -= keysOverCap(ctx);
    const keys = ctx.keys;
    if (keys === undefined) return;
    if (Array.isArray(keys)) for (const k of keys) this.forgetKey(k);
    else this.forgetKey(keys);
  }

  private forgetKey(key: string | RawKey<Context>): void {
    if (typeof key === 'string') this.aliases.delete(key);
    else this.rawIndex.delete(key);
  }
}
