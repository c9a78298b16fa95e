/**
 * The transform stage between the parser and the aggregator: mapping, namespace, name filter and tag
 * filter, in the agent's order (the mapper sees the name as sent; the namespace is added to the
 * mapped name; filters see the final name). It decides per metric name, not per line: the aggregator
 * asks only when it creates a context, and decisions are cached, bounded, by name.
 */
import { Namespace, NameFilter, compileTagFilters, type NameFilterOptions, type TagKeyFilter } from './filters.js';
import { configError, MetricMapper } from './mapper.js';

/** What to do with every sample of one metric name. */
export interface TransformDecision {
  /** The name the sample is aggregated under. */
  readonly name: string;
  /** True when the name is filtered out: the sample never creates a context (`dropped{reason:blocked}`). */
  readonly blocked: boolean;
  /** Tags a mapping adds. */
  readonly addTags: readonly string[];
  /** Which of the sample's own tags survive, when a tag filter names this metric. */
  readonly tagFilter: TagKeyFilter | undefined;
}

/** Options of a {@link TransformStage}; every part is off unless given. */
export interface TransformOptions {
  /** The agent's `dogstatsd_mapper_profiles` block, as read from the config file. */
  mapperProfiles?: unknown;
  /** A statsd_exporter mapping file's parsed content (`mappings: [...]`). */
  statsdExporterMappings?: unknown;
  /** A name filter list. */
  filterlist?: NameFilterOptions;
  /** The agent's `metric_tag_filterlist` block. */
  tagFilterlist?: unknown;
  /** Prefix for every name (the agent's `statsd_metric_namespace`); a `.` is added when missing. */
  namespace?: string;
  /** Name prefixes that get no namespace; default the agent's list ({@link DEFAULT_NAMESPACE_BLOCKLIST}). */
  namespaceBlocklist?: readonly string[];
  /** Decisions cached by name at most; past it the oldest goes. Default 1000, the agent's mapper cache. */
  cacheSize?: number;
}

function isStringList(v: unknown): v is readonly string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Checks the fields TypeScript checks for typed callers, for those that build options from a file. */
function checkOptions(opts: TransformOptions): void {
  const f = opts.filterlist as Partial<Record<keyof NameFilterOptions, unknown>> | undefined;
  if (f !== undefined) {
    if (!isStringList(f.names)) throw configError('transform.filterlist.names', 'must be a list of metric names');
    if (f.matchPrefix !== undefined && typeof f.matchPrefix !== 'boolean') throw configError('transform.filterlist.matchPrefix', 'must be true or false');
    if (f.mode !== undefined && f.mode !== 'block' && f.mode !== 'allow') throw configError('transform.filterlist.mode', "must be 'block' or 'allow'");
  }
  if (opts.namespace !== undefined && typeof opts.namespace !== 'string') throw configError('transform.namespace', 'must be a string');
  if (opts.namespaceBlocklist !== undefined && !isStringList(opts.namespaceBlocklist)) throw configError('transform.namespaceBlocklist', 'must be a list of name prefixes');
  if (opts.cacheSize !== undefined && !(Number.isInteger(opts.cacheSize) && opts.cacheSize >= 1)) throw configError('transform.cacheSize', 'must be an integer ≥ 1');
}

const UNCHANGED_TAGS: readonly string[] = Object.freeze([]);

/** The compiled transform stage. Construction validates the whole config once; throws a config MdError naming the field. */
export class TransformStage {
  private readonly mapper: MetricMapper | undefined;
  private readonly namespace: Namespace | undefined;
  private readonly filter: NameFilter | undefined;
  private readonly tagFilters: ReadonlyMap<string, TagKeyFilter>;
  private readonly cache = new Map<string, TransformDecision>();
  private readonly cacheSize: number;

  constructor(opts: TransformOptions) {
    checkOptions(opts);
    const mappers: MetricMapper[] = [];
    if (opts.mapperProfiles !== undefined) mappers.push(MetricMapper.fromProfiles(opts.mapperProfiles));
    if (opts.statsdExporterMappings !== undefined) mappers.push(MetricMapper.fromStatsdExporter(opts.statsdExporterMappings));
    const mapper = MetricMapper.combine(mappers);
    this.mapper = mapper.empty ? undefined : mapper;
    this.namespace = opts.namespace !== undefined && opts.namespace !== '' ? new Namespace(opts.namespace, opts.namespaceBlocklist) : undefined;
    this.filter = opts.filterlist !== undefined && (opts.filterlist.names.length > 0 || opts.filterlist.mode === 'allow') ? new NameFilter(opts.filterlist) : undefined;
    this.tagFilters = opts.tagFilterlist !== undefined ? compileTagFilters(opts.tagFilterlist) : new Map();
    this.cacheSize = opts.cacheSize ?? 1000;
  }

  /** True when nothing is configured, so the aggregator can skip the stage entirely. */
  get empty(): boolean {
    return this.mapper === undefined && this.namespace === undefined && this.filter === undefined && this.tagFilters.size === 0;
  }

  /** Decisions currently cached (bounded by `cacheSize`). */
  get cached(): number {
    return this.cache.size;
  }

  /** What happens to samples named `name`; computed once per name while it stays cached. */
  decide(name: string): TransformDecision {
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit;
    const d = this.compute(name);
    if (this.cache.size >= this.cacheSize) {
      // Map iteration is insertion order: the first key is the oldest.
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    this.cache.set(name, d);
    return d;
  }

  private compute(sent: string): TransformDecision {
    let name = sent;
    let addTags = UNCHANGED_TAGS;
    if (this.mapper !== undefined) {
      const r = this.mapper.map(sent);
      if (r === 'drop') return { name: sent, blocked: true, addTags, tagFilter: undefined };
      if (r !== 'unmatched') {
        name = r.name;
        addTags = r.tags;
      }
    }
    if (this.namespace !== undefined) name = this.namespace.apply(name);
    const blocked = this.filter?.blocks(name) ?? false;
    return { name, blocked, addTags, tagFilter: this.tagFilters.get(name) };
  }

  /**
   * The tags a sample of `decision`'s metric gets: its own plus the mapping's (appended, as the agent's
   * mapper does), less those the metric's tag filter drops; `tags` itself when nothing changes.
   * `host:` tags always stay: they choose the host and are taken out of the tags later. `removed` is
   * how many tags the filter took out.
   */
  static applyTags(decision: TransformDecision, tags: readonly string[]): { tags: readonly string[]; removed: number } {
    const f = decision.tagFilter;
    const all = decision.addTags.length === 0 ? tags : [...tags, ...decision.addTags];
    if (f === undefined) return { tags: all, removed: 0 };
    const kept = all.filter((t) => t.startsWith('host:') || f.keeps(t));
    return { tags: kept, removed: all.length - kept.length };
  }
}
