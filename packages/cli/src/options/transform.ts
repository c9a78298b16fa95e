/**
 * Options of the transform stage: mapping, name filter list, tag filter and namespace. The nested
 * blocks and the agent's own key names are accepted in a config file exactly as a `datadog.yaml`
 * writes them, so a user can paste them; each option has one camelCase key besides.
 */
import { TransformStage, type TransformOptions } from '@metrics-distributor/core';
import { fail, oneOf, parseBool, parseList, parseString, readDataFile, type OptionsOf } from './parse.js';

/** A statsd_exporter mapping file, read and checked at start-up; workers get its content, not the path. */
export interface MappingFile {
  /** Where it was read from, for messages. */
  path: string;
  /** Its parsed content (`mappings: [...]`). */
  content: unknown;
}

/** The validated settings of this part; every part is off unless set. */
export interface TransformConfig {
  namespace: string | undefined;
  namespaceBlocklist: readonly string[] | undefined;
  mappingConfig: MappingFile | undefined;
  metricFilterlist: readonly string[];
  metricFilterlistMatchPrefix: boolean;
  metricFilterlistMode: 'block' | 'allow';
  dogstatsdMapperProfiles: unknown;
  metricTagFilterlist: unknown;
}

/** The agent also takes these blocks as JSON strings (its `DD_*` environment form); so do we. */
function block(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return fail('expected a list (YAML or JSON)');
  }
}

/** Reads and compiles a statsd_exporter mapping file, so a bad one stops start-up. */
function readMappingFile(raw: unknown): MappingFile {
  const path = parseString(raw);
  const content = readDataFile(path, 'mapping file');
  new TransformStage({ statsdExporterMappings: content });
  return { path, content };
}

/** A parser of one agent block, checked by compiling it alone, so its errors name the block's own paths. */
function agentBlock(field: 'mapperProfiles' | 'tagFilterlist') {
  return (raw: unknown): unknown => {
    const value = block(raw);
    new TransformStage({ [field]: value });
    return value;
  };
}

/** This part's options, in help order. `fileKeys` are the Datadog agent's names for the same key. */
export const TRANSFORM_OPTIONS: readonly OptionsOf<TransformConfig>[] = [
  {
    key: 'namespace',
    fileKeys: ['statsd_metric_namespace'],
    flag: '--namespace',
    arg: '<prefix>',
    description: "prefix for every metric name (a '.' is added), except those of --namespace-blocklist; the agent's statsd_metric_namespace",
    parse: (raw) => {
      if (typeof raw !== 'string') fail(`expected a string, got ${JSON.stringify(raw)}`);
      return raw === '' ? undefined : raw;
    },
    default: () => undefined,
  },
  {
    key: 'namespaceBlocklist',
    fileKeys: ['statsd_metric_namespace_blocklist', 'statsd_metric_namespace_blacklist'],
    flag: '--namespace-blocklist',
    arg: '<list>',
    description: "comma list of name prefixes that get no namespace (default: the agent's list: datadog.agent, jvm, kafka, …)",
    parse: parseList,
    default: () => undefined,
  },
  {
    key: 'mappingConfig',
    flag: '--mapping-config',
    arg: '<file>',
    description: "a statsd_exporter mapping file (YAML): glob and regex mappings, labels as tags, action: drop; read and checked at start-up",
    parse: readMappingFile,
    default: () => undefined,
  },
  {
    key: 'metricFilterlist',
    fileKeys: ['metric_filterlist', 'statsd_metric_blocklist'],
    flag: '--metric-filterlist',
    arg: '<list>',
    description: 'comma list of metric names (final names: after mapping and namespace) blocked, or the only ones allowed',
    parse: parseList,
    default: () => [],
  },
  {
    key: 'metricFilterlistMatchPrefix',
    fileKeys: ['metric_filterlist_match_prefix', 'statsd_metric_blocklist_match_prefix'],
    flag: '--metric-filterlist-match-prefix',
    description: '--metric-filterlist entries are name prefixes',
    parse: parseBool,
    default: () => false,
  },
  {
    key: 'metricFilterlistMode',
    flag: '--metric-filterlist-mode',
    arg: '<block|allow>',
    description: 'block the listed names (default, as the agent) or allow only them',
    parse: oneOf(['block', 'allow'] as const),
    default: () => 'block',
  },
  {
    key: 'dogstatsdMapperProfiles',
    fileKeys: ['dogstatsd_mapper_profiles'],
    description: "the agent's dogstatsd_mapper_profiles block (config file only)",
    parse: agentBlock('mapperProfiles'),
    default: () => undefined,
  },
  {
    key: 'metricTagFilterlist',
    fileKeys: ['metric_tag_filterlist'],
    description: "the agent's metric_tag_filterlist block: tag keys excluded from (or kept on) named metrics (config file only)",
    parse: agentBlock('tagFilterlist'),
    default: () => undefined,
  },
];

/** The aggregator's transform options from the config; undefined when nothing is set. */
export function transformOptions(config: TransformConfig): TransformOptions | undefined {
  const opts: TransformOptions = {};
  if (config.dogstatsdMapperProfiles !== undefined) opts.mapperProfiles = config.dogstatsdMapperProfiles;
  if (config.mappingConfig !== undefined) opts.statsdExporterMappings = config.mappingConfig.content;
  if (config.metricFilterlist.length > 0 || config.metricFilterlistMode === 'allow') {
    opts.filterlist = { names: config.metricFilterlist, matchPrefix: config.metricFilterlistMatchPrefix, mode: config.metricFilterlistMode };
  }
  if (config.metricTagFilterlist !== undefined) opts.tagFilterlist = config.metricTagFilterlist;
  if (config.namespace !== undefined) opts.namespace = config.namespace;
  if (config.namespaceBlocklist !== undefined) opts.namespaceBlocklist = config.namespaceBlocklist;
  return Object.keys(opts).length === 0 ? undefined : opts;
}

/** Cross-checks of the parsed part: what no single option can see. */
export function checkTransform(config: TransformConfig): void {
  // An allow list with no entry would drop every metric: certainly not what was meant.
  if (config.metricFilterlistMode === 'allow' && config.metricFilterlist.length === 0) {
    fail('--metric-filterlist-mode allow needs a --metric-filterlist (an empty allow list blocks every metric)');
  }
  const opts = transformOptions(config);
  if (opts !== undefined) new TransformStage(opts);
}
