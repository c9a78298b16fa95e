/**
 * Self-metrics: plain number fields bumped on the hot path, turned into ordinary
 * `metrics_distributor.*` metrics once per window by the aggregator.
 */

/** Counters every component keeps; each becomes `metrics_distributor.<field>` tagged `component:<name>`. */
export class ComponentStats {
  /** Datagrams, connections' chunks or HTTP bodies received. */
  packets = 0;
  /** Raw bytes received. */
  bytes = 0;
  /** Items received: lines for front-ends, series/batches for sinks. */
  received = 0;
  /** Items understood and handed on. */
  parsed = 0;
  /** Items rejected as malformed. */
  bad = 0;
  /** Items sent successfully (sinks). */
  sent = 0;
  /** Items that failed to send (sinks). */
  failed = 0;
  private readonly drops = new Map<string, number>();
  private readonly gauges = new Map<string, number>();
  private readonly named = new Map<string, number>();

  constructor(
    /** Component id, e.g. `statsd-udp`, `aggregator`, `sink-console`. */
    readonly component: string,
  ) {}

  /** Counts `n` items lost for `reason` (a short bounded token such as `queue_full`). */
  drop(reason: string, n = 1): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + n);
  }

  /** Total dropped for `reason`, or for all reasons. */
  dropped(reason?: string): number {
    if (reason !== undefined) return this.drops.get(reason) ?? 0;
    let total = 0;
    for (const n of this.drops.values()) total += n;
    return total;
  }

  /** Adds `n` to a component-specific counter, emitted as `metrics_distributor.<name>` (e.g. `late_lines`). */
  count(name: string, n = 1): void {
    this.named.set(name, (this.named.get(name) ?? 0) + n);
  }

  /** Total of a named counter (see {@link count}). */
  counter(name: string): number {
    return this.named.get(name) ?? 0;
  }

  /** Named counters (cumulative). */
  namedCounters(): ReadonlyMap<string, number> {
    return this.named;
  }

  /** Sets a point-in-time value such as a queue depth; emitted as `metrics_distributor.<name>` gauge. */
  gauge(name: string, value: number): void {
    this.gauges.set(name, value);
  }

  /** Drop counts by reason (cumulative). */
  dropReasons(): ReadonlyMap<string, number> {
    return this.drops;
  }

  /** Gauges set so far. */
  gaugeValues(): ReadonlyMap<string, number> {
    return this.gauges;
  }
}

/** The counter fields of {@link ComponentStats} that are emitted as self-metrics. */
export const COUNTER_FIELDS = ['packets', 'bytes', 'received', 'parsed', 'bad', 'sent', 'failed'] as const;

/** All components' stats in a process; the aggregator reads deltas from it each window. */
export class StatsRegistry {
  private readonly byName = new Map<string, ComponentStats>();

  /** The stats object for `component`, created on first use. */
  component(component: string): ComponentStats {
    let s = this.byName.get(component);
    if (s === undefined) {
      s = new ComponentStats(component);
      this.byName.set(component, s);
    }
    return s;
  }

  /** Every registered component. */
  all(): IterableIterator<ComponentStats> {
    return this.byName.values();
  }
}
