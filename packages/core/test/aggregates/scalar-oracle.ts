/**
 * Test oracle: the per-window aggregates of counters, gauges and sets written plainly, one object per
 * context. The aggregator keeps the same rules inline in its column store (src/open-window.ts for
 * samples, src/state-merge.ts for merges); test/aggregates/scalar.test.ts checks that both agree.
 */

/** Sum of value / sample rate. */
export class CounterAgg {
  /** Σ value / rate. */
  sum = 0;

  /** Adds one sample; `rate` must already be in (0, 1]. */
  add(value: number, rate: number): void {
    this.sum += value / rate;
  }

  /** Adds another window's sum. */
  merge(other: CounterAgg): void {
    this.sum += other.sum;
  }
}

/** Last value by time of arrival. */
export class GaugeAgg {
  /** The value last set. */
  value = 0;
  /** Epoch ms of the last update; merges keep the later one. */
  updatedAtMs = -Infinity;

  /** Sets the gauge as of `atMs`. */
  set(value: number, atMs: number): void {
    this.value = value;
    this.updatedAtMs = atMs;
  }

  /** Keeps whichever side was updated last (ties go to `other`, the later arrival). */
  merge(other: GaugeAgg): void {
    if (other.updatedAtMs >= this.updatedAtMs) {
      this.value = other.value;
      this.updatedAtMs = other.updatedAtMs;
    }
  }
}

/** Distinct members; flushed as their number. */
export class SetAgg {
  /** Members as raw strings. */
  readonly members = new Set<string>();

  /** Adds one member. */
  add(member: string): void {
    this.members.add(member);
  }

  /** Number of distinct members. */
  get size(): number {
    return this.members.size;
  }

  /** Union with another window's members. */
  merge(other: SetAgg): void {
    for (const m of other.members) this.members.add(m);
  }
}
