/**
 * Graphite names: etsy statsd's namespaces (legacy or not, with its prefixes and suffix), its key
 * sanitiser, and tags as Graphite 1.1 tags (`;k=v`), folded nodes (`.k_v`) or nothing.
 */
import type { ResolvedOptions } from './options.js';

/**
 * etsy's `keyNameSanitize` (whitespace → `_`, `/` → `-`, then only `[A-Za-z0-9_.-]` kept), minus `;`
 * and `=`, which etsy kept only because its tags were already in the key. Empty nodes are removed too:
 * carbon stores `a..b` and `a.b` in the same file.
 */
export function sanitizeName(raw: string): string {
  if (/^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/.test(raw)) return raw;
  return raw
    .replace(/\s+/g, '_')
    .replace(/\//g, '-')
    .replace(/[^A-Za-z0-9_.-]/g, '')
    .replace(/\.{2,}/g, '.')
    .replace(/^\.|\.$/g, '');
}

/** A Graphite 1.1 tag name: non-empty, none of `;!^=` (nor whitespace, which ends the name on the wire). */
function tagName(raw: string): string {
  const s = raw.replace(/[;!^=\s]/g, '_');
  // carbon keeps the metric's own name under the tag `name`: a user tag of that name would replace it.
  return s === 'name' ? '_name' : s;
}

/** A Graphite 1.1 tag value: non-empty, no `;`, not starting with `~` (nor whitespace). */
function tagValue(raw: string): string {
  const s = raw.replace(/[;\s]/g, '_');
  return s.startsWith('~') ? `_${s.slice(1)}` : s;
}

/** One folded node: what a name node allows, dots included in nothing. */
function foldNode(raw: string): string {
  return raw.replace(/\s+/g, '_').replace(/\//g, '-').replace(/\./g, '_').replace(/[^A-Za-z0-9_-]/g, '');
}

/** `k:v` (or a bare `k`, valued `true`, as Graphite tags need a value) as sorted, merged pairs. */
function pairs(tags: readonly string[], host: string | undefined): [string, string][] {
  const byName = new Map<string, string[]>();
  const add = (k: string, v: string): void => {
    if (k.length === 0 || v.length === 0) return;
    const vs = byName.get(k);
    if (vs === undefined) byName.set(k, [v]);
    else if (!vs.includes(v)) vs.push(v);
  };
  for (const t of tags) {
    const i = t.indexOf(':');
    add(i < 0 ? t : t.slice(0, i), i < 0 ? 'true' : t.slice(i + 1));
  }
  if (host !== undefined && host.length > 0) add('host', host);
  // A name given twice (`env:a`, `env:b`) keeps both values, joined, so the two contexts stay apart.
  return [...byName].map(([k, vs]): [string, string] => [k, vs.join(',')]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** The tag part of a line's name for one tag set, rendered once per context (tag arrays are shared). */
export class TagRenderer {
  private readonly cache = new WeakMap<readonly string[], { host: string; text: string }>();

  constructor(
    private readonly mode: ResolvedOptions['tagMode'],
    private readonly hostTag: boolean,
  ) {}

  /** `;k=v;…`, `.k_v.…` or `` for `tags` (and `host`, when host tags are on). */
  render(tags: readonly string[], host: string): string {
    if (this.mode === 'drop' || (tags.length === 0 && (!this.hostTag || host.length === 0))) return '';
    const hit = this.cache.get(tags);
    if (hit !== undefined && hit.host === host) return hit.text;
    const text = this.build(tags, this.hostTag ? host : undefined);
    this.cache.set(tags, { host, text });
    return text;
  }

  private build(tags: readonly string[], host: string | undefined): string {
    if (this.mode === 'graphite') {
      const merged = new Map<string, string>();
      for (const [k, v] of pairs(tags, host)) {
        const name = tagName(k);
        const value = tagValue(v);
        const had = merged.get(name);
        merged.set(name, had === undefined ? value : `${had},${value}`);
      }
      // In carbon's own order (it sorts the `;k=v` strings), so equal series get equal names here too.
      return [...merged].map(([k, v]) => `;${k}=${v}`).sort().join('');
    }
    let out = '';
    for (const [k, v] of pairs(tags, host)) {
      const n = foldNode(`${k}_${v}`);
      if (n.length > 0) out += `.${n}`;
    }
    return out;
  }
}

/** The namespaces of each kind of series, as etsy's graphite backend builds them. */
export class Namespaces {
  /** Counter rates: `<prefix>.` (legacy) or `<prefix>.<prefixCounter>.`; the key (and `.rate`) follow. */
  readonly counterRate: string;
  /** Counter counts: `stats_counts.` (legacy) or the counter namespace. */
  readonly counterCount: string;
  /** After the key of a counter rate: `` (legacy) or `.rate`. */
  readonly rateLeaf: string;
  /** After the key of a counter count: `` (legacy) or `.count`. */
  readonly countLeaf: string;
  /** Timers and distributions: `<prefix>.timers.` (legacy) or `<prefix>.<prefixTimer>.`. */
  readonly timer: string;
  /** Gauges: `<prefix>.gauges.` (legacy) or `<prefix>.<prefixGauge>.`. */
  readonly gauge: string;
  /** Sets: `<prefix>.sets.` (legacy) or `<prefix>.<prefixSet>.`; the key and `.count` follow, as in etsy. */
  readonly set: string;
  /** `.<globalSuffix>` or ``. */
  readonly suffix: string;

  constructor(o: ResolvedOptions) {
    const join = (...nodes: string[]): string => nodes.filter((n) => n.length > 0).map((n) => `${n}.`).join('');
    if (o.legacyNamespace) {
      // etsy's legacy mode keeps the global prefix but fixes the type nodes; counts are always `stats_counts`.
      this.counterRate = join(o.globalPrefix);
      this.counterCount = 'stats_counts.';
      this.rateLeaf = '';
      this.countLeaf = '';
      this.timer = join(o.globalPrefix, 'timers');
      this.gauge = join(o.globalPrefix, 'gauges');
      this.set = join(o.globalPrefix, 'sets');
    } else {
      this.counterRate = this.counterCount = join(o.globalPrefix, o.prefixCounter);
      this.rateLeaf = '.rate';
      this.countLeaf = '.count';
      this.timer = join(o.globalPrefix, o.prefixTimer);
      this.gauge = join(o.globalPrefix, o.prefixGauge);
      this.set = join(o.globalPrefix, o.prefixSet);
    }
    this.suffix = o.globalSuffix.length > 0 ? `.${o.globalSuffix}` : '';
  }
}

/** etsy's timer stat names for the aggregator's histogram aggregates. */
export const TIMER_STAT: Readonly<Record<string, string>> = Object.freeze({
  max: 'upper',
  min: 'lower',
  avg: 'mean',
  median: 'median',
  sum: 'sum',
  count: 'count',
});

/** Core's name suffix of percentile `q` (0.95 → `95`), so `.95percentile` becomes etsy's `upper_95`. */
export function percentileNumber(q: number): number {
  return Math.trunc(q * 100 + 0.5);
}
