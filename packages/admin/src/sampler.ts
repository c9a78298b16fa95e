/**
 * Rates over the last samples, derived by the admin listener itself: once per tick it copies every
 * component's cumulative counters from the registry into a bounded ring, and rates are the differences
 * between neighbouring copies. The ingest path is never touched; a tick costs a few hundred number
 * copies, and memory is bounded by the ring length times the number of components.
 */
import { COUNTER_FIELDS_ADMIN, type CounterField } from './fields.js';
import type { StatsRegistry } from '@metrics-distributor/core';

/** Default number of rate points kept (the page's charts show this many). */
export const DEFAULT_RING_SAMPLES = 30;

/** One copy of every counter at one instant. */
interface Snapshot {
  atMs: number;
  /** component id → cumulative values in {@link COUNTER_FIELDS_ADMIN} order. */
  counters: Map<string, Float64Array>;
  /** `component\u0000reason` → cumulative drops. */
  drops: Map<string, number>;
}

/** Per-second rates of one component over the ring, oldest first, one point per pair of neighbouring samples. */
export type RateSeries = Record<CounterField, number[]>;

/** Drops of one component for one reason: total so far and within the ring's span. */
export interface DropFigure {
  /** Component id. */
  component: string;
  /** Drop reason. */
  reason: string;
  /** Cumulative total. */
  total: number;
  /** Dropped between the oldest and the newest sample of the ring. */
  recent: number;
  /** `recent` per second over the ring's span; 0 with fewer than two samples. */
  perSecond: number;
}

/** The bounded ring of counter snapshots; {@link sample} is called once per tick by the admin server. */
export class RateRing {
  private readonly ring: Snapshot[] = [];

  constructor(
    private readonly stats: StatsRegistry,
    /** Rate points kept; the ring holds one snapshot more. */
    readonly points: number = DEFAULT_RING_SAMPLES,
    private readonly now: () => number = Date.now,
  ) {}

  /** Copies every counter now; the oldest copy goes once the ring is full. */
  sample(): void {
    const counters = new Map<string, Float64Array>();
    const drops = new Map<string, number>();
    for (const s of this.stats.all()) {
      const v = new Float64Array(COUNTER_FIELDS_ADMIN.length);
      let i = 0;
      for (const f of COUNTER_FIELDS_ADMIN) v[i++] = f === 'dropped' ? s.dropped() : s[f];
      counters.set(s.component, v);
      for (const [reason, n] of s.dropReasons()) drops.set(`${s.component}\u0000${reason}`, n);
    }
    this.ring.push({ atMs: this.now(), counters, drops });
    if (this.ring.length > this.points + 1) this.ring.shift();
  }

  /** Snapshots held. */
  get size(): number {
    return this.ring.length;
  }

  /** Milliseconds between the oldest and the newest snapshot. */
  get spanMs(): number {
    return this.ring.length < 2 ? 0 : this.ring[this.ring.length - 1]!.atMs - this.ring[0]!.atMs;
  }

  /** Component ids seen in the newest snapshot. */
  components(): string[] {
    const last = this.ring[this.ring.length - 1];
    return last === undefined ? [] : [...last.counters.keys()];
  }

  /** Per-second rates of `component`, oldest first; a component missing from a snapshot counts as 0 there. */
  series(component: string): RateSeries {
    const out = {} as RateSeries;
    for (const f of COUNTER_FIELDS_ADMIN) out[f] = [];
    for (let k = 1; k < this.ring.length; k++) {
      const a = this.ring[k - 1]!;
      const b = this.ring[k]!;
      const dt = (b.atMs - a.atMs) / 1000;
      const va = a.counters.get(component);
      const vb = b.counters.get(component);
      let i = 0;
      for (const f of COUNTER_FIELDS_ADMIN) {
        const d = (vb?.[i] ?? 0) - (va?.[i] ?? 0);
        // Counters only grow; a negative difference (a registry swapped underneath) reads as no traffic.
        out[f].push(dt > 0 && d > 0 ? round(d / dt) : 0);
        i++;
      }
    }
    return out;
  }

  /** Every drop reason seen, with its total and what the ring's span saw of it. */
  drops(): DropFigure[] {
    const last = this.ring[this.ring.length - 1];
    if (last === undefined) return [];
    const first = this.ring[0]!;
    const span = (last.atMs - first.atMs) / 1000;
    const out: DropFigure[] = [];
    for (const [key, total] of last.drops) {
      const sep = key.indexOf('\u0000');
      const recent = Math.max(0, total - (first.drops.get(key) ?? 0));
      out.push({ component: key.slice(0, sep), reason: key.slice(sep + 1), total, recent, perSecond: span > 0 ? round(recent / span) : 0 });
    }
    return out;
  }

  /** Increase of `field` of `component` over the ring's span. */
  recent(component: string, field: CounterField): number {
    const last = this.ring[this.ring.length - 1];
    if (last === undefined) return 0;
    const i = COUNTER_FIELDS_ADMIN.indexOf(field);
    return Math.max(0, (last.counters.get(component)?.[i] ?? 0) - (this.ring[0]!.counters.get(component)?.[i] ?? 0));
  }
}

/** Three decimals are plenty for a rate shown to a person, and keep the JSON short. */
function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
