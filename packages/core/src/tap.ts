/**
 * The tap: parsed samples offered to whoever watches (`metrics-distributor tap`), sampled and
 * rate-limited so watching cannot slow ingestion. With nobody subscribed the ingest path reads one
 * boolean per line ({@link TapHub.active}) and nothing else; with a subscriber, a line the sampler
 * passes over costs a decrement ({@link TapHub.countdown}).
 */
import type { MetricType, Sample } from './model.js';
import type { SampleView } from './parser/types.js';

/** One sample as a tap subscriber sees it: copied out of the packet, so it may be kept. */
export interface TapSample {
  /** Component id of the front-end it came through, e.g. `statsd-udp`. */
  component: string;
  /** Metric name as received. */
  name: string;
  /** Wire type. */
  type: MetricType;
  /** Values of the line (several for multi-value lines); empty for sets. */
  values: number[];
  /** A set's member; undefined for other types. */
  setMember?: string;
  /** Tags as received (not yet normalised). */
  tags: string[];
  /** Sample rate (1 when absent). */
  sampleRate: number;
  /** When it arrived (epoch ms). */
  atMs: number;
}

/** What a subscriber wants to see. */
export interface TapFilter {
  /** Glob over the metric name: `*` any run of characters, `?` one; everything else literal. Default: all. */
  match?: string;
  /** Wire types to show; default: all. */
  types?: readonly MetricType[];
  /** Samples shown per second at most; default {@link DEFAULT_TAP_PER_SECOND}, at most {@link MAX_TAP_PER_SECOND}. */
  maxPerSecond?: number;
}

/** One delivery to a subscriber, every {@link TAP_TICK_MS} when there is something to say. */
export interface TapDelivery {
  /** Samples shown, in arrival order. */
  samples: TapSample[];
  /** Lines not shown since the last delivery: over the rate limit, or passed over by the sampler (their match unknown). */
  skipped: number;
}

/** Receives a subscriber's deliveries; called from a timer, never from the ingest path. */
export type TapListener = (d: TapDelivery) => void;

/** What the admin listener needs of a tap: a subscription, ended by calling what it returns. */
export interface TapSource {
  /** Starts delivering matching samples to `listener` until the returned function is called. */
  subscribe(filter: TapFilter, listener: TapListener): () => void;
}

/** Samples per second a subscriber sees unless it asks otherwise. */
export const DEFAULT_TAP_PER_SECOND = 100;
/** Most samples per second a subscriber may ask for. */
export const MAX_TAP_PER_SECOND = 1000;
/** How often buffered samples are delivered and budgets refilled, in ms. */
export const TAP_TICK_MS = 250;
/**
 * Lines per second examined (name decoded, filters run) at most, however fast lines arrive: the
 * sampler passes over the others, so a tap costs a bounded amount of work per second.
 */
const MAX_EXAMINED_PER_SECOND = 20_000;
/** {@link MAX_EXAMINED_PER_SECOND} per tick. */
const EXAMINED_PER_TICK = (MAX_EXAMINED_PER_SECOND * TAP_TICK_MS) / 1000;

/** A glob over metric names as a RegExp anchored at both ends. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) re += ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  return new RegExp(`^${re}$`, 's');
}

interface Subscriber {
  match: RegExp | undefined;
  types: ReadonlySet<MetricType> | undefined;
  perTick: number;
  budget: number;
  buffer: TapSample[];
  skipped: number;
  listener: TapListener;
}

/** Whether `sub` shows a sample of this type and name now: it matches and the tick's budget has room (else it is counted as skipped). */
function admit(sub: Subscriber, type: MetricType, name: string): boolean {
  if (sub.types !== undefined && !sub.types.has(type)) return false;
  if (sub.match !== undefined && !sub.match.test(name)) return false;
  if (sub.budget <= 0) {
    sub.skipped++;
    return false;
  }
  sub.budget--;
  return true;
}

/** The tap of one aggregator: every front-end's receiver offers its lines here while {@link active}. */
export class TapHub implements TapSource {
  /** True while at least one subscriber is connected: the one thing the ingest path reads when nobody taps. */
  active = false;
  /**
   * Lines until the next one is examined, decremented by the receivers themselves (see
   * StatsdReceiver), so a line passed over costs a decrement and no call.
   */
  countdown = 1;
  private readonly subs = new Set<Subscriber>();
  private timer: NodeJS.Timeout | undefined;
  /** What `countdown` was last reset to; lines passed over are counted from it. */
  private resetTo = 1;
  /** Every `stride`-th line is examined; adapted each tick to the line rate, doubled within a tick that examines too many. */
  private stride = 1;
  /** Lines accounted for this tick at each examination (the count-down each one ended). */
  private accounted = 0;
  /** Lines examined this tick. */
  private examinedThisTick = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** {@link TapSource.subscribe}. */
  subscribe(filter: TapFilter, listener: TapListener): () => void {
    const perSecond = Math.min(MAX_TAP_PER_SECOND, Math.max(1, Math.floor(filter.maxPerSecond ?? DEFAULT_TAP_PER_SECOND)));
    const perTick = Math.max(1, Math.round((perSecond * TAP_TICK_MS) / 1000));
    const sub: Subscriber = {
      match: filter.match === undefined || filter.match === '' || filter.match === '*' ? undefined : globToRegExp(filter.match),
      types: filter.types === undefined || filter.types.length === 0 ? undefined : new Set(filter.types),
      perTick,
      budget: perTick,
      buffer: [],
      skipped: 0,
      listener,
    };
    this.subs.add(sub);
    this.active = true;
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.tick(), TAP_TICK_MS);
      this.timer.unref();
    }
    return () => {
      this.subs.delete(sub);
      if (this.subs.size > 0) return;
      this.active = false;
      clearInterval(this.timer);
      this.timer = undefined;
      this.stride = this.countdown = this.resetTo = 1;
      this.accounted = this.examinedThisTick = 0;
    };
  }

  /** Number of subscribers now. */
  get size(): number {
    return this.subs.size;
  }

  /** Offers a parsed line whose count-down ran out (see {@link countdown}); `view` is copied if shown. */
  offerView(view: SampleView, component: string): void {
    this.examined();
    const buf = view.buf;
    const type = view.type;
    // Decoded once per examined line, which the sampler bounds per second.
    const name = buf.toString('utf8', view.nameStart, view.nameEnd);
    for (const sub of this.subs) {
      if (!admit(sub, type, name)) continue;
      sub.buffer.push({
        component,
        name,
        type,
        values: Array.from(view.values.subarray(0, view.valueCount)),
        ...(type === 's' ? { setMember: buf.toString('utf8', view.setStart, view.setEnd) } : {}),
        tags: view.tagsStart >= 0 ? buf.toString('utf8', view.tagsStart, view.tagsEnd).split(',') : [],
        sampleRate: view.sampleRate,
        atMs: this.now(),
      });
    }
  }

  /** Offers an object-form sample (log drains) whose count-down ran out, like {@link offerView}. */
  offerSample(sample: Sample, component: string): void {
    this.examined();
    for (const sub of this.subs) {
      if (!admit(sub, sample.type, sample.name)) continue;
      sub.buffer.push({
        component,
        name: sample.name,
        type: sample.type,
        values: sample.type === 's' ? [] : [sample.value],
        ...(sample.type === 's' ? { setMember: sample.setMember ?? String(sample.value) } : {}),
        tags: [...(sample.tags ?? [])],
        sampleRate: sample.sampleRate ?? 1,
        atMs: this.now(),
      });
    }
  }

  /** Accounts for the lines counted down to this one and restarts the count-down. */
  private examined(): void {
    this.accounted += this.resetTo;
    if (++this.examinedThisTick >= EXAMINED_PER_TICK) this.stride *= 2;
    this.countdown = this.resetTo = this.stride;
  }

  /** Delivers buffers, refills budgets and adapts the stride to the last tick's line rate. */
  private tick(): void {
    // Lines since the last tick: those accounted at examinations, plus the current count-down's progress (carried over).
    const partial = this.resetTo - this.countdown;
    const lines = this.accounted + partial;
    const passedOver = Math.max(0, lines - this.examinedThisTick);
    this.accounted = -partial;
    this.examinedThisTick = 0;
    this.stride = Math.max(1, Math.ceil(lines / EXAMINED_PER_TICK));
    for (const sub of [...this.subs]) {
      const skipped = sub.skipped + passedOver;
      const samples = sub.buffer;
      sub.buffer = [];
      sub.skipped = 0;
      sub.budget = sub.perTick;
      if (samples.length > 0 || skipped > 0) sub.listener({ samples, skipped });
    }
  }
}
