/**
 * The cardinality explorer's scan: which metric names hold the most live contexts, and which had the
 * most samples in the last closed window. Computed on request only, a slice of the context table at a
 * time between event-loop turns, and stopped at a time budget (the report then says `truncated`).
 */
import type { AgentSketch } from './aggregates/agent-sketch.js';
import type { HistogramAgg } from './aggregates/histogram.js';
import { Kind, type Context, type ContextTable } from './context-table.js';
import type { WindowStore } from './window-store.js';

/** How {@link TopContextsQuery} ranks metric names. */
export type TopContextsBy = 'contexts' | 'samples';

/** A cardinality question: the `top` names by live contexts or by samples in the last closed window. */
export interface TopContextsQuery {
  /** How many names to return (the admin listener clamps it to [1, 500]). */
  top: number;
  /** Rank by live contexts or by samples received in the last closed window. */
  by: TopContextsBy;
  /** Example tag sets to return per name (the admin listener clamps it to [0, 10]). */
  examples: number;
}

/** One tag key of a metric name and how many distinct values it has among that name's live contexts. */
export interface TagCardinality {
  /** The tag key (the part before `:`; a tag without `:` is its own key). */
  key: string;
  /** Distinct values of that key among the name's live contexts (counting stops at {@link MAX_TRACKED_VALUES}). */
  values: number;
}

/** One metric name in a {@link TopContextsReport}. */
export interface TopContextsEntry {
  /** The metric name as received. */
  name: string;
  /** Live contexts (name + host + tags) of this name. */
  contexts: number;
  /**
   * Samples of this name in the window `windowStartMs`, as its window state knows them: the value
   * count of histograms, timers and distributions, the distinct members of sets, and one per context
   * for counters and gauges (whose state is one number), so a lower bound for those.
   */
  samples: number;
  /** Up to `examples` tag sets of live contexts of this name (normalised `key:value` strings). */
  examples: readonly (readonly string[])[];
  /** The name's tag keys with the most distinct values, most first, so the one that blew up shows. */
  tagKeys?: readonly TagCardinality[];
}

/** The answer of the cardinality explorer, computed on request from the aggregator's state. */
export interface TopContextsReport {
  /** Start (epoch ms) of the window the sample counts describe: the last closed one, or the open one before any was watched. */
  windowStartMs: number;
  /** Live contexts in total. */
  liveContexts: number;
  /** The context limit (`--max-contexts`); undefined when unlimited. */
  maxContexts: number | undefined;
  /** Distinct metric names among the contexts scanned. */
  names: number;
  /** The top names, best first. */
  entries: readonly TopContextsEntry[];
  /** True when the scan stopped at its time budget, so counts are lower bounds. */
  truncated: boolean;
}

/** Distinct values counted per tag key of a name; beyond it the count stops (memory stays bounded). */
export const MAX_TRACKED_VALUES = 1000;
/** Tag keys reported per name. */
const TAG_KEYS_SHOWN = 5;
/** Longest run of scanning before giving the event loop a turn, in ms (see the aggregator's FLUSH_SLICE_MS). */
const SCAN_SLICE_MS = 1;
/** Hash chains handled between two looks at the clock. */
const SCAN_CHUNK = 256;

/** Per-name sample counts of one window. */
export interface SampleTally {
  /** Start (epoch ms) of the window counted. */
  windowStartMs: number;
  /** Samples per metric name. */
  byName: Map<string, number>;
}

/** What a slot's window state says about its number of samples (see {@link TopContextsEntry.samples}). */
function slotSamples(ctx: Context, obj: unknown): number {
  switch (ctx.kind) {
    case Kind.Set:
      return obj === undefined ? 0 : (obj as Set<string>).size;
    case Kind.Histogram:
    case Kind.Timer:
    case Kind.Distribution:
      return obj === undefined ? 0 : (obj as HistogramAgg | AgentSketch).count;
    case Kind.Counter:
    case Kind.Gauge:
      return 1;
  }
}

/** Adds slots [from, to) of `store` to `byName`; slots already emptied (a build went past them) are skipped. */
export function tallySlots(store: WindowStore, from: number, to: number, byName: Map<string, number>): void {
  for (let i = from; i < to; i++) {
    const ctx = store.ctxs[i];
    if (ctx === undefined) continue;
    byName.set(ctx.name, (byName.get(ctx.name) ?? 0) + slotSamples(ctx, store.objs[i]));
  }
}

interface NameTally {
  contexts: number;
  examples: (readonly string[])[];
  keys: Map<string, Set<string>>;
}

/** What the scan needs from the aggregator. */
export interface TopContextsInput {
  table: ContextTable;
  /** Sample counts of the last closed window, when one was tallied; else counted from `openStore`. */
  tally: SampleTally | undefined;
  openStore: WindowStore;
  openStartMs: number;
  maxContexts: number;
  /** Total scanning time allowed, in ms, spread over event-loop turns. */
  budgetMs: number;
}

const yieldTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/** Scans the context table a slice at a time and ranks metric names; see the module comment. */
export async function scanTopContexts(q: TopContextsQuery, input: TopContextsInput): Promise<TopContextsReport> {
  const { table } = input;
  const names = new Map<string, NameTally>();
  const examples = Math.max(0, q.examples);
  let spentMs = 0;
  let truncated = false;
  const chains = table.chains();
  let done = false;
  while (!done) {
    const sliceStart = performance.now();
    while (performance.now() - sliceStart < SCAN_SLICE_MS) {
      if (scanChains(chains, SCAN_CHUNK, names, examples)) {
        done = true;
        break;
      }
    }
    spentMs += performance.now() - sliceStart;
    if (done) break;
    if (spentMs >= input.budgetMs) {
      truncated = true;
      break;
    }
    await yieldTurn();
  }
  let tally = input.tally;
  if (tally === undefined) {
    // No closed window was counted yet: the open one so far says what is busy now.
    const byName = new Map<string, number>();
    tallySlots(input.openStore, 0, input.openStore.size, byName);
    tally = { windowStartMs: input.openStartMs, byName };
  }
  const byName = tally.byName;
  const ranked = [...names.entries()].map(([name, t]) => ({ name, t, samples: byName.get(name) ?? 0 }));
  ranked.sort(q.by === 'samples' ? (a, b) => b.samples - a.samples || b.t.contexts - a.t.contexts : (a, b) => b.t.contexts - a.t.contexts || b.samples - a.samples);
  const entries: TopContextsEntry[] = ranked.slice(0, Math.max(0, q.top)).map(({ name, t, samples }) => ({
    name,
    contexts: t.contexts,
    samples,
    examples: t.examples,
    tagKeys: [...t.keys.entries()]
      .map(([key, values]) => ({ key, values: values.size }))
      .sort((a, b) => b.values - a.values)
      .slice(0, TAG_KEYS_SHOWN),
  }));
  return {
    windowStartMs: tally.windowStartMs,
    liveContexts: table.size,
    maxContexts: Number.isFinite(input.maxContexts) ? input.maxContexts : undefined,
    names: names.size,
    entries,
    truncated,
  };
}

/** Counts up to `chunk` hash chains into `names`; true once every chain has been seen. */
function scanChains(chains: IterableIterator<Context>, chunk: number, names: Map<string, NameTally>, examples: number): boolean {
  for (let n = 0; n < chunk; n++) {
    const r = chains.next();
    if (r.done === true) return true;
    for (let ctx: Context | undefined = r.value; ctx !== undefined; ctx = ctx.next) {
      let t = names.get(ctx.name);
      if (t === undefined) names.set(ctx.name, (t = { contexts: 0, examples: [], keys: new Map() }));
      t.contexts++;
      const tags = ctx.tags;
      if (t.examples.length < examples) t.examples.push(tags);
      for (const tag of tags) {
        const colon = tag.indexOf(':');
        const key = colon < 0 ? tag : tag.slice(0, colon);
        let values = t.keys.get(key);
        if (values === undefined) t.keys.set(key, (values = new Set()));
        if (values.size < MAX_TRACKED_VALUES) values.add(colon < 0 ? '' : tag.slice(colon + 1));
      }
    }
  }
  return false;
}
