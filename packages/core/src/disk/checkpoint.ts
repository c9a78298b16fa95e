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
import type { WindowState } from '../state-merge.js';

/** Longest run of snapshotting before yielding to the event loop (the same budget as a window build's slices). */
const SLICE_MS = 1;
/** Contexts copied between two looks at the clock. */
const CHUNK = 512;
/** `MDCP`, then version, CRC32 of the payload and its length, each a big-endian u32. */
const MAGIC = 0x4d444350;
const VERSION = 1;
const HEADER_BYTES = 16;

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
      // Contexts first, each slice encoded at once: the 20 MB of a 200k-context window are never
      // one string, and no slice but the last does more than copy and encode its chunk.
      const pieces: Buffer[] = [Buffer.from('{"contexts":[')];
      const steps = this.aggregator.snapshotState(CHUNK);
      let longest = 0;
      let sliceStart = performance.now();
      let parts: string[] = [];
      let r = steps.next();
      for (; r.done !== true; r = steps.next()) {
        for (const cs of r.value) parts.push(JSON.stringify(cs));
        const spent = performance.now() - sliceStart;
        if (spent < SLICE_MS) continue;
        pieces.push(Buffer.from((pieces.length > 1 ? ',' : '') + parts.join(','), 'utf8'));
        parts = [];
        if (spent > longest) longest = spent;
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
      const rest = r.value;
      // The window closed meanwhile: its state went to the sinks, and the next interval takes the new one.
      if (rest === undefined || rest.windowStartMs <= this.closedUpToMs) return;
      if (parts.length > 0) pieces.push(Buffer.from((pieces.length > 1 ? ',' : '') + parts.join(','), 'utf8'));
      pieces.push(Buffer.from(`],${JSON.stringify(rest).slice(1)}`, 'utf8'));
      const bytes = [headerOf(pieces), ...pieces];
      const spent = performance.now() - sliceStart;
      this.lastLongestSliceMs = Math.max(longest, spent);
      await this.enqueue(() => this.write(rest.windowStartMs, bytes));
    } finally {
      this.lastDurationMs = performance.now() - began;
    }
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
