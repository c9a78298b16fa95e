import { AgentSketch, ComponentContext, ComponentStats, silentLogger, type MetricBatch, type Series, type SketchData, type SketchSeries } from '@metrics-distributor/core';
import { PrometheusSink, type PrometheusSinkOptions } from '../src/index.js';

/** A sink context whose drops can be read back. */
export function testContext(): ComponentContext<'sink'> {
  return new ComponentContext('sink', 'sink-prometheus', silentLogger(), new ComponentStats('sink-prometheus'));
}

/** A settable clock. */
export function fakeClock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** A sink with a test context and clock, not listening. */
export function makeSink(opts: PrometheusSinkOptions = {}, clock = fakeClock()) {
  const context = testContext();
  const sink = new PrometheusSink({ listenPort: 0, ...opts }, { context, now: clock.now });
  return { sink, context, clock };
}

/** The agent-layout sketch of some values. */
export function sketchOf(values: readonly number[]): SketchData {
  const s = new AgentSketch();
  for (const v of values) s.insert(v);
  return s.toData();
}

const WINDOW = 1_700_000_000_000;

/** A series point with defaults (a 10 s window, no tags, no host). */
export function point(metric: string, type: Series['type'], value: number, extra: Partial<Series> = {}): Series {
  return { metric, type, value, timestamp: WINDOW / 1000, interval: 10, tags: [], host: '', ...extra };
}

/** A sketch series with defaults. */
export function dist(metric: string, values: readonly number[], extra: Partial<SketchSeries> = {}): SketchSeries {
  return { metric, timestamp: WINDOW / 1000, interval: 10, tags: [], host: '', sketch: sketchOf(values), ...extra };
}

/** A batch of series and sketches. */
export function batch(series: Series[], sketches: SketchSeries[] = []): MetricBatch {
  return { windowStartMs: WINDOW, intervalMs: 10_000, series, sketches, events: [], serviceChecks: [] };
}

/** The sample lines (no comments) of an exposition, in order. */
export function samples(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}
