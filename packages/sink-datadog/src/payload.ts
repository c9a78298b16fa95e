/**
 * One request body on its way to Datadog: the uncompressed body with its item offsets (so it can be
 * split), its compressed bytes once built, and the window it comes from. Also the compression of
 * bodies (off the event loop, large ones one at a time), splitting a body in two, the queue that hands
 * payloads from the batcher to the senders, and the log line of an item too large for any payload.
 */
import { deflate, gunzip, gzip, inflate } from 'node:zlib';
import { promisify } from 'node:util';
import type { BatchDelivery, DropLog } from '@metrics-distributor/core';
import { KIND_SPECS, type PayloadKind } from './kinds.js';
import { itemBytes, splitPayload } from './writer.js';

const gzipAsync = promisify(gzip);
const deflateAsync = promisify(deflate);
const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

/**
 * zlib's fastest level. On series JSON it compresses within 2 % of the default level 6 (the bodies are
 * long runs of the same keys, tags and host) for a fifth of the CPU: at 200k contexts level 6 kept one
 * pool thread busy for most of the flush, and the last POST waited on it.
 */
const COMPRESSION_LEVEL = 1;
/**
 * Output buffer of one compression: each full buffer is a round trip from the pool to the event loop,
 * which at zlib's default 16 KiB cost the main thread more than the batching of some bodies.
 */
const OUT_CHUNK_BYTES = 256 * 1024;
/** Bodies at least this large are compressed one at a time (see {@link Compressor.compress}). */
const SERIAL_COMPRESSION_BYTES = 64 * 1024;

/** One request body: the uncompressed body with its item offsets (kept so it can be split), and the compressed bytes once built. */
export interface Payload {
  readonly kind: PayloadKind;
  /** Start of the window the items come from (unix ms): how old the data is, for the intake's age limits. */
  readonly dataMs: number;
  /** The uncompressed body; dropped once compressed when it lives in a pooled scratch Buffer (see {@link Compressor.rawOf}). */
  raw: Buffer | undefined;
  /** Offset of each item in the uncompressed body; its length is the item count. */
  readonly starts: Uint32Array;
  /** The pooled Buffer `raw` lives in, until it goes back to the pool. */
  scratch: Buffer | undefined;
  /** The compressed body, once built. */
  body: Buffer | undefined;
  /** Index in its window's item array of each item, parallel to `starts`: what {@link BatchDelivery} records as delivered. */
  readonly idx: Uint32Array;
  /** The window's delivery bookkeeping when it is on disk (`--data-dir`). */
  readonly ledger: BatchDelivery | undefined;
}

/** Items in a payload. */
export const count = (p: { readonly starts: Uint32Array }): number => p.starts.length;

/** What a payload holds in memory: the raw body only until it is compressed, if it was pooled. */
export function cost(p: Payload): number {
  return (p.raw?.length ?? 0) + (p.body?.length ?? 0) + p.starts.byteLength;
}

/** `p` split in two at an item boundary (about half the items each), not compressed yet. */
export function halves(p: Payload, raw: Buffer): [Payload, Payload] {
  const [a, b] = splitPayload(p.kind, { raw, starts: p.starts });
  // splitPayload cuts after the first ceil(n/2) items; the indices follow the same cut.
  const mid = a.starts.length;
  const { kind, dataMs, ledger } = p;
  return [
    { kind, dataMs, raw: a.raw, starts: a.starts, scratch: undefined, body: undefined, idx: p.idx.subarray(0, mid), ledger },
    { kind, dataMs, raw: b.raw, starts: b.starts, scratch: undefined, body: undefined, idx: p.idx.subarray(mid), ledger },
  ];
}

/** The start of the first item of a body, for a log line about it (sketches are protobuf: nothing readable). */
export function snippet(kind: PayloadKind, raw: Buffer): string {
  if (kind === 'sketches') return '';
  const { prefix, suffix } = KIND_SPECS[kind];
  // Only the start of the first item matters; the offsets table is not needed for that.
  return itemBytes(kind, { raw, starts: Uint32Array.of(prefix.length) }, 0)
    .subarray(0, Math.min(120, raw.length - prefix.length - suffix.length))
    .toString('utf8');
}

/** The log line of an item too large for one payload (`which` limit: uncompressed, compressed, or a 413). */
export function tooLargeLog(kind: PayloadKind, what: string, which: string, bytes: number, limit: number): DropLog {
  return {
    code: 'MD_ERR_SINK_PAYLOAD_TOO_LARGE',
    level: 'error',
    fields: { kind, item: what.slice(0, 200), limit: which, bytes, maxBytes: limit },
    message: `Datadog sink: a single ${kind} item is too large for one payload (${which}); dropped.`,
  };
}

/** Compresses bodies, inflates them back when a payload must be split after its raw body was released, and learns the ratio. */
export class Compressor {
  /**
   * Compressed/uncompressed ratio per kind, learnt from large bodies; starts pessimistic-ish. Series
   * JSON compresses to 0.04-0.07 (names, tags and host repeat), so a start at 0.25 already fills the
   * first window's bodies up to their item limit; at 0.5 the first window of bench scenario 7 took 82
   * requests instead of 43. Data that compresses worse is caught by the re-split.
   */
  readonly ratio: Record<PayloadKind, number> = { series: 0.25, sketches: 0.7, events: 0.7, checks: 0.5 };
  /** Settles when the compression in progress (and every one queued before it) is done. */
  private compressing: Promise<void> = Promise.resolve();

  constructor(private readonly compression: 'gzip' | 'deflate') {}

  /**
   * Compresses on the libuv pool, large bodies one at a time. With up to `maxConcurrentRequests` large
   * bodies at once, the pool's 4 threads took every core of a 2-core machine from the event loop for the
   * length of a flush; one at a time leaves the loop a core, and a window's bodies still compress in well
   * under a second. Small bodies take microseconds and go straight through.
   */
  async compress(raw: Buffer): Promise<Buffer> {
    if (raw.length < SERIAL_COMPRESSION_BYTES) return this.run(raw);
    const previous = this.compressing;
    let release!: () => void;
    this.compressing = new Promise<void>((r) => (release = r));
    try {
      await previous;
      return await this.run(raw);
    } finally {
      release();
    }
  }

  private run(raw: Buffer): Promise<Buffer> {
    const opts = { level: COMPRESSION_LEVEL, chunkSize: Math.max(16 * 1024, Math.min(OUT_CHUNK_BYTES, raw.length >> 3)) };
    return this.compression === 'gzip' ? gzipAsync(raw, opts) : deflateAsync(raw, opts);
  }

  /** The uncompressed body: kept, or inflated back from the compressed one (only after a 413, so rarely). */
  async rawOf(p: Payload): Promise<Buffer> {
    if (p.raw !== undefined) return p.raw;
    if (p.body === undefined) throw new Error('datadog sink: a payload has neither its raw nor its compressed body');
    return this.compression === 'gzip' ? gunzipAsync(p.body) : inflateAsync(p.body);
  }

  /** Updates the ratio of `kind` from one compressed body. */
  learn(kind: PayloadKind, raw: number, compressed: number): void {
    // Small bodies compress badly and would make the estimate needlessly pessimistic.
    if (raw < 16_384) return;
    const r = compressed / raw;
    const cur = this.ratio[kind];
    this.ratio[kind] = r > cur ? r : cur * 0.7 + r * 0.3;
  }
}

/**
 * Payloads from the encoder to the senders, so that sending starts while a big window is still being
 * encoded. The encoder waits while `maxPooled` payloads hold a pooled scratch Buffer not yet compressed,
 * which bounds the pool (and the memory of a window's uncompressed bodies) to a few Buffers.
 */
export class PayloadQueue {
  private readonly items: (Payload | undefined)[] = [];
  private head = 0;
  private ended = false;
  private pooled = 0;
  private readonly takers: ((p: Payload | undefined) => void)[] = [];
  private readonly putters: (() => void)[] = [];

  constructor(private readonly maxPooled: number) {}

  /** Hands `p` to a sender; waits first while too many pooled payloads are not compressed yet. */
  async put(p: Payload): Promise<void> {
    if (p.scratch !== undefined) {
      while (this.pooled >= this.maxPooled) await new Promise<void>((r) => this.putters.push(r));
      this.pooled++;
    }
    const taker = this.takers.shift();
    if (taker !== undefined) taker(p);
    else this.items.push(p);
  }

  /** Called once per pooled payload when its scratch went back to the pool. */
  released(): void {
    this.pooled--;
    this.putters.shift()?.();
  }

  /** The next payload, or undefined once the queue is ended and empty. */
  take(): Promise<Payload | undefined> {
    if (this.head < this.items.length) {
      const p = this.items[this.head];
      this.items[this.head++] = undefined;
      return Promise.resolve(p);
    }
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((r) => this.takers.push(r));
  }

  /** No more payloads: takers get undefined. */
  end(): void {
    this.ended = true;
    for (const t of this.takers.splice(0)) t(undefined);
  }
}
