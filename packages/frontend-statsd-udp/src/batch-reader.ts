/**
 * The batch reader: the compiled addon (native/udp_batch.c) reads a node:dgram socket with recvmmsg
 * into one slab and calls back once per batch. This file loads the addon, finds the dgram handle's
 * descriptor and hands each datagram of a batch on as (slab, start, length), with no object per datagram.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import type { Socket } from 'node:dgram';

/** Which reader receives the datagrams: `auto` is `batch` where the addon loaded, else `dgram`. */
export type UdpReaderKind = 'auto' | 'batch' | 'dgram';

/** The readers that can actually run. */
export type UdpReaderRunning = 'batch' | 'dgram';

/** The addon's counters since the reader opened (for benchmarks and tests). */
export interface BatchReaderStats {
  /** Poll wake-ups of the socket. */
  wakeups: number;
  /** recvmmsg calls that returned datagrams. */
  batches: number;
  /** Datagrams read. */
  datagrams: number;
  /** recvmmsg calls that found the queue empty. */
  wouldBlock: number;
  /** Receive errors reported to the callback. */
  errors: number;
}

/** The addon's exports (see native/udp_batch.c). */
interface BatchAddon {
  open(fd: number, slab: Buffer, slotBytes: number, lengths: Int32Array, maxBatchesPerWake: number, onBatch: (n: number) => void): object;
  close(handle: object): void;
  stats(handle: object): BatchReaderStats;
}

/** Where the package's build puts the addon and the reason it could not (native/build.mjs). */
const BUILD_DIR = new URL('../build/', import.meta.url);
/** The addon's default path: the package's `build/udp_batch.node`. */
export const DEFAULT_ADDON_PATH = fileURLToPath(new URL('udp_batch.node', BUILD_DIR));

/**
 * Datagrams per recvmmsg call (the slab holds this many slots): 32, libuv's own bound on datagrams read
 * per wake-up, so one wake-up holds the loop no longer than the dgram reader's does.
 */
export const BATCH_DATAGRAMS = 32;
/**
 * recvmmsg calls per poll wake-up at most, so that one busy socket cannot hold the loop for long.
 * bench/drain.mjs (queue filled while the loop is blocked, load average 7–10): the CPU per datagram
 * did not move with the cap (1, 2, 4, 8, 64 batches of 64: all within that machine's noise), the
 * longest loop iteration did (CPU time: 2–5 ms at 1, 7 ms at 8, 21–26 ms at 64). The cap of 4 × 64
 * then cost scenario 7 (200k contexts, all new in the first window at ~8 µs a line) a loop delay of
 * 95–115 ms against 36–41 ms with dgram, on a quiet machine: so one batch of 32.
 */
export const BATCHES_PER_WAKE = 1;
/** The largest UDP payload; a slot never needs more. */
const MAX_UDP_PAYLOAD = 65_536;

/** Outcome of loading the addon: it, or why not, for the one log line of the fallback. */
export type AddonLoad = { ok: true; addon: BatchAddon } | { ok: false; why: string };

const loaded = new Map<string, AddonLoad>();

/** Why the build did not produce the addon, from the status file it writes, if it wrote one. */
function buildReason(): string | undefined {
  try {
    const status = JSON.parse(readFileSync(new URL('udp_batch.json', BUILD_DIR), 'utf8')) as { built?: boolean; why?: string };
    return status.built === false && typeof status.why === 'string' ? status.why : undefined;
  } catch {
    return undefined;
  }
}

/** Loads the addon at `path` once per process (a failure is remembered too); never throws. */
export function loadBatchAddon(path = DEFAULT_ADDON_PATH): AddonLoad {
  let result = loaded.get(path);
  if (result !== undefined) return result;
  if (process.platform !== 'linux') {
    result = { ok: false, why: `recvmmsg(2) is Linux-only, this is ${process.platform}` };
  } else {
    try {
      const addon = createRequire(import.meta.url)(path) as Partial<BatchAddon>;
      result =
        typeof addon.open === 'function' && typeof addon.close === 'function' && typeof addon.stats === 'function'
          ? { ok: true, addon: addon as BatchAddon }
          : { ok: false, why: `${path} is not the batch reader addon` };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const reason = code === 'MODULE_NOT_FOUND' && path === DEFAULT_ADDON_PATH ? buildReason() : undefined;
      result = { ok: false, why: reason !== undefined ? `not built: ${reason}` : `could not load ${path}: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  loaded.set(path, result);
  return result;
}

/** The parts of node:dgram's internal UDP handle the reader uses. */
interface UdpHandle {
  fd: number;
  recvStop(): number;
  recvStart(): number;
}

/**
 * The socket's libuv handle, or why it cannot be had. Node 20 keeps it under an internal symbol
 * (`socket._handle` is the same object behind a DEP0112 deprecation warning); `fd` is the
 * descriptor on Unix (-1 elsewhere).
 */
function udpHandle(socket: Socket): UdpHandle | string {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state = sym === undefined ? undefined : ((socket as unknown as Record<symbol, { handle?: Partial<UdpHandle> } | undefined>)[sym]);
  const handle = state?.handle;
  if (handle === undefined || handle === null) return `node:dgram ${process.version} keeps no handle where this reader looks for it`;
  if (typeof handle.fd !== 'number' || handle.fd < 0) return 'node:dgram gives no file descriptor for the socket';
  if (typeof handle.recvStop !== 'function' || typeof handle.recvStart !== 'function') return 'node:dgram handle has no recvStop/recvStart';
  return handle as UdpHandle;
}

/** Called for each datagram of a batch: `buf[start, start + Math.min(length, slotBytes))` holds it. */
export type OnDatagram = (buf: Buffer, start: number, length: number) => void;

/** Options of {@link BatchReader.attach}. */
export interface BatchReaderOptions {
  /** Bytes kept of each datagram (longer ones still report their real length). */
  slotBytes: number;
  /** Each datagram, synchronously, in arrival order. */
  onDatagram: OnDatagram;
  /** A receive error (as an errno-style Error); reading goes on. */
  onError: (err: Error) => void;
}

/** Reads a bound node:dgram socket through the addon, in batches. */
export class BatchReader {
  private handle: object | undefined;
  private closedStats: BatchReaderStats | undefined;
  private readonly slab: Buffer;
  private readonly lengths: Int32Array;
  private readonly slotBytes: number;

  private constructor(
    private readonly addon: BatchAddon,
    private readonly opts: BatchReaderOptions,
  ) {
    this.slotBytes = Math.min(opts.slotBytes, MAX_UDP_PAYLOAD);
    // Outside the Buffer pool: the addon writes into it for as long as the reader lives.
    this.slab = Buffer.allocUnsafeSlow(BATCH_DATAGRAMS * this.slotBytes);
    this.lengths = new Int32Array(BATCH_DATAGRAMS);
  }

  /**
   * Takes over reading from a bound socket: the addon watches a dup() of its descriptor and libuv's
   * own reading is stopped (dgram's `close()` still closes the socket). Returns why not, leaving the
   * socket as it was, when it cannot.
   */
  static attach(addon: BatchAddon, socket: Socket, opts: BatchReaderOptions): BatchReader | string {
    const handle = udpHandle(socket);
    if (typeof handle === 'string') return handle;
    const reader = new BatchReader(addon, opts);
    try {
      reader.handle = addon.open(handle.fd, reader.slab, reader.slotBytes, reader.lengths, BATCHES_PER_WAKE, (n) => reader.onBatch(n));
    } catch (err) {
      return `the addon could not open the socket: ${err instanceof Error ? err.message : String(err)}`;
    }
    // Synchronously after open: no poll phase runs in between, so dgram never reads a datagram.
    handle.recvStop();
    return reader;
  }

  private onBatch(n: number): void {
    if (n < 0) {
      const code = getSystemErrorName(n);
      const err: NodeJS.ErrnoException = new Error(`recvmmsg ${code}`);
      err.code = code;
      err.errno = n;
      err.syscall = 'recvmmsg';
      this.opts.onError(err);
      return;
    }
    const { slab, lengths, slotBytes, opts } = this;
    const onDatagram = opts.onDatagram;
    for (let i = 0; i < n; i++) onDatagram(slab, i * slotBytes, lengths[i]!);
  }

  /** The addon's counters (their last values once closed). */
  stats(): BatchReaderStats | undefined {
    return this.handle === undefined ? this.closedStats : this.addon.stats(this.handle);
  }

  /** Stops reading; idempotent. The socket itself is closed by its owner. */
  close(): void {
    if (this.handle === undefined) return;
    this.closedStats = this.addon.stats(this.handle);
    this.addon.close(this.handle);
    this.handle = undefined;
  }
}
