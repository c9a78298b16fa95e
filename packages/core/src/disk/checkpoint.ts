/**
 * `--checkpoint-open-window`: the open window's aggregation state written to
 * `<data-dir>/checkpoint/` every interval, so a crash (SIGKILL, OOM) loses at most one interval of
 * it, and put back at the next start.
 */
import { mkdir, open as openFile, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Aggregator } from '../aggregator.js';
import type { ComponentContext } from '../component.js';
import { MdError } from '../errors.js';
import type { WindowState, WindowStateRest } from '../state-merge.js';

/** Longest run of snapshotting before yielding to the event loop (the same budget as a window build's slices). */
const SLICE_MS = 1;
/** Contexts copied between two looks at the clock. */
const CHUNK = 512;
/** `MDCP`, then version, CRC32 of the payload and its length, each a big-endian u32. */
const MAGIC = 0x4d444350;
const VERSION = 1;
const HEADER_BYTES = 16;

const OPEN = Buffer.from('{"contexts":[');
const COMMA = Buffer.from(',');

/**
 * A part of the open window held by another process (a `--workers` UDP worker), already encoded:
 * written into the checkpoint next to the aggregator's own state. The processes' parts are disjoint,
 * so the file's contexts may name one context once per process, and the restore's merge adds them up.
 */
export interface EncodedWindowPart {
  /** Start (epoch ms) of the window the part is of. */
  windowStartMs: number;
  /** The part's contexts as JSON, each piece contexts joined by commas (no leading or trailing one), as {@link encodeOpenWindow} gives them. */
  pieces: readonly Buffer[];
  /** The part's timestamped samples, events and service checks. */
  rest: WindowStateRest;
}

/** What one checkpoint takes from a {@link CheckpointParts}: the parts to write with the aggregator's snapshot. */
export interface PartsTaking {
  /**
   * Called in the same turn as the aggregator's snapshot of window `windowStartMs` completed: the
   * parts of that window to write with it, or undefined when a part's own data reached the aggregator
   * during the snapshot (then partly in it): that checkpoint is skipped and the previous one stays.
   */
  take(windowStartMs: number): readonly EncodedWindowPart[] | undefined;
}

/** A source of parts of the open window held by other processes (the UDP worker pool). */
export interface CheckpointParts {
  /** Asks for fresh parts; resolves once they are in, or a time limit passed (the last ones are used then). */
  refresh(): Promise<void>;
  /** Called right before the aggregator's snapshot starts. */
  begin(): PartsTaking;
}

/** The open window encoded as {@link encodeOpenWindow} returns it. */
export interface EncodedOpenWindow {
  /** Contexts as JSON, each piece contexts joined by commas (an empty window has none). */
  pieces: Buffer[];
  /** The rest of the window: its start, timestamped samples, events, service checks. */
  rest: WindowStateRest;
  /** The longest slice of work between two yields to the event loop, in ms. */
  longestSliceMs: number;
}

/**
 * The aggregator's open window as JSON pieces without taking it, 512 contexts at a time with a yield
 * to the event loop after every ~1 ms, each slice encoded at once: the 20 MB of a 200k-context window
 * are never one string. `onPiece` gets each piece as it is made (a worker ships them over IPC while
 * it goes on); they are in `pieces` too unless it is given. Undefined when the window closed meanwhile.
 */
export async function encodeOpenWindow(aggregator: Aggregator, onPiece?: (piece: Buffer) => void): Promise<EncodedOpenWindow | undefined> {
  const pieces: Buffer[] = [];
  const emit = (parts: string[]) => {
    const piece = Buffer.from(parts.join(','), 'utf8');
    if (onPiece === undefined) pieces.push(piece);
    else onPiece(piece);
  };
  const steps = aggregator.snapshotState(CHUNK);
  let longest = 0;
  let sliceStart = performance.now();
  let parts: string[] = [];
  let r = steps.next();
  for (; r.done !== true; r = steps.next()) {
    for (const cs of r.value) parts.push(JSON.stringify(cs));
    const spent = performance.now() - sliceStart;
    if (spent < SLICE_MS) continue;
    emit(parts);
    parts = [];
    if (spent > longest) longest = spent;
    await new Promise<void>((resolve) => setImmediate(resolve));
    sliceStart = performance.now();
  }
  const rest = r.value;
  if (rest === undefined) return undefined;
  if (parts.length > 0) emit(parts);
  return { pieces, rest, longestSliceMs: Math.max(longest, performance.now() - sliceStart) };
}

/** Options of a {@link Checkpointer}. */
export interface CheckpointOptions {
  /** The checkpoint folder (the CLI uses `<data-dir>/checkpoint`). */
  dir: string;
  /** How often the open window is written. */
  intervalMs: number;
}

/** What {@link Checkpointer.restore} found. */
export interface RestoreReport {
  /** Checkpoints merged into the open window (a restart within their window). */
  merged: number;
  /** Checkpoints whose window had closed, closed again and handed to the listeners. */
  closed: number;
  /** Contexts restored, over all checkpoints. */
  series: number;
  /** Files that failed their checks and were ignored. */
  corrupt: number;
}

/** The outcome of reading one checkpoint file. */
export type ReadResult = { ok: true; state: WindowState } | { ok: false; error: MdError };

/** The file a checkpoint of the window starting at `windowStartMs` is kept in. */
function fileOf(windowStartMs: number): string {
  return `window-${windowStartMs}.ckpt`;
}

/** The header of a checkpoint whose payload is `pieces` in turn (a CRC32 carried across them, so they are never joined). */
function headerOf(pieces: readonly Buffer[]): Buffer {
  let crc = 0;
  let length = 0;
  for (const p of pieces) {
    crc = crc32(p, crc);
    length += p.length;
  }
  return headerBytes(crc, length);
}

/** The 16 header bytes for a payload of `length` bytes whose CRC32 is `crc`. */
function headerBytes(crc: number, length: number): Buffer {
  const head = Buffer.alloc(HEADER_BYTES);
  head.writeUInt32BE(MAGIC, 0);
  head.writeUInt32BE(VERSION, 4);
  head.writeUInt32BE(crc, 8);
  head.writeUInt32BE(length, 12);
  return head;
}

/** Encodes a checkpoint from its payload (UTF-8 JSON of a WindowState). */
export function encodeCheckpoint(payload: Buffer): Buffer {
  return Buffer.concat([headerOf([payload]), payload]);
}

/** Decodes a checkpoint file's bytes; anything torn, damaged or of another shape is an error result. */
export function decodeCheckpoint(bytes: Buffer): ReadResult {
  const bad = (what: string, cause?: unknown): ReadResult => ({ ok: false, error: new MdError('MD_ERR_CHECKPOINT_CORRUPT', what, cause === undefined ? undefined : { cause }) });
  if (bytes.length < HEADER_BYTES || bytes.readUInt32BE(0) !== MAGIC) return bad('not a checkpoint (bad magic or too short)');
  if (bytes.readUInt32BE(4) !== VERSION) return bad(`unknown checkpoint version ${bytes.readUInt32BE(4)}`);
  const payload = bytes.subarray(HEADER_BYTES);
  if (payload.length !== bytes.readUInt32BE(12)) return bad(`length ${payload.length} instead of ${bytes.readUInt32BE(12)} (a torn write)`);
  if (crc32(payload) !== bytes.readUInt32BE(8)) return bad('CRC32 mismatch');
  let state: unknown;
  try {
    state = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    return bad('payload is not JSON', err);
  }
  const s = state as Partial<WindowState> | null;
  if (s === null || typeof s !== 'object' || typeof s.windowStartMs !== 'number' || !Array.isArray(s.contexts) || !Array.isArray(s.timestamped) || !Array.isArray(s.events) || !Array.isArray(s.serviceChecks)) {
    return bad('payload is not a window state');
  }
  return { ok: true, state: s as WindowState };
}

/**
 * Writes the aggregator's open window to its folder every interval and puts it back at start. Every
 * file operation runs on one chain, so a window's deletion (once it is on the disk buffer) always
 * follows its last write: a closed window is never written again, which would restore it twice.
 */
export class Checkpointer {
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** The checkpoint under way: one at a time, and close() waits for it. */
  private current: Promise<void> | undefined;
  /** Start of the newest window closed (epoch ms): checkpoints of it or older are not written any more. */
  private closedUpToMs = -Infinity;
  /** Loop delay of the last checkpoint's longest slice, in ms (for the benchmark and the admin listener). */
  lastLongestSliceMs = 0;
  /** Wall time of the last checkpoint, snapshot to rename, in ms. */
  lastDurationMs = 0;
  /** Other processes' parts of the open window, written with it. */
  private readonly parts: CheckpointParts[] = [];

  constructor(
    private readonly aggregator: Aggregator,
    private readonly context: ComponentContext<'checkpoint'>,
    private readonly opts: CheckpointOptions,
  ) {}

  /** Puts back every checkpoint of the folder (oldest first), before ingestion starts. Never throws for a bad file. */
  async restore(): Promise<RestoreReport> {
    const report: RestoreReport = { merged: 0, closed: 0, series: 0, corrupt: 0 };
    await mkdir(this.opts.dir, { recursive: true });
    const names = await readdir(this.opts.dir);
    const found: { name: string; state: WindowState }[] = [];
    for (const name of names) {
      const path = join(this.opts.dir, name);
      // A temporary file is a write the last run did not finish; the checkpoint before it is intact.
      if (name.endsWith('.tmp')) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      if (!name.endsWith('.ckpt')) continue;
      const r = decodeCheckpoint(await readFile(path));
      if (!r.ok) {
        report.corrupt++;
        this.corrupt(name, r.error);
        await unlink(path).catch(() => undefined);
        continue;
      }
      found.push({ name, state: r.state });
    }
    found.sort((a, b) => a.state.windowStartMs - b.state.windowStartMs);
    for (const { name, state } of found) {
      let outcome;
      try {
        outcome = this.aggregator.restoreState(state);
      } catch (err) {
        // A payload with the right CRC but wrong inner fields (another build's format): ignored like a torn one.
        report.corrupt++;
        this.corrupt(name, new MdError('MD_ERR_CHECKPOINT_CORRUPT', 'payload could not be merged', { cause: err }));
        await unlink(join(this.opts.dir, name)).catch(() => undefined);
        continue;
      }
      report.series += state.contexts.length;
      this.context.stats.count('restored', state.contexts.length);
      if (outcome === 'merged') report.merged++;
      else report.closed++;
    }
    if (found.length > 0) {
      this.context.logger.info({ ...report, dir: this.opts.dir }, 'Restored the open window from its checkpoint.');
    }
    return report;
  }

  /** Adds a source of other processes' parts of the open window (`--workers`): every checkpoint writes them too. */
  addParts(parts: CheckpointParts): void {
    this.parts.push(parts);
  }

  /** Starts writing a checkpoint every interval. */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.checkpoint(), this.opts.intervalMs);
    this.timer.unref();
  }

  /**
   * Tells the checkpointer that the window starting at `windowStartMs` closed and that `written`
   * resolves once it is on the disk buffer: its checkpoint is deleted then, and never written again.
   */
  windowClosed(windowStartMs: number, written: Promise<unknown>): void {
    if (windowStartMs > this.closedUpToMs) this.closedUpToMs = windowStartMs;
    const path = join(this.opts.dir, fileOf(windowStartMs));
    void this.enqueue(async () => {
      await written;
      await unlink(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    });
  }

  /** Writes one checkpoint of the open window now; resolves once it is on disk (or skipped). */
  checkpoint(): Promise<void> {
    this.current ??= this.snapshot().finally(() => (this.current = undefined));
    return this.current;
  }

  private async snapshot(): Promise<void> {
    const began = performance.now();
    try {
      // Fresh parts first, so the file is as of about now for every process.
      if (this.parts.length > 0) await Promise.all(this.parts.map((p) => p.refresh()));
      const takings = this.parts.map((p) => p.begin());
      const own = await encodeOpenWindow(this.aggregator);
      // The window closed meanwhile: its state went to the sinks, and the next interval takes the new one.
      if (own === undefined || own.rest.windowStartMs <= this.closedUpToMs) return;
      const { rest } = own;
      // In the turn the snapshot completed, so no part's data can reach the aggregator in between.
      const others: EncodedWindowPart[] = [];
      for (const taking of takings) {
        const got = taking.take(rest.windowStartMs);
        if (got === undefined) {
          this.context.stats.count('checkpoint_skipped');
          return;
        }
        others.push(...got);
      }
      const pieces: Buffer[] = [OPEN];
      const add = (piece: Buffer) => {
        if (piece.length === 0) return;
        if (pieces.length > 1) pieces.push(COMMA);
        pieces.push(piece);
      };
      for (const piece of own.pieces) add(piece);
      for (const part of others) for (const piece of part.pieces) add(piece);
      const merged: WindowStateRest = {
        windowStartMs: rest.windowStartMs,
        timestamped: [...rest.timestamped, ...others.flatMap((o) => o.rest.timestamped)],
        events: [...rest.events, ...others.flatMap((o) => o.rest.events)],
        serviceChecks: [...rest.serviceChecks, ...others.flatMap((o) => o.rest.serviceChecks)],
      };
      pieces.push(Buffer.from(`],${JSON.stringify(merged).slice(1)}`, 'utf8'));
      const head = await this.headerSliced(pieces);
      this.lastLongestSliceMs = Math.max(own.longestSliceMs, head.longestSliceMs);
      await this.enqueue(() => this.write(rest.windowStartMs, [head.header, ...pieces]));
    } finally {
      this.lastDurationMs = performance.now() - began;
    }
  }

  /** {@link headerOf} with a yield to the event loop after every ~1 ms: the CRC32 of 60 MB is tens of ms. */
  private async headerSliced(pieces: readonly Buffer[]): Promise<{ header: Buffer; longestSliceMs: number }> {
    let crc = 0;
    let length = 0;
    let longest = 0;
    let sliceStart = performance.now();
    for (const p of pieces) {
      crc = crc32(p, crc);
      length += p.length;
      const spent = performance.now() - sliceStart;
      if (spent < SLICE_MS) continue;
      if (spent > longest) longest = spent;
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
    return { header: headerBytes(crc, length), longestSliceMs: Math.max(longest, performance.now() - sliceStart) };
  }

  /** Stops the timer and waits for the file operations under way (the last deletions on a clean stop). */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.current;
    await this.chain;
  }

  /** Temp file, fsync, rename, fsync of the folder: a kill at any point leaves the previous checkpoint whole. */
  private async write(windowStartMs: number, bytes: readonly Buffer[]): Promise<void> {
    if (windowStartMs <= this.closedUpToMs) return;
    const final = join(this.opts.dir, fileOf(windowStartMs));
    const tmp = `${final}.tmp`;
    await mkdir(this.opts.dir, { recursive: true });
    const fh = await openFile(tmp, 'w');
    try {
      await fh.writev(bytes as Buffer[]);
      await fh.sync();
    } finally {
      await fh.close();
    }
    // Checked again after the awaits: the window may have closed while the file was written.
    if (windowStartMs <= this.closedUpToMs) {
      await unlink(tmp);
      return;
    }
    await rename(tmp, final);
    const dir = await openFile(this.opts.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    this.context.stats.count('checkpoints');
    // The previous window's checkpoint, if its deletion has not come yet, is left to windowClosed().
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.chain.then(op).catch((err: unknown) => {
      this.context.stats.count('checkpoint_errors');
      this.context.logger.warn({ err: new MdError('MD_ERR_CHECKPOINT_WRITE', undefined, { cause: err }), dir: this.opts.dir }, 'A checkpoint file operation failed; the previous checkpoint stays, the next interval tries again.');
    });
    this.chain = run;
    return run;
  }

  private corrupt(file: string, error: MdError): void {
    this.context.drop('corrupt', 1, { code: 'MD_ERR_CHECKPOINT_CORRUPT', cause: error, fields: { file, dir: this.opts.dir }, message: `Checkpoint ${file} failed its checks (${error.message}); ignored. See metrics_distributor.dropped{component:checkpoint,reason:corrupt}.`, intervalMs: 0 });
  }
}
