/**
 * Process health as self-metrics, so an operator can alert on a stalled event loop or growing memory
 * from the same place as the other `metrics_distributor.*` series, without reading logs.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { ComponentStats } from '@metrics-distributor/core';

/** Timer resolution of the loop-delay monitor: delays shorter than this are not seen. */
const LOOP_RESOLUTION_MS = 10;

/** Samples event-loop delay continuously and sets gauges on a `process` component at each window boundary. */
export class ProcessMetrics {
  private readonly loop: IntervalHistogram;

  constructor(private readonly stats: ComponentStats) {
    this.loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.loop.enable();
  }

  /**
   * Sets the gauges for the window that is closing: loop delay max and p99 over that window (the
   * histogram is reset each time), resident and heap memory now. Delays are beyond the monitor's own
   * timer period, so an idle loop reads about 0.
   */
  record(): void {
    const ms = (ns: number) => Math.max(0, Math.round(((ns - LOOP_RESOLUTION_MS * 1e6) / 1e6) * 1000) / 1000);
    const hasSamples = this.loop.count > 0;
    this.stats.gauge('event_loop_delay_max_ms', hasSamples ? ms(this.loop.max) : 0);
    this.stats.gauge('event_loop_delay_p99_ms', hasSamples ? ms(this.loop.percentile(99)) : 0);
    this.loop.reset();
    const mem = process.memoryUsage();
    this.stats.gauge('rss_bytes', mem.rss);
    this.stats.gauge('heap_used_bytes', mem.heapUsed);
  }

  /** Stops the loop-delay timer. */
  close(): void {
    this.loop.disable();
  }
}
