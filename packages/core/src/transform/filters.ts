/**
 * Name filter lists, per-metric tag filters and the namespace, with the agent's semantics:
 * `metric_filterlist` (+ `_match_prefix`), `metric_tag_filterlist`, `statsd_metric_namespace` and its
 * blocklist. Pure, compiled once; the stage applies them once per new name.
 */
import { configError, objectWithKeys } from './mapper.js';

/** The agent's `StandardStatsdPrefixes`: names its own integrations send, never namespaced; ours added. */
export const DEFAULT_NAMESPACE_BLOCKLIST: readonly string[] = [
  'datadog.agent',
  'datadog.dogstatsd',
  'datadog.process',
  'datadog.trace_agent',
  'datadog.tracer',
  'activemq',
  'activemq_58',
  'airflow',
  'cassandra',
  'confluent',
  'hazelcast',
  'hive',
  'ignite',
  'jboss',
  'jvm',
  'kafka',
  'presto',
  'sidekiq',
  'solr',
  'tomcat',
  'runtime',
  'metrics_distributor',
];

/** A name filter list: names blocked, or the only names allowed. */
export interface NameFilterOptions {
  /** Metric names (or prefixes, with `matchPrefix`). */
  names: readonly string[];
  /** Entries are prefixes, as the agent's `metric_filterlist_match_prefix`. Default false. */
  matchPrefix?: boolean;
  /** `block` (default, the agent's only mode) drops listed names; `allow` drops every other name. */
  mode?: 'block' | 'allow';
}

/** The compiled name filter. */
export class NameFilter {
  private readonly exact: ReadonlySet<string>;
  /** Sorted, with entries covered by a shorter one removed, so one binary search answers. */
  private readonly prefixes: readonly string[];
  private readonly allow: boolean;

  constructor(opts: NameFilterOptions) {
    this.allow = (opts.mode ?? 'block') === 'allow';
    if (opts.matchPrefix === true) {
      const sorted = [...new Set(opts.names)].sort();
      const kept: string[] = [];
      for (const p of sorted) if (kept.length === 0 || !p.startsWith(kept[kept.length - 1]!)) kept.push(p);
      this.prefixes = kept;
      this.exact = new Set();
    } else {
      this.prefixes = [];
      this.exact = new Set(opts.names);
    }
  }

  private listed(name: string): boolean {
    if (this.exact.has(name)) return true;
    const ps = this.prefixes;
    let lo = 0;
    let hi = ps.length - 1;
    // The greatest entry <= name is the only prefix candidate once covered entries are removed.
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (ps[mid]! <= name) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi >= 0 && name.startsWith(ps[hi]!);
  }

  /** True when samples of `name` must be dropped. */
  blocks(name: string): boolean {
    return this.listed(name) !== this.allow;
  }
}

/** One rule of `metric_tag_filterlist`. */
export interface TagFilterRule {
  /** The metric name the rule applies to (exact, after mapping and namespace). */
  metric_name: string;
  /** `exclude` drops the listed tag keys; `include` keeps only them. */
  action: 'include' | 'exclude';
  /** Tag keys (`key` of `key:value`; a bare tag is its own key). */
  tags: readonly string[];
}

/** Which tags of one metric survive; shared by every context of that metric. */
export class TagKeyFilter {
  private readonly keys: ReadonlySet<string>;

  constructor(
    keys: readonly string[],
    private readonly include: boolean,
  ) {
    this.keys = new Set(keys);
  }

  /** True when `tag` is kept. */
  keeps(tag: string): boolean {
    const colon = tag.indexOf(':');
    return this.keys.has(colon === -1 ? tag : tag.slice(0, colon)) === this.include;
  }
}

/** Compiles `metric_tag_filterlist`, checking every field; the last rule for a name wins, as a map would. */
export function compileTagFilters(raw: unknown, path = 'metric_tag_filterlist'): ReadonlyMap<string, TagKeyFilter> {
  if (!Array.isArray(raw)) throw configError(path, 'must be a list of { metric_name, action, tags }');
  const out = new Map<string, TagKeyFilter>();
  raw.forEach((r: unknown, i) => {
    const p = `${path}[${i}]`;
    const o = objectWithKeys(r, p, ['metric_name', 'action', 'tags']);
    if (typeof o.metric_name !== 'string' || o.metric_name === '') throw configError(`${p}.metric_name`, 'must be a non-empty string');
    const action = o.action ?? 'exclude';
    if (action !== 'include' && action !== 'exclude') throw configError(`${p}.action`, "must be 'include' or 'exclude'");
    if (!Array.isArray(o.tags) || !o.tags.every((t): t is string => typeof t === 'string')) throw configError(`${p}.tags`, 'must be a list of tag keys');
    out.set(o.metric_name, new TagKeyFilter(o.tags, action === 'include'));
  });
  return out;
}

/** The agent's namespace: a prefix ending in `.`, skipped for names starting with a blocklisted prefix. */
export class Namespace {
  /** The prefix with its trailing dot. */
  readonly prefix: string;

  constructor(
    namespace: string,
    private readonly blocklist: readonly string[] = DEFAULT_NAMESPACE_BLOCKLIST,
  ) {
    this.prefix = namespace === '' || namespace.endsWith('.') ? namespace : `${namespace}.`;
  }

  /** `name` with the prefix, unless it is empty or the name is exempt. */
  apply(name: string): string {
    if (this.prefix === '') return name;
    for (const b of this.blocklist) if (name.startsWith(b)) return name;
    return this.prefix + name;
  }
}
