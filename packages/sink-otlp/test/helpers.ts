/** Batches for the tests: one 10 s window at a fixed start. */
import { AgentSketch, type MetricBatch, type Series, type SketchSeries } from '@metrics-distributor/core';

/** Window start of every test batch (epoch ms): the last closed 10 s window, so retries do not find it expired. */
export const START_MS = Math.floor(Date.now() / 10_000) * 10_000 - 10_000;
/** Its start and end in unix nanoseconds, as OTLP/JSON strings. */
export const START_NS = String(BigInt(START_MS) * 1_000_000n);
/** End of the 10 s window in unix nanoseconds. */
export const END_NS = String(BigInt(START_MS + 10_000) * 1_000_000n);

/** A series of the test window. */
export function series(metric: string, type: Series['type'], value: number, tags: string[] = [], host = 'web-1'): Series {
  return { metric, type, value, timestamp: START_MS / 1000, interval: 10, tags, host };
}

/** A distribution of the test window holding `values`. */
export function sketch(metric: string, values: readonly number[], tags: string[] = [], host = 'web-1'): SketchSeries {
  const s = new AgentSketch();
  s.insertMany(values);
  return { metric, timestamp: START_MS / 1000, interval: 10, tags, host, sketch: s.toData() };
}

/** The test window with these items. */
export function windowOf(items: Series[], sketches: SketchSeries[] = []): MetricBatch {
  return { windowStartMs: START_MS, intervalMs: 10_000, series: items, sketches, events: [], serviceChecks: [] };
}

/** γ of the agent sketch, and the bias of its keys: written here from the agent's definition. */
const GAMMA = 1 + 1 / 64;

/**
 * The exponential bucket (scale 6) of a sketch key's value, from the spec's definition: bucket i is
 * (base^i, base^(i+1)], so an exact power of the base is in the bucket below.
 */
export function expectedIndex(key: number): number {
  const v = GAMMA ** (key - 1338);
  const base = 2 ** (1 / 64);
  let i = Math.floor(Math.log2(v) * 64);
  while (base ** i >= v) i--;
  while (base ** (i + 1) < v) i++;
  return i;
}

/** Counts the event loop's turns (one setImmediate each) until `stop()`, which returns the count. */
export function countTurns(): { stop(): number } {
  let turns = 0;
  let counting = true;
  const tick = () => {
    turns++;
    if (counting) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    stop: () => {
      counting = false;
      return turns;
    },
  };
}
