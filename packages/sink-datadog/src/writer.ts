/**
 * Builds request bodies in place. A window of hundreds of thousands of series used to become one small
 * Buffer per item, kept alive until its payload was sent: every young-generation GC then had to copy
 * those objects, and those pauses were most of the event-loop delay of a big flush. Here each body is
 * one Buffer plus a table of item offsets, so nothing per item outlives the moment it is encoded, and a
 * body can still be split at item boundaries.
 */
import { isAscii } from 'node:buffer';
import type { Series } from '@metrics-distributor/core';
import { KIND_SPECS, type PayloadKind } from './kinds.js';

/** One finished body: the whole uncompressed request body and where each item starts in it. */
export interface RawPayload {
  /** Prefix, items joined by the kind's separator, suffix: exactly what gets compressed and sent. */
  readonly raw: Buffer;
  /** Offset in `raw` of each item's first byte, ascending; its length is the item count. */
  readonly starts: Uint32Array;
  /** The pooled Buffer `raw` is a view of, to give back to the pool once `raw` is no longer needed. */
  readonly scratch?: Buffer | undefined;
}

/**
 * Scratch Buffers reused across bodies and windows. A fresh multi-megabyte Buffer per body (some 80 MB a
 * window at 200k contexts) is external memory to V8, and that much new external memory per window
 * forced a full mark-compact every window, with pauses of a few hundred ms on a large heap. Bodies are
 * handed to the compressor in their scratch Buffer, which comes back here once compressed.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  /** @param maxFree Buffers kept for reuse at most; beyond, given-back Buffers are left to the GC. */
  constructor(private readonly maxFree: number) {}

  /** A Buffer of at least `min` bytes (contents undefined): the largest free one if big enough, else a new one. */
  take(min: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) if (this.free[i]!.length >= min && (best < 0 || this.free[i]!.length > this.free[best]!.length)) best = i;
    if (best < 0) return Buffer.allocUnsafeSlow(min);
    const b = this.free[best]!;
    this.free[best] = this.free[this.free.length - 1]!;
    this.free.pop();
    return b;
  }

  /** Returns a Buffer taken from {@link take}; the caller must not use it afterwards. */
  give(b: Buffer): void {
    if (this.free.length < this.maxFree) this.free.push(b);
  }

  /** Bytes held for reuse, for tests. */
  get freeBytes(): number {
    let n = 0;
    for (const b of this.free) n += b.length;
    return n;
  }
}

/** Pending text is written to the Buffer once it reaches this many bytes: one native call per many items. */
const TEXT_CHUNK_BYTES = 16_384;
const INITIAL_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);
/** Bodies at least this large are handed over in their scratch Buffer rather than copied out. */
const HAND_OVER_BYTES = 64 * 1024;

/**
 * Appends encoded items to one growing body at a time. Sizes are tracked exactly as items are added
 * (text items come with their UTF-8 length), so the caller can decide where a body ends before adding.
 */
export class PayloadWriter {
  private readonly prefix: Buffer;
  private readonly separator: Buffer;
  private readonly separatorText: string;
  private readonly suffix: Buffer;
  private buf: Buffer;
  /** Bytes written to `buf`. */
  private pos = 0;
  private text = '';
  private textBytes = 0;
  private starts: Uint32Array;
  private n = 0;

  /** @param pool Where scratch Buffers come from; full bodies are handed over in them, see {@link RawPayload.scratch}. */
  constructor(
    kind: PayloadKind,
    private readonly pool: BufferPool = new BufferPool(0),
  ) {
    const spec = KIND_SPECS[kind];
    this.prefix = spec.prefix;
    this.separator = spec.separator;
    // Every separator in use is ASCII, so its length in characters is its length in bytes.
    this.separatorText = spec.separator.toString('latin1');
    this.suffix = spec.suffix;
    this.buf = pool.take(INITIAL_BYTES);
    this.starts = new Uint32Array(1024);
    this.reset();
  }

  /** Items in the open body. */
  get items(): number {
    return this.n;
  }

  /** Size the open body would have if closed now, suffix included. */
  get size(): number {
    return this.pos + this.textBytes + this.suffix.length;
  }

  /** Size the open body would have with one more item of `bytes`. */
  sizeWith(bytes: number): number {
    return this.size + bytes + (this.n > 0 ? this.separator.length : 0);
  }

  /** Adds an item given as text whose UTF-8 length is `bytes` (it must be exact). */
  addText(text: string, bytes: number): void {
    const at = this.startItem();
    this.text += text;
    this.textBytes += bytes;
    this.recordStart(at);
    if (this.textBytes >= TEXT_CHUNK_BYTES) this.flushText();
  }

  /** Adds an item already encoded. */
  addBytes(item: Buffer): void {
    const at = this.startItem();
    this.flushText();
    this.ensure(item.length);
    item.copy(this.buf, this.pos);
    this.pos += item.length;
    this.recordStart(at);
  }

  /** Adds an item of exactly `bytes` bytes that `fill(buf, pos)` writes in place, at `buf[pos]` onwards. */
  addWith(bytes: number, fill: (buf: Buffer, pos: number) => void): void {
    const at = this.startItem();
    this.flushText();
    this.ensure(bytes);
    fill(this.buf, this.pos);
    this.pos += bytes;
    this.recordStart(at);
  }

  /** Closes the open body (undefined when it holds no item) and starts the next one. */
  close(): RawPayload | undefined {
    if (this.n === 0) return undefined;
    this.flushText();
    this.ensure(this.suffix.length);
    this.suffix.copy(this.buf, this.pos);
    this.pos += this.suffix.length;
    const used = this.pos;
    let out: RawPayload;
    if (used >= HAND_OVER_BYTES) {
      // Handed over in its scratch Buffer, slack and all: the sink gives it back to the pool as soon as
      // the body is compressed. The next body likely has about the same size, so it gets a scratch of that size.
      out = { raw: this.buf.subarray(0, used), starts: this.starts.slice(0, this.n), scratch: this.buf };
      this.buf = this.pool.take(Math.max(INITIAL_BYTES, Math.ceil(used * 1.125)));
    } else {
      // A small body: copied out (cheap, and it may be kept for retry without pinning the scratch).
      out = { raw: Buffer.from(this.buf.subarray(0, used)), starts: this.starts.slice(0, this.n) };
    }
    this.reset();
    return out;
  }

  /** Gives the scratch Buffer back to the pool; the writer must not be used afterwards. */
  dispose(): void {
    this.pool.give(this.buf);
    this.buf = EMPTY;
  }

  private reset(): void {
    this.n = 0;
    this.prefix.copy(this.buf, 0);
    this.pos = this.prefix.length;
  }

  /** Writes the separator (as text, so it stays in order with pending text) and returns the item's offset. */
  private startItem(): number {
    if (this.n > 0 && this.separator.length > 0) {
      this.text += this.separatorText;
      this.textBytes += this.separator.length;
    }
    return this.pos + this.textBytes;
  }

  private recordStart(at: number): void {
    if (this.n === this.starts.length) {
      const next = new Uint32Array(this.starts.length * 2);
      next.set(this.starts);
      this.starts = next;
    }
    this.starts[this.n++] = at;
  }

  private flushText(): void {
    if (this.textBytes === 0) return;
    this.ensure(this.textBytes);
    // As many bytes as UTF-16 units means all ASCII if the sizes were right, and then latin1 writes the
    // bytes UTF-8 would at a fraction of the CPU (a copy, not an encode). The bytes are checked, so a
    // wrong size still fails below instead of sending a corrupt body.
    let written = -1;
    if (this.text.length === this.textBytes) {
      written = this.buf.write(this.text, this.pos, 'latin1');
      if (!isAscii(this.buf.subarray(this.pos, this.pos + written))) written = -1;
    }
    if (written < 0) written = this.buf.write(this.text, this.pos, 'utf8');
    if (written !== this.textBytes) throw new Error(`payload writer: ${written} bytes written, ${this.textBytes} expected`);
    this.pos += written;
    this.text = '';
    this.textBytes = 0;
  }

  private ensure(more: number): void {
    if (this.pos + more <= this.buf.length) return;
    const next = this.pool.take(Math.max(this.buf.length * 2, this.pos + more));
    this.buf.copy(next, 0, 0, this.pos);
    this.pool.give(this.buf);
    this.buf = next;
  }
}

/** Splits a body in two at an item boundary (about half the items each), without re-encoding anything. */
export function splitPayload(kind: PayloadKind, p: RawPayload): [RawPayload, RawPayload] {
  const { prefix, separator, suffix } = KIND_SPECS[kind];
  const n = p.starts.length;
  const mid = Math.ceil(n / 2);
  const firstStart = p.starts[0]!;
  const midStart = p.starts[mid]!;
  const end = p.raw.length - suffix.length;
  const part = (from: number, to: number, starts: Uint32Array): RawPayload => {
    const raw = Buffer.concat([prefix, p.raw.subarray(from, to), suffix]);
    const shifted = new Uint32Array(starts.length);
    for (let i = 0; i < starts.length; i++) shifted[i] = starts[i]! - from + prefix.length;
    return { raw, starts: shifted };
  };
  return [part(firstStart, midStart - separator.length, p.starts.subarray(0, mid)), part(midStart, end, p.starts.subarray(mid))];
}

/** The bytes of item `i` of a body. */
export function itemBytes(kind: PayloadKind, p: RawPayload, i: number): Buffer {
  const next = p.starts[i + 1];
  const end = next === undefined ? p.raw.length - KIND_SPECS[kind].suffix.length : next - KIND_SPECS[kind].separator.length;
  return p.raw.subarray(p.starts[i] ?? 0, end);
}

/** `MetricIntakeType` of the v2 API. */
const INTAKE_TYPE = { count: 1, rate: 2, gauge: 3 } as const;

/** The cached JSON after a series' point: host resource and tags, with its UTF-8 length. */
interface Tail {
  readonly json: string;
  readonly bytes: number;
}

/** Tails of one tags array, per host. */
interface TagsEntry {
  /** The last host looked up, checked first: nearly every series of a process has the same host. */
  host: string;
  tail: Tail;
  readonly tagCount: number;
  /** Other hosts seen with these tags, up to {@link HOSTS_PER_TAGS}. */
  others: Map<string, Tail> | undefined;
}

/** Hosts whose tail is cached per tags array; beyond it, tails for further hosts are built each time. */
const HOSTS_PER_TAGS = 256;
/**
 * What JSON.stringify would escape (quote, backslash, control characters) or what takes more UTF-8 bytes
 * than characters (any code unit outside ASCII, surrogates included).
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be found
const NEEDS_CARE = /["\\\u0000-\u001f\u0080-\uffff]/;

/** The JSON between the name (its closing quote included) and the value, for one type, interval and timestamp. */
interface Middle {
  timestamp: number;
  interval: number;
  json: string;
}

/**
 * Encodes v2 series items with the costly part cached. Core interns tag lists: every context with the
 * same tags gets the same array instance, in every window. So the JSON of tags and host (everything
 * after the point) is built once per tags array and host, kept in a WeakMap keyed by that array (it
 * goes when the last context using it goes), with at most {@link HOSTS_PER_TAGS} hosts per array. The
 * type, interval and timestamp are the same for a whole window, so that JSON is reused too; per series
 * only the name and the value are written. Tags arrays are taken as immutable (they are `readonly` in
 * core's model); a changed length is still noticed.
 *
 * The output is byte for byte what the plain encoder of the test oracle (`test/encode.ts`) writes.
 */
export class SeriesEncoder {
  private readonly byTags = new WeakMap<readonly string[], TagsEntry>();
  private readonly middles: Record<keyof typeof INTAKE_TYPE, Middle> = {
    count: { timestamp: Number.NaN, interval: Number.NaN, json: '' },
    rate: { timestamp: Number.NaN, interval: Number.NaN, json: '' },
    gauge: { timestamp: Number.NaN, interval: Number.NaN, json: '' },
  };
  /** The last item's JSON, set by {@link encode}. */
  text = '';
  /** Its UTF-8 length. */
  bytes = 0;

  /** Encodes `s` into {@link text}/{@link bytes}; false (nothing set) for a value JSON cannot carry. */
  encode(s: Series): boolean {
    if (!Number.isFinite(s.value) || !Number.isFinite(s.timestamp)) return false;
    const tail = this.tail(s);
    const middle = this.middle(s);
    const value = `${s.value}`;
    const metric = s.metric;
    if (!NEEDS_CARE.test(metric)) {
      // Plain ASCII with nothing to escape, by far the common case: JSON.stringify would copy it unchanged.
      this.text = '{"metric":"' + metric + middle + value + '}]' + tail.json;
      this.bytes = 11 + metric.length + middle.length + value.length + 2 + tail.bytes;
      return true;
    }
    // JSON.stringify escapes lone surrogates, so the byte count of what it returns is what gets written.
    const name = JSON.stringify(metric).slice(1, -1);
    this.text = '{"metric":"' + name + middle + value + '}]' + tail.json;
    this.bytes = 11 + Buffer.byteLength(name, 'utf8') + middle.length + value.length + 2 + tail.bytes;
    return true;
  }

  /** Hosts cached for a tags array (0 when none): lets tests check the cache stays bounded. */
  cachedHosts(tags: readonly string[]): number {
    const e = this.byTags.get(tags);
    return e === undefined ? 0 : 1 + (e.others?.size ?? 0);
  }

  private middle(s: Series): string {
    // `interval` is int64 on the wire; sub-second windows still report a 1 s interval.
    const interval = Math.max(1, Math.round(s.interval));
    const timestamp = Math.trunc(s.timestamp);
    const m = this.middles[s.type];
    if (m === undefined) {
      // Not a type core produces; written as the generic encoder would, without caching.
      return `","type":${String(INTAKE_TYPE[s.type])},"interval":${interval},"points":[{"timestamp":${timestamp},"value":`;
    }
    if (m.timestamp !== timestamp || m.interval !== interval) {
      m.timestamp = timestamp;
      m.interval = interval;
      m.json = `","type":${INTAKE_TYPE[s.type]},"interval":${interval},"points":[{"timestamp":${timestamp},"value":`;
    }
    return m.json;
  }

  private tail(s: Series): Tail {
    const tags = s.tags;
    const e = this.byTags.get(tags);
    if (e === undefined || e.tagCount !== tags.length) {
      const tail = makeTail(s);
      this.byTags.set(tags, { host: s.host, tail, tagCount: tags.length, others: undefined });
      return tail;
    }
    if (e.host === s.host) return e.tail;
    const others = (e.others ??= new Map<string, Tail>());
    let tail = others.get(s.host);
    if (tail === undefined) tail = makeTail(s);
    else others.delete(s.host);
    // Swap, so a run of series with the same host hits the first check; the bound drops the previous host's tail.
    if (others.size < HOSTS_PER_TAGS) others.set(e.host, e.tail);
    e.host = s.host;
    e.tail = tail;
    return tail;
  }
}

function makeTail(s: Series): Tail {
  let json = '';
  if (s.host !== '') json += `,"resources":[{"type":"host","name":${JSON.stringify(s.host)}}]`;
  json += `,"tags":${JSON.stringify(s.tags)}}`;
  return { json, bytes: Buffer.byteLength(json, 'utf8') };
}
