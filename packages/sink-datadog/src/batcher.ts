/**
 * Turns a window's items into payloads under the intake limits: each item is encoded once, straight
 * into the body being built, and a body is closed when one more item would break the item count or
 * the size that the learnt compression ratio says fits compressed. Runs in slices, yielding to the
 * event loop so ingestion keeps up during a big flush.
 */
import type { BatchDelivery, DropLog, LossTally, MetricBatch, Series, ServiceCheck, SinkDropReason, SketchSeries, StatsdEvent } from '@metrics-distributor/core';
import { encodeCheck, encodeEvent } from './event-check-json.js';
import { BATCH_KIND, KIND_SPECS, type PayloadKind } from './kinds.js';
import type { PayloadLimits } from './options.js';
import { tooLargeLog, type Compressor, type PayloadQueue } from './payload.js';
import { SketchEncoder, sketchIsValid } from './proto.js';
import { PayloadWriter, SeriesEncoder, type BufferPool } from './writer.js';

/** Compressed bodies aim this far under the limit, so a slightly worse ratio than estimated rarely forces a re-split. */
const COMPRESSED_HEADROOM = 0.9;
/**
 * Encoding yields to the event loop after this much time. Short on purpose: each loop turn reads at most
 * 32 datagrams per UDP socket, so with 200k lines/s arriving, slices of 4 ms let the receive queue grow
 * through the whole flush (and overflow), where 1 ms slices leave ingestion enough turns to keep up.
 */
const SLICE_MS = 1;
/** Items encoded between two looks at the clock: small enough that the slice overshoots by well under a millisecond. */
const SLICE_CHECK_EVERY = 32;

/** Encodes one item at a time: `encode` sizes it (-1: not encodable), `write` then appends that same item. */
interface ItemEncoder<T> {
  encode(item: T): number;
  write(w: PayloadWriter): void;
}

/** An {@link ItemEncoder} over a function that returns each item as its own Buffer. */
function bufferEncoder<T>(fn: (item: T) => Buffer | undefined): ItemEncoder<T> {
  let last: Buffer | undefined;
  return {
    encode(item) {
      last = fn(item);
      return last === undefined ? -1 : last.length;
    },
    write(w) {
      if (last !== undefined) w.addBytes(last);
    },
  };
}

/** One kind of a window's items to encode into payloads. */
interface GroupJob<T> {
  readonly kind: PayloadKind;
  /** The window's start: the data's age for the retry buffer's age limit. */
  readonly dataMs: number;
  readonly items: readonly T[];
  readonly encoder: ItemEncoder<T>;
  /** The item's name, for logs about a dropped item. */
  readonly nameOf: (item: T) => string;
  /** The window's delivery bookkeeping, when it is on disk: items it says are done are skipped. */
  readonly ledger: BatchDelivery | undefined;
}

/** Where the batcher reports items it drops, and items it takes in. */
export interface BatcherAccounting {
  /** Items of `kind` taken from a window. */
  received(kind: PayloadKind, items: number): void;
  /** Items of `kind` dropped before any payload held them. */
  lose(kind: PayloadKind, items: number, reason: SinkDropReason, tally: LossTally, log?: DropLog): void;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Encodes windows into payloads; its encoders live as long as the sink (their caches make later windows cheap). */
export class Batcher {
  private readonly seriesEncoder = new SeriesEncoder();
  private readonly sketchEncoder = new SketchEncoder();
  private readonly encoders: {
    readonly series: ItemEncoder<Series>;
    readonly sketches: ItemEncoder<SketchSeries>;
    readonly events: ItemEncoder<StatsdEvent>;
    readonly checks: ItemEncoder<ServiceCheck>;
  };

  constructor(
    private readonly limits: Readonly<Record<PayloadKind, PayloadLimits>>,
    private readonly compressor: Compressor,
    private readonly scratchPool: BufferPool,
    private readonly accounting: BatcherAccounting,
  ) {
    const series = this.seriesEncoder;
    const sketch = this.sketchEncoder;
    this.encoders = {
      series: { encode: (s) => (series.encode(s) ? series.bytes : -1), write: (w) => w.addText(series.text, series.bytes) },
      sketches: { encode: (s) => (sketchIsValid(s) ? sketch.size(s) : -1), write: (w) => w.addWith(sketch.bytes, sketch.fill) },
      events: bufferEncoder(encodeEvent),
      checks: bufferEncoder(encodeCheck),
    };
  }

  /** Encodes every item of `batch` into payloads put on `out`, kind by kind; drops (and counts) what cannot be encoded or fit. */
  async batch(batch: MetricBatch, out: PayloadQueue, tally: LossTally, ledger?: BatchDelivery): Promise<void> {
    const dataMs = batch.windowStartMs;
    const e = this.encoders;
    await this.group({ kind: 'series', dataMs, items: batch.series, encoder: e.series, nameOf: (s) => s.metric, ledger }, out, tally);
    await this.group({ kind: 'sketches', dataMs, items: batch.sketches, encoder: e.sketches, nameOf: (s) => s.metric, ledger }, out, tally);
    await this.group({ kind: 'events', dataMs, items: batch.events, encoder: e.events, nameOf: (ev) => ev.title, ledger }, out, tally);
    await this.group({ kind: 'checks', dataMs, items: batch.serviceChecks, encoder: e.checks, nameOf: (c) => c.name, ledger }, out, tally);
  }

  private async group<T>(job: GroupJob<T>, out: PayloadQueue, tally: LossTally): Promise<void> {
    if (job.items.length === 0) return;
    let done = 0;
    if (job.ledger?.replay === true) for (let i = 0; i < job.items.length; i++) if (job.ledger.done(BATCH_KIND[job.kind], i)) done++;
    if (done === job.items.length) return;
    this.accounting.received(job.kind, job.items.length - done);
    const writer = new PayloadWriter(job.kind, this.scratchPool);
    try {
      await this.fill(job, out, tally, writer);
    } finally {
      writer.dispose();
    }
  }

  private async fill<T>({ kind, dataMs, items, encoder, nameOf, ledger }: GroupJob<T>, out: PayloadQueue, tally: LossTally, writer: PayloadWriter): Promise<void> {
    const limits = this.limits[kind];
    const spec = KIND_SPECS[kind];
    const envelope = spec.prefix.length + spec.suffix.length;
    // Compression is only known afterwards: aim the raw size at what the learnt ratio says fits compressed.
    const rawTarget = Math.min(limits.maxUncompressedBytes, Math.floor((COMPRESSED_HEADROOM * limits.maxCompressedBytes) / this.compressor.ratio[kind]));
    const batchKind = BATCH_KIND[kind];
    // Only a window exported before (a replay) has items done; a first export skips the probe per item.
    const skip = ledger?.replay === true ? ledger : undefined;
    // Index in `items` of each item written to the open body, so a delivered body can say which items it held.
    let idx: number[] = [];
    const push = async (): Promise<void> => {
      const raw = writer.close();
      const held = Uint32Array.from(idx);
      idx = [];
      if (raw !== undefined) await out.put({ kind, dataMs, raw: raw.raw, starts: raw.starts, scratch: raw.scratch, body: undefined, idx: held, ledger });
    };
    let sliceStart = performance.now();
    for (let i = 0; i < items.length; i++) {
      if (i % SLICE_CHECK_EVERY === SLICE_CHECK_EVERY - 1 && performance.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
      if (skip?.done(batchKind, i) === true) continue; // delivered before a restart
      const item = items[i]!;
      let bytes: number;
      try {
        bytes = encoder.encode(item);
      } catch {
        bytes = -1;
      }
      if (bytes < 0) {
        this.accounting.lose(kind, 1, 'invalid_value', tally, {
          code: 'MD_ERR_AGG_NON_FINITE',
          fields: { kind, name: nameOf(item).slice(0, 200) },
          message: 'Datadog sink: dropped an item with a non-finite value.',
        });
        continue;
      }
      if (envelope + bytes > limits.maxUncompressedBytes) {
        this.accounting.lose(kind, 1, 'payload_too_large', tally, tooLargeLog(kind, nameOf(item), 'uncompressed', envelope + bytes, limits.maxUncompressedBytes));
        continue;
      }
      if (writer.items > 0 && (writer.items >= limits.maxItems || writer.sizeWith(bytes) > rawTarget)) {
        await push();
        sliceStart = performance.now();
        // The encoders are shared: another export may have used this one while we waited.
        encoder.encode(item);
      }
      encoder.write(writer);
      idx.push(i);
    }
    await push();
  }
}
