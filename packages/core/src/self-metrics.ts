/**
 * Self-metrics: once per window, every component's counters (as deltas since the last window),
 * drop counts and gauges become ordinary `metrics_distributor.*` samples of the closing window.
 */
import type { ContextTable } from './context-table.js';
import type { OpenWindow } from './open-window.js';
import { COUNTER_FIELDS, type ComponentStats, type StatsRegistry } from './stats.js';

/** Records the process's self-metrics into the open window. */
export class SelfMetrics {
  /** How long building and handing out the last closed window took (ms). */
  lastFlushMs = 0;
  /** Totals already reported, by `<component>/<counter>`, so each window gets the delta. */
  private readonly reported = new Map<string, number>();

  constructor(
    private readonly stats: StatsRegistry,
    /** The aggregator's own stats. */
    private readonly self: ComponentStats,
    private readonly table: ContextTable,
    private readonly open: OpenWindow,
  ) {}

  /** Turns the deltas of every component's counters into samples of the open (closing) window. */
  record(): void {
    // Exempt from maxContexts, so a full table cannot hide `dropped{reason:max_contexts}` itself.
    this.table.exempt = true;
    try {
      this.recordNow();
    } finally {
      this.table.exempt = false;
    }
  }

  private recordNow(): void {
    this.self.gauge('contexts', this.table.size);
    this.self.gauge('flush_duration_ms', Math.round(this.lastFlushMs * 1000) / 1000);
    for (const s of this.stats.all()) {
      const tag = `component:${s.component}`;
      for (const field of COUNTER_FIELDS) this.counter(`metrics_distributor.${field}`, [tag], `${s.component}/${field}`, s[field]);
      for (const [name, total] of s.namedCounters()) this.counter(`metrics_distributor.${name}`, [tag], `${s.component}/named/${name}`, total);
      for (const [reason, total] of s.dropReasons()) {
        this.counter('metrics_distributor.dropped', [tag, `reason:${reason}`], `${s.component}/dropped/${reason}`, total);
      }
      for (const [name, value] of s.gaugeValues()) this.open.addSample({ name: `metrics_distributor.${name}`, type: 'g', value, tags: [tag] }, 1);
    }
  }

  private counter(name: string, tags: string[], id: string, total: number): void {
    const prev = this.reported.get(id) ?? 0;
    if (total === 0 && prev === 0) return;
    this.reported.set(id, total);
    this.open.addSample({ name, type: 'c', value: total - prev, tags }, 1);
  }
}
