/**
 * How an application line with l2met metrics (`count#signups=1 measure#db.query=5ms
 * sample#queue=3 source=web.1`) becomes metrics: every `count#` is a counter, `sample#` a gauge and
 * `measure#` a timer (`ms`), named as written (cleaned), tagged `source` (the first non-empty
 * `source=`, wherever it stands in the line) and `unit` (the value's suffix, unconverted, else an
 * l2meter unit written as the last name segment, which is then taken off the name). A bare key counts
 * as 1; an empty or malformed value is dropped as `bad_value`, an empty or over-long name as
 * `bad_name`. `unique#` and the pre-2.0 `measure.x=` forms are ignored.
 *
 * Names, types and tag rules come from `heroku-metrics.ts`; this file finds the pairs and keeps, per
 * metric (name, unit, source), the samples it hands over (see `slots.ts`).
 */
import { L2MET_TYPES, cleanName, l2metKindAt, nameUnit, tag, type L2metKind, type OnBad } from './heroku-metrics.js';
import { LogfmtCursor, scanUnitValue, scanned } from './logfmt.js';
import { BoundedLists, MAX_CACHED, MAX_KEY_CHARS, Slot, type Base, type SlotMerger } from './slots.js';

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

/** Turns app lines into samples through cached slots; one per front-end. */
export class AppLines {
  private readonly cursor = new LogfmtCursor();
  /** Slots by cleaned name; the few under one name are told apart by comparing fields. */
  private readonly slots = new BoundedLists<Slot>();
  /** `source:` tags by raw `source=` value. */
  private readonly sourceTags = new Map<string, string>();
  /** What the key at each place of the last app lines meant. */
  private readonly keyMemo: (KeyMemo | undefined)[] = [];
  private readonly recentSources: { raw: string; tag: string }[] = [];
  private recentSourceNext = 0;
  /** Metrics found in the current line; `source=` may come after them, so they wait for it. */
  private readonly kinds: L2metKind[] = [];
  private readonly names: string[] = [];
  private readonly values: number[] = [];
  private readonly units: (string | undefined)[] = [];

  constructor(private readonly merger: SlotMerger) {}

  /** Cached slots, for the bound tests. */
  get size(): number {
    return this.slots.size;
  }

  /** One app line whose samples carry `base`; returns the number of samples. */
  line(msg: string, base: Base, onBad: OnBad): number {
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
    sourceTag ??= '';
    for (let i = 0; i < found; i++) {
      const kind = kinds[i]!;
      const slot = this.slot(base, kind, names[i]!, units[i], sourceTag);
      const v = values[i]!;
      if (kind === 'count') this.merger.count(slot, v);
      else if (kind === 'sample') this.merger.gauge(slot, v);
      else this.merger.direct(slot, v);
    }
    return found;
  }

  /**
   * The slot of one metric, found by what its tags are made of, cleaned (name, unit, source tag): two
   * slots never name one context, so merged values cannot arrive out of order.
   */
  private slot(base: Base, kind: L2metKind, name: string, unit: string | undefined, sourceTag: string): Slot {
    const list = this.slots.get(name);
    if (list !== undefined) {
      for (let j = 0; j < list.length; j++) {
        const x = list[j]!;
        if (x.base === base && x.kind === kind && x.unit === unit && x.sourceTag === sourceTag) return x;
      }
    }
    const tags = base.tags.slice();
    if (sourceTag !== '') tags.push(sourceTag);
    const unitTag = tag('unit', unit);
    if (unitTag !== undefined) tags.push(unitTag);
    const slot = new Slot(name, L2MET_TYPES[kind], tags);
    slot.base = base;
    slot.kind = kind;
    slot.unit = unit;
    slot.sourceTag = sourceTag;
    this.slots.add(name, slot);
    return slot;
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

  /** The `source:` tag of a raw, non-empty `source=` value. */
  private sourceTag(source: string): string {
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

  /** Forgets every cached slot (their bases are being forgotten). */
  clear(): void {
    this.slots.clear();
  }
}
