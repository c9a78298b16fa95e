/**
 * How a Heroku router line (`heroku router`, `at=info|error method=… status=… dyno=… connect=…ms
 * service=…ms bytes=…`) becomes metrics:
 *
 * - `heroku.router.request` +1, tagged method, status, status_class, dyno, dyno_type;
 * - `heroku.router.connect` and `.service` timers and the `heroku.router.bytes` histogram, tagged
 *   method, status_class, dyno, dyno_type; an empty field (H10: `connect= service= bytes=`) is
 *   skipped, never read as 1, and one that does not parse is dropped as `bad_value`;
 * - on `at=error code=Hxx`, `heroku.router.error` tagged code and `heroku.error` tagged code and dyno.
 *
 * Names, tags and value rules come from `heroku-metrics.ts`; this file finds the fields and keeps,
 * per kind of line (method, status, dyno), the tag lists and samples it hands over (see `slots.ts`).
 */
import type { Sample } from '@metrics-distributor/core';
import { HEROKU_METRICS, ROUTER_VALUES, isHerokuCode, routerErrorSamples, routerMethod, routerStatus, routerTags, scanRouterValue, type OnBad } from './heroku-metrics.js';
import { LogfmtCursor, scanned, unescapeValue } from './logfmt.js';
import { BoundedLists, MAX_KEY_CHARS, Slot, type Base, type SlotMerger } from './slots.js';

/** Indexes of the router fields in {@link RouterOffsets}. */
const enum RouterField {
  At,
  Method,
  Status,
  Dyno,
  Connect,
  Service,
  Bytes,
  Code,
}

/** The router fields read: the first value of each key, undefined when absent or bare. */
interface RouterFields {
  at: string | undefined;
  method: string | undefined;
  status: string | undefined;
  dyno: string | undefined;
  connect: string | undefined;
  service: string | undefined;
  bytes: string | undefined;
  code: string | undefined;
}

/** Keys of the router fields, in {@link RouterField} order. */
const ROUTER_KEYS = ['at', 'method', 'status', 'dyno', 'connect', 'service', 'bytes', 'code'] as const;

/**
 * Where the router fields' values are in a line, filled by {@link scanRouterOffsets}: value `k` is
 * `line[at[2k], at[2k+1])`, with a start of -1 when the key is absent or bare; bit `k` of `escaped` is
 * set when that value is quoted with escapes, to be read with `unescapeValue`.
 */
interface RouterOffsets {
  at: Int32Array;
  escaped: number;
}

/** The field a logfmt key names, or -1. The first character rules out most other keys without a string comparison. */
function routerField(c: LogfmtCursor): number {
  const first = c.line.charCodeAt(c.keyStart);
  switch (c.keyEnd - c.keyStart) {
    case 2:
      return first === 0x61 && c.keyIs('at') ? RouterField.At : -1;
    case 4:
      if (first === 0x64) return c.keyIs('dyno') ? RouterField.Dyno : -1;
      return first === 0x63 && c.keyIs('code') ? RouterField.Code : -1;
    case 5:
      return first === 0x62 && c.keyIs('bytes') ? RouterField.Bytes : -1;
    case 6:
      if (first === 0x6d) return c.keyIs('method') ? RouterField.Method : -1;
      return first === 0x73 && c.keyIs('status') ? RouterField.Status : -1;
    case 7:
      if (first === 0x63) return c.keyIs('connect') ? RouterField.Connect : -1;
      return first === 0x73 && c.keyIs('service') ? RouterField.Service : -1;
    default:
      return -1;
  }
}

/** Places in a router line whose key is remembered (Heroku writes about a dozen pairs). */
const MAX_ROUTER_KEY_MEMO = 16;

/** Every field but `code`, which only counts on `at=error` lines. */
const ALL_BUT_CODE = 0x7f;

/** The fields of router lines, found by offsets: one per front-end, reused for every line. */
class RouterScanner {
  private readonly cursor = new LogfmtCursor();
  /** The key last seen at each place of a router line, and the field it names (-1: none). */
  private readonly keys: string[] = [];
  private readonly fieldAt: number[] = [];
  readonly offsets: RouterOffsets = { at: new Int32Array(16), escaped: 0 };
  readonly fields: RouterFields = { at: undefined, method: undefined, status: undefined, dyno: undefined, connect: undefined, service: undefined, bytes: undefined, code: undefined };

  /**
   * Finds the router fields of a logfmt line, looking only at the keys it needs. The first occurrence
   * of a key wins even when bare, as in a first-wins key/value map: Heroku never repeats a key, and
   * first-wins keeps a forged suffix (`… status=200 status=500`) harmless. On an `at=info` line the
   * scan stops once every other field is found, so a `code` after them is not read: only error lines
   * use it.
   */
  scan(msg: string): RouterOffsets {
    const o = this.offsets;
    const at = o.at;
    at.fill(-1);
    let escaped = 0;
    let seen = 0;
    let info = false;
    const c = this.cursor.reset(msg);
    const keys = this.keys;
    // Router lines repeat their keys in the same places: the cursor compares the key last seen at
    // this place instead of scanning it, and its field is then known.
    for (let pair = 0; c.next(pair < MAX_ROUTER_KEY_MEMO ? keys[pair] : undefined); pair++) {
      let k: number;
      if (c.matched) k = this.fieldAt[pair]!;
      else {
        k = routerField(c);
        if (pair < MAX_ROUTER_KEY_MEMO) {
          keys[pair] = c.key();
          this.fieldAt[pair] = k;
        }
      }
      if (k < 0 || (seen & (1 << k)) !== 0) continue;
      seen |= 1 << k;
      if (c.valueStart >= 0) {
        at[2 * k] = c.valueStart;
        at[2 * k + 1] = c.valueEnd;
        if (c.escaped) escaped |= 1 << k;
        else if (k === (RouterField.At as number)) info = c.valueEnd - c.valueStart === 4 && msg.startsWith('info', c.valueStart);
      }
      if (seen === 255 || (info && seen === ALL_BUT_CODE)) break;
    }
    o.escaped = escaped;
    return o;
  }

  /** Value `k` of the scanned line: undefined when absent or bare. */
  string(msg: string, k: RouterField): string | undefined {
    const o = this.offsets;
    const start = o.at[2 * k]!;
    if (start < 0) return undefined;
    const end = o.at[2 * k + 1]!;
    return (o.escaped & (1 << k)) !== 0 ? unescapeValue(msg, start, end) : msg.slice(start, end);
  }

  /** Every value of the scanned line, as strings. */
  strings(msg: string): RouterFields {
    const f = this.fields;
    for (let k = 0; k < ROUTER_KEYS.length; k++) f[ROUTER_KEYS[k]!] = this.string(msg, k);
    return f;
  }
}

/** Slots of one router line kind (base, method, status, dyno). */
interface RouterEntry {
  base: Base;
  method: string | undefined;
  status: string | undefined;
  request: Slot;
  /** `connect`, `service`, `bytes`, in {@link ROUTER_VALUES} order. */
  values: [Slot, Slot, Slot];
  /** Dyno tags, for `heroku.error` on error lines. */
  dyno: string[];
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

/** Value fields in {@link ROUTER_VALUES} order. */
const VALUE_FIELDS = [RouterField.Connect, RouterField.Service, RouterField.Bytes] as const;

/** Turns router lines into samples through cached slots; one per front-end. */
export class RouterLines {
  private readonly scanner = new RouterScanner();
  /**
   * Entries by raw `dyno=` value; the few under one dyno are told apart by comparing fields, which
   * costs less than building a composite key for every line.
   */
  private readonly entries = new BoundedLists<RouterEntry>();
  private readonly recent: RecentRouter[] = [];
  private recentNext = 0;
  private readonly errors: Sample[] = [];

  constructor(private readonly merger: SlotMerger) {}

  /** Cached entries, for the bound tests. */
  get size(): number {
    return this.entries.size;
  }

  /** One router line whose samples carry `base`; returns the number of samples. */
  line(msg: string, base: Base, onBad: OnBad): number {
    const sc = this.scanner;
    const o = sc.scan(msg);
    const pos = o.at;
    // Escaped values are rare: read them as strings.
    if (o.escaped !== 0) return this.fromStrings(sc.strings(msg), base, onBad);
    const atStart = pos[0]!;
    const atLen = pos[1]! - atStart;
    const isError = atLen === 5 && msg.startsWith('error', atStart);
    if (!isError && !(atLen === 4 && msg.startsWith('info', atStart))) return 0;
    let e: RouterEntry | undefined;
    // The last kinds of line seen, compared in place: no string is cut for the usual line.
    const recent = this.recent;
    for (let i = 0; i < recent.length; i++) {
      const r = recent[i]!;
      if (r.entry.base === base && rangeIs(msg, pos, RouterField.Dyno, r.dyno) && rangeIs(msg, pos, RouterField.Status, r.status) && rangeIs(msg, pos, RouterField.Method, r.method)) {
        e = r.entry;
        break;
      }
    }
    if (e === undefined) {
      const rawMethod = sc.string(msg, RouterField.Method);
      const rawStatus = sc.string(msg, RouterField.Status);
      const rawDyno = sc.string(msg, RouterField.Dyno);
      e = this.entry(base, routerMethod(rawMethod), routerStatus(rawStatus), rawDyno);
      recent[this.recentNext] = { entry: e, method: rawMethod, status: rawStatus, dyno: rawDyno };
      this.recentNext = (this.recentNext + 1) % RECENT_ROUTERS;
    }
    let n = 1;
    this.merger.count(e.request, 1);
    for (let i = 0; i < VALUE_FIELDS.length; i++) {
      const k = VALUE_FIELDS[i]!;
      n += this.value(msg, pos[2 * k]!, pos[2 * k + 1]!, i, e.values[i]!, onBad);
    }
    if (isError && pos[2 * RouterField.Code]! >= 0) n += this.errorSamples(sc.string(msg, RouterField.Code)!, base, e);
    return n;
  }

  /** {@link line} for a line read into strings. */
  private fromStrings(f: RouterFields, base: Base, onBad: OnBad): number {
    if (f.at !== 'info' && f.at !== 'error') return 0;
    const e = this.entry(base, routerMethod(f.method), routerStatus(f.status), f.dyno);
    let n = 1;
    this.merger.count(e.request, 1);
    for (let i = 0; i < ROUTER_VALUES.length; i++) {
      const raw = f[ROUTER_VALUES[i]!.field];
      if (raw !== undefined) n += this.value(raw, 0, raw.length, i, e.values[i]!, onBad);
    }
    if (f.at === 'error' && f.code !== undefined) n += this.errorSamples(f.code, base, e);
    return n;
  }

  /** Value `i` of {@link ROUTER_VALUES} at `s[start, end)` (start -1: absent or bare); returns the samples added. */
  private value(s: string, start: number, end: number, i: number, slot: Slot, onBad: OnBad): number {
    if (start < 0 || end === start) return 0;
    const v = ROUTER_VALUES[i]!;
    if (!scanRouterValue(s, start, end, v.unit)) {
      onBad('bad_value', v.field);
      return 0;
    }
    this.merger.direct(slot, scanned.value);
    return 1;
  }

  /** For `at=error code=Hxx`: the two error counters, handed over at once. */
  private errorSamples(code: string, base: Base, e: RouterEntry): number {
    if (!isHerokuCode(code)) return 0;
    const out = this.errors;
    out.length = 0;
    routerErrorSamples(code, base.tags, e.dyno, out);
    for (const s of out) this.merger.add(s);
    return out.length;
  }

  /** The cached entry of a router line kind: cleaned method and status, raw dyno. */
  private entry(base: Base, method: string | undefined, status: string | undefined, rawDyno: string | undefined): RouterEntry {
    // No dyno name is longer than MAX_KEY_CHARS, so a longer value tags like none: share that entry
    // rather than keep a line-sized key.
    if (rawDyno !== undefined && rawDyno.length > MAX_KEY_CHARS) rawDyno = undefined;
    const dyno = rawDyno ?? '';
    const list = this.entries.get(dyno);
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        const x = list[i]!;
        if (x.base === base && x.method === method && x.status === status) return x;
      }
    }
    // Tags from the raw value: an absent dyno and an empty one both give none.
    const t = routerTags(base.tags, method, status, rawDyno);
    const slot = (m: { name: string; type: Sample['type'] }, tags: string[]): Slot => new Slot(m.name, m.type, tags);
    const e: RouterEntry = {
      base,
      method,
      status,
      request: slot(HEROKU_METRICS.routerRequest, t.request),
      values: [slot(ROUTER_VALUES[0].metric, t.timer), slot(ROUTER_VALUES[1].metric, t.timer), slot(ROUTER_VALUES[2].metric, t.timer)],
      dyno: t.dyno,
    };
    this.entries.add(dyno, e);
    return e;
  }

  /** Forgets every cached entry (their bases are being forgotten). */
  clear(): void {
    this.entries.clear();
    this.recent.length = 0;
    this.recentNext = 0;
  }
}
