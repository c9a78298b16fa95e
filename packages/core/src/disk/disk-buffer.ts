/**
 * One sink's disk buffer (`--data-dir`): closed windows in a {@link RecordLog} until the sink has
 * settled them, with the items the destination acknowledged recorded next to them, so that a restart
 * replays each unsettled window once, without what was already delivered. Three record types: a window,
 * the items of a window delivered (index ranges), and a window settled. Segments go oldest first once
 * every window in them is settled; past `maxBytes` the oldest segment is dropped and its windows counted
 * (`disk_full`). An I/O error is logged and survived: the window stays in memory only (`disk_fallback`).
 */
import type { ComponentContext } from '../component.js';
import type { BatchDelivery, BatchItemKind } from '../contracts.js';
import { MdError, type ErrorCode } from '../errors.js';
import { RateLimitedLog } from '../logger.js';
import type { MetricBatch } from '../model.js';
import { EncodeScratch, decodeBatch, decodeMeta, encodeBatch, metaOf, type WindowMeta } from './codec.js';
import { RecordLog, encodeRecord, type EncodedRecord, type RecordRef } from './record-log.js';

const T_WINDOW = 1;
const T_DELIVERED = 2;
const T_SETTLED = 3;
/** After an I/O error, windows stay in memory only for this long before the disk is tried again. */
const RETRY_DISK_MS = 10_000;

/** Settings of a {@link DiskBuffer}. */
export interface DiskBufferOptions {
  /** The sink's own directory (the CLI uses `<data-dir>/sink-<name>`). */
  dir: string;
  /** Bytes the segment files may take; beyond, the oldest segment is dropped (`disk_full`). */
  maxBytes: number;
  /** `fdatasync` every group of appends (default true). */
  fsync?: boolean;
}

/** A window in the disk buffer. */
export class DiskWindow {
  /** Items of each kind done (delivered) in an earlier attempt, one byte per item; allocated on first use. */
  private readonly doneBits: (Uint8Array | undefined)[] = [undefined, undefined, undefined, undefined];
  /** Items already done, every kind together. */
  doneCount = 0;
  /** Settled: every item delivered or lost; its record no longer counts. */
  settled = false;
  /** Cleared when its segment was dropped while the window was still held in memory. */
  onDisk = true;

  constructor(
    /** Where its record is. */
    readonly ref: RecordRef,
    /** Its header: start, interval, item counts. */
    readonly meta: WindowMeta,
    /** True when it was found on disk at start. */
    readonly replayed: boolean,
  ) {}

  /** The stable batch id: segment and offset of its record. */
  get id(): string {
    return `${this.ref.seg}-${this.ref.offset}`;
  }

  /** Items in the window. */
  get items(): number {
    const c = this.meta.counts;
    return c[0] + c[1] + c[2] + c[3];
  }

  /** Whether item `i` of kind number `k` was delivered earlier. */
  isDone(k: number, i: number): boolean {
    return this.doneBits[k]?.[i] === 1;
  }

  /** Marks item `i` of kind number `k` done; false when it already was or is out of range. */
  markDone(k: number, i: number): boolean {
    const n = this.meta.counts[k as 0 | 1 | 2 | 3];
    if (!(i >= 0 && i < n)) return false;
    let bits = this.doneBits[k];
    if (bits === undefined) this.doneBits[k] = bits = new Uint8Array(n);
    if (bits[i] === 1) return false;
    bits[i] = 1;
    this.doneCount++;
    return true;
  }
}

/** What an attempt reports back to the queue. */
export interface AttemptListener {
  /** Every item of the attempt delivered or lost: the window can leave the disk. */
  settled(w: DiskWindow, deliveredAny: boolean): void;
  /** Nothing is held by the sink any more, some items were only kept: export the window again later. */
  kept(w: DiskWindow): void;
}

const KIND_NO: Record<BatchItemKind, number> = { series: 0, sketches: 1, events: 2, serviceChecks: 3 };

/** Index ranges `[from, to)` of sorted-or-not indices, as u32 pairs. */
function ranges(indices: ArrayLike<number>): Buffer {
  const pairs: number[] = [];
  for (let i = 0; i < indices.length; i++) {
    const v = indices[i]!;
    const last = pairs.length - 1;
    if (last > 0 && pairs[last] === v) pairs[last] = v + 1;
    else pairs.push(v, v + 1);
  }
  const out = Buffer.allocUnsafe(pairs.length * 4);
  pairs.forEach((v, i) => out.writeUInt32LE(v, i * 4));
  return out;
}

const refBytes = (ref: RecordRef): Buffer => {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32LE(ref.seg, 0);
  b.writeUInt32LE(ref.offset, 4);
  return b;
};
const refKey = (data: Buffer): string => `${data.readUInt32LE(0)}-${data.readUInt32LE(4)}`;

/** The disk buffer of one sink. */
export class DiskBuffer {
  private readonly windows = new Map<string, DiskWindow>();
  private readonly errorLog = new RateLimitedLog(60_000);
  private diskOffUntil = 0;
  private adding: Promise<void> = Promise.resolve();
  /**
   * The window record's memory, reused by every add: adds run one at a time, and a record's bytes are
   * needed only until its append settles.
   */
  private readonly scratch = new EncodeScratch();

  private constructor(
    private readonly log: RecordLog,
    private readonly opts: DiskBufferOptions,
    private readonly context: ComponentContext<'sink'>,
    /** Called when the bound drops a window's segment; true when the queue gave the window up (count it lost). */
    private readonly evict: (w: DiskWindow) => boolean,
  ) {}

  /**
   * Opens the directory and scans it: the unsettled windows, oldest first, ready to replay. Corrupt
   * and torn records are skipped, counted (`disk_corrupt`) and logged with the file name. Undefined,
   * logged and counted when the directory cannot be used: the sink then runs from memory.
   */
  static async open(
    opts: DiskBufferOptions,
    context: ComponentContext<'sink'>,
    evict: (w: DiskWindow) => boolean,
  ): Promise<{ buffer: DiskBuffer; replay: DiskWindow[] } | undefined> {
    let opened: Awaited<ReturnType<typeof RecordLog.open>>;
    try {
      // Small segments under a small bound, so the bound drops windows, not the whole buffer at once.
      const segmentBytes = Math.max(4096, Math.min(64 * 1024 * 1024, Math.floor(opts.maxBytes / 8)));
      opened = await RecordLog.open(opts.dir, { segmentBytes, fsync: opts.fsync });
    } catch (err) {
      context.stats.count('disk_errors');
      context.logger.error(
        { err: new MdError('MD_ERR_DISK_OPEN', `cannot use data directory ${opts.dir}`, { cause: err }), dir: opts.dir },
        'Data directory unusable; this sink keeps windows in memory only (lost on restart).',
      );
      return undefined;
    }
    const buf = new DiskBuffer(opened.log, opts, context, evict);
    for (const c of opened.corrupt) {
      // Counted in records: what a corrupt record held cannot be read.
      context.drop('disk_corrupt');
      context.logger.error(
        { err: new MdError('MD_ERR_DISK_CORRUPT', 'record failed its checks'), file: c.file, offset: c.offset, bytes: c.bytes, tornTail: c.tail },
        c.tail ? 'Data directory: skipped a torn write at the end of a segment.' : 'Data directory: skipped a corrupt record.',
      );
    }
    const replay: DiskWindow[] = [];
    for (const r of opened.records) {
      if (r.type === T_WINDOW) {
        const meta = decodeMeta(r.data);
        if (meta === undefined) {
          context.drop('disk_corrupt');
          continue;
        }
        const w = new DiskWindow({ seg: r.seg, offset: r.offset, bytes: r.bytes }, meta, true);
        buf.windows.set(w.id, w);
        replay.push(w);
      } else if (r.type === T_DELIVERED && r.data.length >= 9) {
        const w = buf.windows.get(refKey(r.data));
        const k = r.data[8]!;
        for (let p = 9; w !== undefined && p + 8 <= r.data.length; p += 8) {
          const to = r.data.readUInt32LE(p + 4);
          for (let i = r.data.readUInt32LE(p); i < to; i++) w.markDone(k, i);
        }
      } else if (r.type === T_SETTLED && r.data.length >= 8) {
        const w = buf.windows.get(refKey(r.data));
        if (w !== undefined) w.settled = true;
      }
    }
    const pending = replay.filter((w) => !w.settled && w.doneCount < w.items);
    for (const w of replay) if (!pending.includes(w)) buf.windows.delete(w.id);
    await buf.compact();
    return { buffer: buf, replay: pending };
  }

  /** Bytes of the segment files. */
  get bytes(): number {
    return this.log.bytes;
  }

  private ioError(code: ErrorCode, err: unknown, message: string): void {
    this.context.stats.count('disk_errors');
    this.diskOffUntil = Date.now() + RETRY_DISK_MS;
    this.errorLog.maybe((suppressed) =>
      this.context.logger.error({ err: new MdError(code, undefined, { cause: err }), dir: this.opts.dir, suppressed }, message),
    );
  }

  /**
   * Writes `batch` and resolves with its window once it is on disk (synced); undefined when it stays in
   * memory only (an I/O error now or in the last seconds, or a window larger than the bound), counted.
   */
  add(batch: MetricBatch): Promise<DiskWindow | undefined> {
    // One at a time: records keep the windows' order, and each sees the bytes of the one before.
    const next = this.adding.then(() => this.addNow(batch));
    this.adding = next.then(() => undefined);
    return next;
  }

  private async addNow(batch: MetricBatch): Promise<DiskWindow | undefined> {
    if (Date.now() < this.diskOffUntil) return this.fallback();
    try {
      const rec = await encodeRecord(T_WINDOW, await encodeBatch(batch, this.scratch));
      if (rec.bytes > this.opts.maxBytes) return this.fallback();
      await this.makeRoom(rec.bytes);
      const ref = await this.log.append(rec);
      const w = new DiskWindow(ref, metaOf(batch), false);
      this.windows.set(w.id, w);
      this.gauges();
      return w;
    } catch (err) {
      this.ioError('MD_ERR_DISK_WRITE', err, 'Data directory write failed; windows stay in memory only for now.');
      return this.fallback();
    }
  }

  private fallback(): undefined {
    this.context.stats.count('disk_fallback');
    return undefined;
  }

  /** Drops the oldest segments until `bytes` more fit under the bound; their unsettled windows are evicted. */
  private async makeRoom(bytes: number): Promise<void> {
    while (this.log.bytes + bytes > this.opts.maxBytes) {
      const segs = this.log.segments();
      const oldest = segs[0];
      if (oldest === undefined) return;
      if (oldest === this.log.activeSeq) await this.log.rotate();
      let lostItems = 0;
      let lostWindows = 0;
      for (const w of [...this.windows.values()]) {
        if (w.ref.seg !== oldest) continue;
        this.windows.delete(w.id);
        w.onDisk = false;
        if (this.evict(w)) {
          lostItems += w.items - w.doneCount;
          lostWindows++;
        }
      }
      await this.log.dropThrough(oldest);
      if (lostWindows > 0) {
        this.context.drop('disk_full', lostItems, {
          code: 'MD_ERR_DISK_FULL',
          level: 'error',
          fields: { dir: this.opts.dir, maxBytes: this.opts.maxBytes, windows: lostWindows },
          message: 'Data directory bound reached; dropped the oldest windows (see --data-dir-max-bytes).',
        });
      }
    }
  }

  /** Reads a window back; undefined (counted, logged) when its record no longer passes its checks. */
  async load(w: DiskWindow): Promise<MetricBatch | undefined> {
    let batch: MetricBatch | undefined;
    try {
      const rec = await this.log.read(w.ref);
      if (rec !== undefined && rec.type === T_WINDOW) batch = await decodeBatch(rec.data);
    } catch (err) {
      this.ioError('MD_ERR_DISK_READ', err, 'Data directory read failed; the window is lost.');
    }
    if (batch !== undefined) return batch;
    this.context.drop('disk_corrupt', w.items - w.doneCount);
    this.context.logger.error(
      { err: new MdError('MD_ERR_DISK_CORRUPT', 'window record unreadable'), dir: this.opts.dir, segment: w.ref.seg, offset: w.ref.offset },
      'Data directory: a window record no longer reads back; it is lost.',
    );
    return undefined;
  }

  /** The per-item bookkeeping of one export of `w`; what it hears goes to `listener`. */
  attempt(w: DiskWindow, listener: AttemptListener): BatchDelivery {
    const pending = w.items - w.doneCount;
    let delivered = 0;
    let lost = 0;
    let kept = 0;
    let over = false;
    const check = (): void => {
      if (over) return;
      if (delivered + lost >= pending) {
        over = true;
        listener.settled(w, delivered > 0);
      } else if (delivered + lost + kept >= pending) {
        over = true;
        listener.kept(w);
      }
    };
    const attempt: BatchDelivery = {
      batchId: w.id,
      replay: w.replayed || w.doneCount > 0,
      done: (kind, i) => w.isDone(KIND_NO[kind], i),
      delivered: (kind, indices) => {
        const k = KIND_NO[kind];
        let n = 0;
        for (let i = 0; i < indices.length; i++) if (w.markDone(k, indices[i]!)) n++;
        delivered += n;
        if (n > 0 && w.onDisk) void this.record(encodeRecord(T_DELIVERED, [refBytes(w.ref), Buffer.of(k), ranges(indices)]));
        check();
      },
      lost: (_kind, n) => {
        lost += n;
        check();
      },
      kept: (_kind, n) => {
        kept += n;
        // The bound dropped its segment while the window was still in memory: these items are now
        // neither on disk nor with the sink, so they are lost here (the queue does not park it).
        if (!w.onDisk && n > 0) {
          this.context.drop('disk_full', n, {
            code: 'MD_ERR_DISK_FULL',
            level: 'error',
            fields: { dir: this.opts.dir, maxBytes: this.opts.maxBytes, windows: 1 },
            message: 'Data directory bound reached; dropped the oldest windows (see --data-dir-max-bytes).',
          });
        }
        check();
      },
    };
    if (pending <= 0) queueMicrotask(check);
    return attempt;
  }

  /** Checks an attempt that the sink settled without per-item reports (a sink without `tracksDelivery`). */
  async settle(w: DiskWindow): Promise<void> {
    if (w.settled) return;
    w.settled = true;
    if (this.windows.delete(w.id) && w.onDisk) await this.record(encodeRecord(T_SETTLED, [refBytes(w.ref)]));
    await this.compact();
  }

  /** Appends a small bookkeeping record; a failure is logged and counted (a replay may then repeat items). */
  private async record(rec: Promise<EncodedRecord>): Promise<void> {
    try {
      await this.log.append(await rec);
    } catch (err) {
      this.ioError('MD_ERR_DISK_WRITE', err, 'Data directory write failed; a replay after a crash may send some items twice.');
    }
  }

  /** Removes the segments older than the oldest unsettled window. */
  private async compact(): Promise<void> {
    let keepFrom = Number.POSITIVE_INFINITY;
    for (const w of this.windows.values()) keepFrom = Math.min(keepFrom, w.ref.seg);
    try {
      await this.log.dropThrough(keepFrom - 1);
    } catch (err) {
      this.ioError('MD_ERR_DISK_WRITE', err, 'Data directory: removing a settled segment failed.');
    }
    this.gauges();
  }

  private gauges(): void {
    this.context.stats.gauge('disk_buffer_bytes', this.log.bytes);
    this.context.stats.gauge('disk_buffer_windows', this.windows.size);
  }

  /** Waits for queued writes and closes the segment being written. */
  async close(): Promise<void> {
    try {
      await this.log.close();
    } catch (err) {
      this.ioError('MD_ERR_DISK_WRITE', err, 'Data directory: closing the segment failed.');
    }
  }
}
