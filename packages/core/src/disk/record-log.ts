/**
 * An append-only log of checksummed records in numbered segment files, the storage under a sink's disk
 * buffer. Each record is `magic u32 | length u32 | crc32 u32 | type u8 | data`, all little-endian, the
 * CRC over type and data; a segment starts with an 8-byte file magic. A torn tail (SIGKILL, power cut)
 * or a corrupt record fails its length or CRC check and is skipped by scanning for the next record magic,
 * so no file content can stop a start. Appends are queued, written with fs promises (the libuv pool,
 * never the event loop) and made durable with one `fdatasync` per queued group.
 */
import { crc32 } from 'node:zlib';
import { mkdir, open, readdir, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/** First 8 bytes of every segment file. */
const FILE_MAGIC = Buffer.from('MDLOG\0\0\x01', 'latin1');
/** First 4 bytes of every record: what a scan after a corrupt record looks for. */
const RECORD_MAGIC = 0x4b52444d; // "MDRK"
/** Bytes before a record's type byte. */
const HEADER_BYTES = 12;
/** Segment files are `seg-<16 digits>.mdlog`, so names sort as numbers do. */
const SEGMENT_RE = /^seg-(\d{16})\.mdlog$/;

/** A record's place in the log: its segment's number and its byte offset there. */
export interface RecordRef {
  /** Segment number. */
  readonly seg: number;
  /** Byte offset of the record in its segment. */
  readonly offset: number;
  /** Bytes the record takes on disk, header included. */
  readonly bytes: number;
}

/** A record found by {@link RecordLog.open}'s scan. */
export interface ScannedRecord extends RecordRef {
  /** The record type (the caller's own numbering). */
  readonly type: number;
  /** The record's data, after the type byte. */
  readonly data: Buffer;
}

/** A region of a segment that failed its checks and was skipped. */
export interface CorruptRegion {
  /** The segment file's path. */
  readonly file: string;
  /** Byte offset where the bad region starts. */
  readonly offset: number;
  /** Bytes skipped. */
  readonly bytes: number;
  /** True when it runs to the end of the file (a torn write), false in the middle. */
  readonly tail: boolean;
}

/** Settings of a {@link RecordLog}. */
export interface RecordLogOptions {
  /** A segment is closed once it holds this many bytes; the next record starts a new file. */
  segmentBytes: number;
  /** `fdatasync` after each group of appends (default true): what makes an acknowledged append survive a power cut. */
  fsync?: boolean;
}

/** One segment: number, bytes on disk. */
interface Segment {
  readonly seq: number;
  bytes: number;
}

const segName = (seq: number): string => `seg-${String(seq).padStart(16, '0')}.mdlog`;

/** The path of segment `seq` in `dir`. */
export function segmentPath(dir: string, seq: number): string {
  return join(dir, segName(seq));
}

/** A record ready to append: its pieces, written one after the other (never joined into one big Buffer). */
export interface EncodedRecord {
  /** Header and type byte first, then the data. */
  readonly parts: readonly Buffer[];
  /** Bytes of all parts. */
  readonly bytes: number;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** Checksumming a big record yields to the event loop after this long (see the codec's SLICE_MS). */
const CRC_SLICE_MS = 1;
/** Bytes checksummed in one call: a window's item bytes are one multi-megabyte part, too long for one slice. */
const CRC_PIECE_BYTES = 256 * 1024;

/** Encodes one record of type `type` with `parts` as its data; the CRC is taken piece by piece, yielding between slices. */
export async function encodeRecord(type: number, parts: readonly Buffer[]): Promise<EncodedRecord> {
  const head = Buffer.allocUnsafe(HEADER_BYTES + 1);
  head[HEADER_BYTES] = type;
  let len = 1;
  let crc = crc32(head.subarray(HEADER_BYTES));
  let sliceStart = performance.now();
  for (const p of parts) {
    len += p.length;
    for (let at = 0; at < p.length; at += CRC_PIECE_BYTES) {
      crc = crc32(p.subarray(at, at + CRC_PIECE_BYTES), crc);
      if (performance.now() - sliceStart > CRC_SLICE_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
  }
  head.writeUInt32LE(RECORD_MAGIC, 0);
  head.writeUInt32LE(len, 4);
  head.writeUInt32LE(crc, 8);
  return { parts: [head, ...parts], bytes: HEADER_BYTES + len };
}

/** Scans one segment's bytes: the good records, and the regions skipped for failing their checks. */
export function scanSegment(seq: number, file: string, buf: Buffer): { records: ScannedRecord[]; corrupt: CorruptRegion[] } {
  const records: ScannedRecord[] = [];
  const corrupt: CorruptRegion[] = [];
  let pos = buf.length >= FILE_MAGIC.length && buf.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC) ? FILE_MAGIC.length : 0;
  if (pos === 0 && buf.length > 0) corrupt.push({ file, offset: 0, bytes: Math.min(buf.length, FILE_MAGIC.length), tail: buf.length <= FILE_MAGIC.length });
  if (pos === 0) pos = Math.min(buf.length, FILE_MAGIC.length);
  let badFrom = -1;
  const endBad = (at: number, tail: boolean): void => {
    if (badFrom >= 0) corrupt.push({ file, offset: badFrom, bytes: at - badFrom, tail });
    badFrom = -1;
  };
  while (pos < buf.length) {
    const ok = pos + HEADER_BYTES + 1 <= buf.length && buf.readUInt32LE(pos) === RECORD_MAGIC;
    const len = ok ? buf.readUInt32LE(pos + 4) : 0;
    if (ok && len >= 1 && pos + HEADER_BYTES + len <= buf.length) {
      const body = buf.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + len);
      if (crc32(body) === buf.readUInt32LE(pos + 8)) {
        endBad(pos, false);
        records.push({ seg: seq, offset: pos, bytes: HEADER_BYTES + len, type: body[0]!, data: body.subarray(1) });
        pos += HEADER_BYTES + len;
        continue;
      }
    }
    // Not a good record here: skip to the next place the record magic appears, and try again there.
    if (badFrom < 0) badFrom = pos;
    const next = buf.indexOf(MAGIC_BYTES, pos + 1);
    pos = next < 0 ? buf.length : next;
  }
  endBad(buf.length, true);
  return { records, corrupt };
}

const MAGIC_BYTES = ((): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(RECORD_MAGIC, 0);
  return b;
})();

/** CRC32 of `buf`, 1 MiB at a time with a yield between, so a big window's check never holds the event loop long. */
async function slicedCrc(buf: Buffer): Promise<number> {
  let crc = 0;
  for (let i = 0; i < buf.length; i += 1 << 20) {
    crc = crc32(buf.subarray(i, i + (1 << 20)), crc);
    if (i + (1 << 20) < buf.length) await yieldToLoop();
  }
  return crc;
}

/** Writes every part of `rec` at `offset`, a bounded number of parts per call (writev takes at most IOV_MAX). */
async function writeAll(fh: FileHandle, rec: EncodedRecord, offset: number): Promise<void> {
  let pos = offset;
  for (let i = 0; i < rec.parts.length; i += 512) {
    const group = rec.parts.slice(i, i + 512);
    let want = 0;
    for (const b of group) want += b.length;
    let done = (await fh.writev(group, pos)).bytesWritten;
    // A filling disk first answers with a short write; writing on gets the rest in or the real error (ENOSPC).
    while (done < want) {
      const n = (await fh.writev(after(group, done), pos + done)).bytesWritten;
      if (n === 0) throw new Error(`short write: ${done} of ${want} bytes`);
      done += n;
    }
    pos += want;
  }
}

/** What of `parts` is left after its first `skip` bytes (no copy). */
function after(parts: readonly Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of parts) {
    if (skip >= b.length) skip -= b.length;
    else {
      out.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
  }
  return out;
}

/** A queued append: its bytes and who waits for its place. */
interface Pending {
  readonly rec: EncodedRecord;
  readonly resolve: (ref: RecordRef) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The log of one directory. {@link open} scans what is there; new records always go to a new segment
 * (an old one may end in a torn write). Segments are removed whole, oldest first ({@link dropThrough}).
 */
export class RecordLog {
  private readonly segs: Segment[] = [];
  private active: { seg: Segment; fh: FileHandle } | undefined;
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;
  private nextSeq: number;

  private constructor(
    /** The directory the segments live in. */
    readonly dir: string,
    private readonly opts: RecordLogOptions,
    existing: Segment[],
  ) {
    this.segs.push(...existing);
    this.nextSeq = (existing.at(-1)?.seq ?? 0) + 1;
  }

  /** Opens (creating it when missing) the log in `dir` and scans every segment, oldest first. Rejects on I/O errors. */
  static async open(dir: string, opts: RecordLogOptions): Promise<{ log: RecordLog; records: ScannedRecord[]; corrupt: CorruptRegion[] }> {
    await mkdir(dir, { recursive: true });
    const seqs: number[] = [];
    for (const name of await readdir(dir)) {
      const m = SEGMENT_RE.exec(name);
      if (m !== null) seqs.push(Number(m[1]));
    }
    seqs.sort((a, b) => a - b);
    const segs: Segment[] = [];
    const records: ScannedRecord[] = [];
    const corrupt: CorruptRegion[] = [];
    for (const seq of seqs) {
      const file = segmentPath(dir, seq);
      const buf = await readFile(file);
      const scan = scanSegment(seq, file, buf);
      records.push(...scan.records);
      corrupt.push(...scan.corrupt);
      segs.push({ seq, bytes: buf.length });
    }
    return { log: new RecordLog(dir, opts, segs), records, corrupt };
  }

  /** Bytes of every segment file. */
  get bytes(): number {
    let n = 0;
    for (const s of this.segs) n += s.bytes;
    return n;
  }

  /** Segment numbers, oldest first. */
  segments(): readonly number[] {
    return this.segs.map((s) => s.seq);
  }

  /** Number of the segment being written to, if any. */
  get activeSeq(): number | undefined {
    return this.active?.seg.seq;
  }

  /** Appends one record; resolves with its place once it is written (and synced, with `fsync`). */
  append(rec: EncodedRecord): Promise<RecordRef> {
    return new Promise((resolve, reject) => {
      this.queue.push({ rec, resolve, reject });
      this.writing ??= this.writeLoop();
    });
  }

  /** Resolves once every append queued so far is written. */
  async flush(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
  }

  private async writeLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue;
      this.queue = [];
      const refs: RecordRef[] = [];
      try {
        for (const p of group) {
          if (this.active !== undefined && this.active.seg.bytes >= this.opts.segmentBytes) await this.closeActive();
          const a = this.active ?? (await this.openNext());
          const offset = a.seg.bytes;
          await writeAll(a.fh, p.rec, offset);
          a.seg.bytes += p.rec.bytes;
          refs.push({ seg: a.seg.seq, offset, bytes: p.rec.bytes });
        }
        // One sync for the whole group: a burst of appends costs one disk flush, not one each.
        if (this.opts.fsync !== false && this.active !== undefined) await this.active.fh.datasync();
      } catch (err) {
        // The file may now end in a partial record: never append after it, start a new segment next time.
        await this.closeActive().catch(() => undefined);
        for (const p of group) p.reject(err);
        continue;
      }
      group.forEach((p, i) => p.resolve(refs[i]!));
    }
    // Cleared in the same turn as the last look at the queue, so an append never finds a loop that is leaving.
    this.writing = undefined;
  }

  private async openNext(): Promise<{ seg: Segment; fh: FileHandle }> {
    const seg: Segment = { seq: this.nextSeq, bytes: 0 };
    const fh = await open(segmentPath(this.dir, seg.seq), 'wx');
    this.nextSeq++;
    try {
      await fh.write(FILE_MAGIC, 0, FILE_MAGIC.length, 0);
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(segmentPath(this.dir, seg.seq)).catch(() => undefined);
      throw err;
    }
    seg.bytes = FILE_MAGIC.length;
    this.segs.push(seg);
    this.active = { seg, fh };
    return this.active;
  }

  private async closeActive(): Promise<void> {
    const a = this.active;
    this.active = undefined;
    if (a === undefined) return;
    try {
      if (this.opts.fsync !== false) await a.fh.datasync();
    } finally {
      await a.fh.close();
    }
  }

  /** Starts a new segment with the next append, so the current one can be removed. */
  async rotate(): Promise<void> {
    await this.flush();
    await this.closeActive();
  }

  /** Reads `ref`'s record back and checks it; undefined when it no longer passes its checks. */
  async read(ref: RecordRef): Promise<{ type: number; data: Buffer } | undefined> {
    const fh = await open(segmentPath(this.dir, ref.seg), 'r');
    try {
      const buf = Buffer.allocUnsafe(ref.bytes);
      const { bytesRead } = await fh.read(buf, 0, ref.bytes, ref.offset);
      if (bytesRead !== ref.bytes || buf.readUInt32LE(0) !== RECORD_MAGIC || buf.readUInt32LE(4) !== ref.bytes - HEADER_BYTES) return undefined;
      const body = buf.subarray(HEADER_BYTES);
      if ((await slicedCrc(body)) !== buf.readUInt32LE(8)) return undefined;
      return { type: body[0]!, data: body.subarray(1) };
    } finally {
      await fh.close();
    }
  }

  /** Removes every segment numbered `seq` or lower that is not being written to. */
  async dropThrough(seq: number): Promise<void> {
    while (this.segs.length > 0 && this.segs[0]!.seq <= seq && this.segs[0] !== this.active?.seg) {
      const s = this.segs.shift()!;
      await unlink(segmentPath(this.dir, s.seq)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
  }

  /** Bytes of segment `seq` on disk (0 when gone). */
  segmentBytes(seq: number): number {
    return this.segs.find((s) => s.seq === seq)?.bytes ?? 0;
  }

  /** Waits for queued appends, syncs and closes the segment being written. */
  async close(): Promise<void> {
    await this.flush();
    await this.closeActive();
  }
}
