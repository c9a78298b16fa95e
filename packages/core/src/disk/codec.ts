/**
 * A closed window as bytes and back, in slices that yield to the event loop whenever one has taken
 * {@link SLICE_MS}: a 200k-series window is too much work to do in one go without stalling UDP reads.
 *
 * Version 2, the binary record (all integers varints, all values little-endian doubles bit for bit):
 *
 *     u8 2 | f64 windowStartMs | f64 intervalMs | counts ×4 | histogramSketches count + 1 (0: absent)
 *     | string count | strings (byte length, UTF-8) | series | sketches | events | service checks
 *     | histogram sketches
 *
 * Every name, tag, host and text is an index into the record's string table, so a tag shared by
 * 200k series is stored once. A timestamp or interval equal to the window's is a flag bit, not 8 bytes.
 * Sketch bins are delta-coded varint keys and varint counts. A version-1 (JSON lines) record, written
 * before an upgrade, starts with `{` and is still read by {@link decodeBatch}.
 */
import { isAscii } from 'node:buffer';
import type { BatchItemKind } from '../contracts.js';
import type {
  AlertType,
  HistogramSketchSeries,
  MetricBatch,
  Series,
  SeriesType,
  ServiceCheck,
  ServiceCheckStatus,
  SketchData,
  SketchSeries,
  StatsdEvent,
} from '../model.js';
import { ByteReader, ByteWriter, MalformedRecord } from './bytes.js';
import { decodeJsonBatch, decodeJsonMeta } from './codec-json.js';

/**
 * Encoding and decoding yield after this long. A loop turn reads at most 32 datagrams per UDP socket,
 * so at 10k datagrams/s a turn must stay well under 3 ms: with 4 ms slices the receive queue grew for
 * the whole encode and overflowed (bench scenario 14b lost 5 % of its lines).
 */
const SLICE_MS = 1;
/** Items between two looks at the clock: reading it per item would cost more than some items. */
const CHECK_EVERY = 64;
const VERSION = 2;
const KINDS: readonly BatchItemKind[] = ['series', 'sketches', 'events', 'serviceChecks'];

/** Every item kind of a batch, in record order. */
export const BATCH_ITEM_KINDS: readonly BatchItemKind[] = KINDS;

/** What the header of a window record says. */
export interface WindowMeta {
  /** Format version: 1 for JSON lines (read only), 2 for binary. */
  readonly v: 1 | 2;
  /** Window start, unix ms. */
  readonly windowStartMs: number;
  /** Window length, ms. */
  readonly intervalMs: number;
  /** Items of each kind, in {@link BATCH_ITEM_KINDS} order. */
  readonly counts: readonly [number, number, number, number];
}

const SERIES_TYPES: readonly SeriesType[] = ['count', 'rate', 'gauge'];
const ALERT_TYPES: readonly AlertType[] = ['error', 'warning', 'info', 'success'];
// Flag bits shared by series and sketches.
const F_TIMESTAMP = 0x10;
const F_INTERVAL = 0x20;
const F_F64_BINS = 0x40;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Times slices of work and yields to the event loop between them. */
class Slicer {
  private start = performance.now();
  private n = 0;

  /** Called once per item, synchronously (an await per item would cost a microtask each): true when the slice is used up. */
  due(): boolean {
    return ++this.n % CHECK_EVERY === 0 && performance.now() - this.start > SLICE_MS;
  }

  /** Yields to the event loop and starts a new slice. */
  async yield(): Promise<void> {
    await yieldToLoop();
    this.start = performance.now();
  }
}

/** Items in `batch`, every kind together. */
export function batchItems(batch: MetricBatch): number {
  return batch.series.length + batch.sketches.length + batch.events.length + batch.serviceChecks.length;
}

/** The header of a window record. */
export function metaOf(batch: MetricBatch): WindowMeta {
  return {
    v: VERSION,
    windowStartMs: batch.windowStartMs,
    intervalMs: batch.intervalMs,
    counts: [batch.series.length, batch.sketches.length, batch.events.length, batch.serviceChecks.length],
  };
}

/**
 * Strings (and tags arrays) a record indexes for de-duplication, at most. Probing a Map of a few
 * thousand entries is cheap; one of 400k (a window where nearly every context has a name of its own)
 * misses the CPU caches on every probe, ~1 µs each, and that was most of the encoding's CPU at 200k
 * contexts. Past the bound, strings not yet indexed are appended again where they recur, which the
 * format allows (the table may hold a string twice); the first 16k distinct names, tags and hosts of
 * a window, which cover the usual few names × many tag sets, are still stored once.
 */
const INDEXED_MAX = 16_384;

/** Builds the string table while the items are written. */
class StringTable {
  private readonly index = new Map<string, number>();
  /** Strings in the table. */
  size = 0;

  constructor(
    /** The table's bytes, each string as it is first seen. */
    readonly out: ByteWriter,
  ) {}

  /** The index of `s`, added when new (or when the index is full and `s` is not in it). */
  ref(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.add(s);
      if (this.index.size < INDEXED_MAX) this.index.set(s, i);
    }
    return i;
  }

  /** Appends `s` without looking for it: a new entry, even if `s` is in the table already. */
  add(s: string): number {
    this.out.str(s);
    return this.size++;
  }
}

/** Names looked up before deciding whether looking names up pays (see {@link ItemWriter.name}). */
const NAME_SAMPLE = 4096;

const intBins = (d: SketchData): boolean => {
  const { keys, counts } = d;
  if (keys.length !== counts.length) return false;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const c = counts[i]!;
    if (!Number.isInteger(k) || k < -0x40000000 || k > 0x3fffffff || !Number.isInteger(c) || c < 0 || c > 0x7fffffff) return false;
  }
  return true;
};

/**
 * The memory {@link encodeBatch} writes a record into, reusable from one record to the next: the
 * buffers it returns are views of it, valid until it encodes the next record.
 */
export class EncodeScratch {
  /** The items' bytes. */
  readonly items = new ByteWriter(1024 * 1024);
  /** The string table's bytes. */
  readonly strings = new ByteWriter();
}

/** Writes the fields items of every kind share the layout of. */
class ItemWriter {
  readonly w: ByteWriter;
  readonly strings: StringTable;
  /**
   * Table indices of each tags array's strings. Core interns tag lists (every context with the same
   * tags shares one array), so one identity probe here replaces a string probe per tag: the string
   * probes were most of the encoding's CPU. The first sight of an array adds its strings in order, so
   * the bytes are those of a probe per tag.
   */
  private readonly tagRefs = new Map<readonly string[], number[]>();
  /** The last host and its index: nearly every item of a window has the same host. */
  private lastHost: string | undefined;
  private lastHostRef = 0;
  private lastName: string | undefined;
  private lastNameRef = 0;
  /** Whether names are still looked up in the table, and how the last sample of lookups went. */
  private probeNames = true;
  private nameProbes = 0;
  private nameHits = 0;

  constructor(
    private readonly timestamp: number,
    private readonly interval: number,
    scratch: EncodeScratch,
  ) {
    scratch.items.reset();
    scratch.strings.reset();
    this.w = scratch.items;
    this.strings = new StringTable(scratch.strings);
  }

  /** Flag bits for a timestamp and interval that differ from the window's. */
  timeFlags(timestamp: number, interval: number): number {
    return (Object.is(timestamp, this.timestamp) ? 0 : F_TIMESTAMP) | (Object.is(interval, this.interval) ? 0 : F_INTERVAL);
  }

  time(flags: number, timestamp: number, interval: number): void {
    if (flags & F_TIMESTAMP) this.w.f64(timestamp);
    if (flags & F_INTERVAL) this.w.f64(interval);
  }

  str(s: string): void {
    this.w.varuint(this.strings.ref(s));
  }

  /** An optional string: 0 when absent, else index + 1. */
  opt(s: string | undefined): void {
    this.w.varuint(s === undefined ? 0 : this.strings.ref(s) + 1);
  }

  /**
   * A series or sketch name. Names repeat when a few names carry many tag sets, and are nearly all
   * new when each context has a name of its own (bench scenario 7); in that case a lookup per name
   * costs CPU and saves nothing. So after {@link NAME_SAMPLE} lookups that found less than one name in
   * eight already in the table, the rest are appended without one (the same name may then be in the
   * table twice, which the format allows). A run of equal names shares one entry either way.
   */
  name(n: string): void {
    if (n !== this.lastName) {
      this.lastName = n;
      if (!this.probeNames) {
        this.lastNameRef = this.strings.add(n);
      } else {
        const before = this.strings.size;
        this.lastNameRef = this.strings.ref(n);
        if (this.strings.size === before) this.nameHits++;
        if (++this.nameProbes === NAME_SAMPLE) this.probeNames = this.nameHits * 8 >= NAME_SAMPLE;
      }
    }
    this.w.varuint(this.lastNameRef);
  }

  /** An item's host: an index into the table, as {@link str}. */
  host(h: string): void {
    if (h !== this.lastHost) {
      this.lastHostRef = this.strings.ref(h);
      this.lastHost = h;
    }
    this.w.varuint(this.lastHostRef);
  }

  tags(tags: readonly string[]): void {
    let refs = this.tagRefs.get(tags);
    // A changed length means the array was reused for other tags after all (they are readonly in the model).
    if (refs === undefined || refs.length !== tags.length) {
      refs = new Array<number>(tags.length);
      for (let i = 0; i < tags.length; i++) refs[i] = this.strings.ref(tags[i]!);
      if (this.tagRefs.size < INDEXED_MAX) this.tagRefs.set(tags, refs);
    }
    this.w.varuint(refs.length);
    for (let i = 0; i < refs.length; i++) this.w.varuint(refs[i]!);
  }

  series(s: Series): void {
    const flags = SERIES_TYPES.indexOf(s.type) | (s.aggregateOf === 'h' ? 0x04 : s.aggregateOf === 'ms' ? 0x08 : 0) | this.timeFlags(s.timestamp, s.interval);
    this.w.u8(flags);
    this.name(s.metric);
    this.host(s.host);
    this.tags(s.tags);
    this.w.f64(s.value);
    this.time(flags, s.timestamp, s.interval);
  }

  sketch(s: SketchSeries, extra: number): void {
    const d = s.sketch;
    const int = intBins(d);
    const flags = extra | this.timeFlags(s.timestamp, s.interval) | (int ? 0 : F_F64_BINS);
    this.w.u8(flags);
    this.name(s.metric);
    this.host(s.host);
    this.tags(s.tags);
    this.time(flags, s.timestamp, s.interval);
    this.w.f64(d.count);
    this.w.f64(d.min);
    this.w.f64(d.max);
    this.w.f64(d.sum);
    this.w.f64(d.avg);
    const { keys, counts } = d;
    this.w.varuint(keys.length);
    if (int) {
      let prev = 0;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        this.w.varint(k - prev);
        prev = k;
      }
      for (let i = 0; i < counts.length; i++) this.w.varuint(counts[i]!);
    } else {
      this.w.varuint(counts.length);
      for (let i = 0; i < keys.length; i++) this.w.f64(keys[i]!);
      for (let i = 0; i < counts.length; i++) this.w.f64(counts[i]!);
    }
  }

  event(e: StatsdEvent): void {
    this.w.u8((e.priority === 'low' ? 1 : 0) | (ALERT_TYPES.indexOf(e.alertType) << 1));
    this.str(e.title);
    this.str(e.text);
    this.w.f64(e.timestampS);
    this.opt(e.host);
    this.opt(e.aggregationKey);
    this.opt(e.sourceType);
    this.tags(e.tags);
  }

  check(c: ServiceCheck): void {
    this.w.u8(c.status);
    this.str(c.name);
    this.w.f64(c.timestampS);
    this.opt(c.host);
    this.opt(c.message);
    this.tags(c.tags);
  }
}

/**
 * Encodes `batch` as buffers to write one after the other; yields to the event loop between slices.
 * With `scratch`, the buffers are views of its memory (see {@link EncodeScratch}). Index loops, not `for…of`: in an async function the array iterator is not optimised away, and its
 * result object per item was 60 % of the bytes a 400k-item window allocated (two scavenges per window).
 */
export async function encodeBatch(batch: MetricBatch, scratch = new EncodeScratch()): Promise<Buffer[]> {
  const iw = new ItemWriter(batch.windowStartMs / 1000, batch.intervalMs / 1000, scratch);
  const slicer = new Slicer();
  const { series, sketches, events, serviceChecks } = batch;
  for (let i = 0; i < series.length; i++) {
    iw.series(series[i]!);
    if (slicer.due()) await slicer.yield();
  }
  for (let i = 0; i < sketches.length; i++) {
    iw.sketch(sketches[i]!, 0);
    if (slicer.due()) await slicer.yield();
  }
  for (let i = 0; i < events.length; i++) {
    iw.event(events[i]!);
    if (slicer.due()) await slicer.yield();
  }
  for (let i = 0; i < serviceChecks.length; i++) {
    iw.check(serviceChecks[i]!);
    if (slicer.due()) await slicer.yield();
  }
  const hs = batch.histogramSketches ?? [];
  for (let i = 0; i < hs.length; i++) {
    const s = hs[i]!;
    iw.sketch(s, s.sourceType === 'ms' ? 1 : 0);
    if (slicer.due()) await slicer.yield();
  }
  const head = new ByteWriter(64);
  head.u8(VERSION);
  head.f64(batch.windowStartMs);
  head.f64(batch.intervalMs);
  for (const n of metaOf(batch).counts) head.varuint(n);
  head.varuint(batch.histogramSketches === undefined ? 0 : batch.histogramSketches.length + 1);
  head.varuint(iw.strings.size);
  return [head.bytes(), iw.strings.out.bytes(), iw.w.bytes()];
}

interface BinaryHead {
  meta: WindowMeta;
  /** Histogram sketches + 1, 0 when the batch had none. */
  histograms: number;
  reader: ByteReader;
}

function readHead(data: Buffer): BinaryHead {
  const r = new ByteReader(data, 1);
  const windowStartMs = r.f64();
  const intervalMs = r.f64();
  const counts: [number, number, number, number] = [r.varuint(), r.varuint(), r.varuint(), r.varuint()];
  const histograms = r.varuint();
  return { meta: { v: VERSION, windowStartMs, intervalMs, counts }, histograms, reader: r };
}

/** The header of a window record's data, or undefined when it is not one. */
export function decodeMeta(data: Buffer): WindowMeta | undefined {
  if (data[0] !== VERSION) return decodeJsonMeta(data);
  try {
    return readHead(data).meta;
  } catch {
    return undefined;
  }
}

/** Reads items back against the record's string table. */
class ItemReader {
  constructor(
    private readonly r: ByteReader,
    private readonly table: readonly string[],
    private readonly timestamp: number,
    private readonly interval: number,
  ) {}

  str(): string {
    const s = this.table[this.r.varuint()];
    if (s === undefined) throw new MalformedRecord('string index out of range');
    return s;
  }

  opt(): string | undefined {
    const i = this.r.varuint();
    if (i === 0) return undefined;
    const s = this.table[i - 1];
    if (s === undefined) throw new MalformedRecord('string index out of range');
    return s;
  }

  tags(): string[] {
    const n = this.r.varuint();
    const tags = new Array<string>(n);
    for (let i = 0; i < n; i++) tags[i] = this.str();
    return tags;
  }

  series(): Series {
    const r = this.r;
    const flags = r.u8();
    const type = SERIES_TYPES[flags & 0x03];
    if (type === undefined || flags & 0x80 || (flags & 0x0c) === 0x0c) throw new MalformedRecord('bad series flags');
    const metric = this.str();
    const host = this.str();
    const tags = this.tags();
    const value = r.f64();
    const timestamp = flags & F_TIMESTAMP ? r.f64() : this.timestamp;
    const interval = flags & F_INTERVAL ? r.f64() : this.interval;
    const s: Series = { metric, type, timestamp, value, interval, tags, host };
    if (flags & 0x04) s.aggregateOf = 'h';
    else if (flags & 0x08) s.aggregateOf = 'ms';
    return s;
  }

  sketch(): { flags: number; s: SketchSeries } {
    const r = this.r;
    const flags = r.u8();
    if (flags & 0x8e) throw new MalformedRecord('bad sketch flags');
    const metric = this.str();
    const host = this.str();
    const tags = this.tags();
    const timestamp = flags & F_TIMESTAMP ? r.f64() : this.timestamp;
    const interval = flags & F_INTERVAL ? r.f64() : this.interval;
    const count = r.f64();
    const min = r.f64();
    const max = r.f64();
    const sum = r.f64();
    const avg = r.f64();
    const n = r.varuint();
    if (n > r.remaining) throw new MalformedRecord('more bins than bytes');
    const keys = new Array<number>(n);
    let counts: number[];
    if (flags & F_F64_BINS) {
      const m = r.varuint();
      if (m > r.remaining) throw new MalformedRecord('more bins than bytes');
      counts = new Array<number>(m);
      for (let i = 0; i < n; i++) keys[i] = r.f64();
      for (let i = 0; i < m; i++) counts[i] = r.f64();
    } else {
      counts = new Array<number>(n);
      let prev = 0;
      for (let i = 0; i < n; i++) keys[i] = prev += r.varint();
      for (let i = 0; i < n; i++) counts[i] = r.varuint();
    }
    return { flags, s: { metric, timestamp, interval, tags, host, sketch: { count, min, max, sum, avg, keys, counts } } };
  }

  event(): StatsdEvent {
    const r = this.r;
    const flags = r.u8();
    const alertType = ALERT_TYPES[(flags >> 1) & 0x03];
    if (alertType === undefined || flags & 0xf8) throw new MalformedRecord('bad event flags');
    const title = this.str();
    const text = this.str();
    const timestampS = r.f64();
    const host = this.opt();
    const aggregationKey = this.opt();
    const sourceType = this.opt();
    const e: StatsdEvent = { title, text, timestampS, priority: flags & 1 ? 'low' : 'normal', alertType, tags: [] };
    if (host !== undefined) e.host = host;
    if (aggregationKey !== undefined) e.aggregationKey = aggregationKey;
    if (sourceType !== undefined) e.sourceType = sourceType;
    e.tags = this.tags();
    return e;
  }

  check(): ServiceCheck {
    const r = this.r;
    const status = r.u8();
    if (status > 3) throw new MalformedRecord('bad service check status');
    const name = this.str();
    const timestampS = r.f64();
    const host = this.opt();
    const message = this.opt();
    const c: ServiceCheck = { name, status: status as ServiceCheckStatus, timestampS, tags: [] };
    if (host !== undefined) c.host = host;
    if (message !== undefined) c.message = message;
    c.tags = this.tags();
    return c;
  }
}

/**
 * The string table. Names and tags are nearly always ASCII: then the whole table becomes one string
 * and each entry a slice of it, which costs far less than one buffer decode per entry.
 */
async function readTable(data: Buffer, r: ByteReader, n: number, slicer: Slicer): Promise<string[]> {
  const table = new Array<string>(n);
  const start = r.pos;
  const spans = new Array<number>(2 * n);
  for (let i = 0; i < n; i++) {
    const len = r.varuint();
    spans[2 * i] = r.pos;
    r.skip(len);
    spans[2 * i + 1] = r.pos;
    if (slicer.due()) await slicer.yield();
  }
  if (isAscii(data.subarray(start, r.pos))) {
    const all = data.toString('latin1', start, r.pos);
    for (let i = 0; i < n; i++) table[i] = all.slice(spans[2 * i]! - start, spans[2 * i + 1]! - start);
  } else {
    for (let i = 0; i < n; i++) {
      table[i] = data.toString('utf8', spans[2 * i], spans[2 * i + 1]);
      if (slicer.due()) await slicer.yield();
    }
  }
  return table;
}

async function decodeBinary(data: Buffer): Promise<MetricBatch> {
  const { meta, histograms, reader: r } = readHead(data);
  const slicer = new Slicer();
  const nStrings = r.varuint();
  if (nStrings > r.remaining) throw new MalformedRecord('more strings than bytes');
  const table = await readTable(data, r, nStrings, slicer);
  for (const n of meta.counts) if (n > r.remaining) throw new MalformedRecord('more items than bytes');
  const ir = new ItemReader(r, table, meta.windowStartMs / 1000, meta.intervalMs / 1000);
  const series = new Array<Series>(meta.counts[0]);
  for (let i = 0; i < series.length; i++) {
    series[i] = ir.series();
    if (slicer.due()) await slicer.yield();
  }
  const sketches = new Array<SketchSeries>(meta.counts[1]);
  for (let i = 0; i < sketches.length; i++) {
    const { flags, s } = ir.sketch();
    if (flags & 0x01) throw new MalformedRecord('bad sketch flags');
    sketches[i] = s;
    if (slicer.due()) await slicer.yield();
  }
  const events = new Array<StatsdEvent>(meta.counts[2]);
  for (let i = 0; i < events.length; i++) {
    events[i] = ir.event();
    if (slicer.due()) await slicer.yield();
  }
  const serviceChecks = new Array<ServiceCheck>(meta.counts[3]);
  for (let i = 0; i < serviceChecks.length; i++) {
    serviceChecks[i] = ir.check();
    if (slicer.due()) await slicer.yield();
  }
  const batch: MetricBatch = { windowStartMs: meta.windowStartMs, intervalMs: meta.intervalMs, series, sketches, events, serviceChecks };
  if (histograms > 0) {
    if (histograms - 1 > r.remaining) throw new MalformedRecord('more items than bytes');
    const hs = new Array<HistogramSketchSeries>(histograms - 1);
    for (let i = 0; i < hs.length; i++) {
      const { flags, s } = ir.sketch();
      hs[i] = { ...s, sourceType: flags & 0x01 ? 'ms' : 'h' };
      if (slicer.due()) await slicer.yield();
    }
    batch.histogramSketches = hs;
  }
  if (!r.done) throw new MalformedRecord('bytes after the last item');
  return batch;
}

/** Decodes a window record's data back into a batch; yields between slices. Undefined when it does not parse. */
export async function decodeBatch(data: Buffer): Promise<MetricBatch | undefined> {
  if (data[0] !== VERSION) return decodeJsonBatch(data);
  try {
    return await decodeBinary(data);
  } catch (err) {
    if (err instanceof MalformedRecord || err instanceof RangeError) return undefined;
    throw err;
  }
}
