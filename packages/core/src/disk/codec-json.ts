/**
 * The version-1 window record: JSON lines of at most {@link CHUNK_ITEMS} items each after one header
 * line. No longer written; kept so records written before an upgrade to the binary record are still
 * read and delivered.
 */
import type { BatchItemKind } from '../contracts.js';
import type { MetricBatch } from '../model.js';

/** Items per JSON line. */
const CHUNK_ITEMS = 256;
/** Encoding and decoding yield after this long. */
const SLICE_MS = 2;
const NL = 0x0a;
const KINDS: readonly BatchItemKind[] = ['series', 'sketches', 'events', 'serviceChecks'];

/** The header of a version-1 record. */
export interface JsonWindowMeta {
  /** Format version. */
  readonly v: 1;
  /** Window start, unix ms. */
  readonly windowStartMs: number;
  /** Window length, ms. */
  readonly intervalMs: number;
  /** Items of each kind, series, sketches, events, service checks. */
  readonly counts: readonly [number, number, number, number];
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Encodes `batch` as a version-1 record; only tests and the codec bench still write one. */
export async function encodeJsonBatch(batch: MetricBatch): Promise<Buffer[]> {
  const meta: JsonWindowMeta = {
    v: 1,
    windowStartMs: batch.windowStartMs,
    intervalMs: batch.intervalMs,
    counts: [batch.series.length, batch.sketches.length, batch.events.length, batch.serviceChecks.length],
  };
  const parts: Buffer[] = [Buffer.from(`${JSON.stringify(meta)}\n`)];
  let sliceStart = performance.now();
  for (let k = 0; k < KINDS.length; k++) {
    const items: readonly unknown[] = batch[KINDS[k]!];
    for (let i = 0; i < items.length; i += CHUNK_ITEMS) {
      parts.push(Buffer.from(`[${k},${JSON.stringify(items.slice(i, i + CHUNK_ITEMS))}]\n`));
      if (performance.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
  }
  return parts;
}

/** The header line of a version-1 record, or undefined when it is not one. */
export function decodeJsonMeta(data: Buffer): JsonWindowMeta | undefined {
  const nl = data.indexOf(NL);
  try {
    const meta = JSON.parse(data.subarray(0, nl < 0 ? data.length : nl).toString('utf8')) as Partial<JsonWindowMeta>;
    if (meta.v !== 1 || typeof meta.windowStartMs !== 'number' || !Array.isArray(meta.counts)) return undefined;
    return meta as JsonWindowMeta;
  } catch {
    return undefined;
  }
}

/** Decodes a version-1 record back into a batch; yields between slices. Undefined when it does not parse. */
export async function decodeJsonBatch(data: Buffer): Promise<MetricBatch | undefined> {
  const meta = decodeJsonMeta(data);
  if (meta === undefined) return undefined;
  const lists: unknown[][] = [[], [], [], []];
  let pos = data.indexOf(NL) + 1;
  let sliceStart = performance.now();
  try {
    while (pos > 0 && pos < data.length) {
      let end = data.indexOf(NL, pos);
      if (end < 0) end = data.length;
      const [k, items] = JSON.parse(data.subarray(pos, end).toString('utf8')) as [number, unknown[]];
      const list = lists[k];
      if (list === undefined || !Array.isArray(items)) return undefined;
      for (const it of items) list.push(it);
      pos = end + 1;
      if (performance.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
  } catch {
    return undefined;
  }
  for (let k = 0; k < 4; k++) if (lists[k]!.length !== meta.counts[k]) return undefined;
  return {
    windowStartMs: meta.windowStartMs,
    intervalMs: meta.intervalMs,
    series: lists[0] as MetricBatch['series'],
    sketches: lists[1] as MetricBatch['sketches'],
    events: lists[2] as MetricBatch['events'],
    serviceChecks: lists[3] as MetricBatch['serviceChecks'],
  };
}
