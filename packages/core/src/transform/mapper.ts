/**
 * The DogStatsD mapper: the agent's `dogstatsd_mapper_profiles`, and statsd_exporter's mapping file
 * compiled onto the same engine. Profiles are tried in order (a profile applies when the name starts
 * with its `prefix`, or its prefix is `*`), the first matching mapping wins, and a name matching
 * nothing passes unchanged. Matching runs once per new metric name: the stage caches the result.
 */
import { isMdError, MdError } from '../errors.js';
import { Template } from './expand.js';

/** One mapping as the agent's config writes it. */
export interface MapperMappingConfig {
  /** The pattern: a wildcard (`*` is one dot-free segment) or an anchored regex. */
  match: string;
  /** `wildcard` (default) or `regex`. */
  match_type?: 'wildcard' | 'regex';
  /** The new name; `$1`, `${1}` and `$name` expand to the match's groups. */
  name: string;
  /** Tags to add, values expanded like `name`. */
  tags?: Record<string, string>;
}

/** One profile of `dogstatsd_mapper_profiles`. */
export interface MapperProfileConfig {
  /** Profile name, for messages. */
  name: string;
  /** Only names starting with this are tried against the profile's mappings; `*` means every name. */
  prefix: string;
  /** Mappings, tried in order. */
  mappings: MapperMappingConfig[];
}

/** What a matching mapping makes of a name. */
export interface MapResult {
  /** The mapped metric name. */
  readonly name: string;
  /** `key:value` tags to add. */
  readonly tags: readonly string[];
}

interface CompiledMapping {
  readonly regex: RegExp;
  readonly name: Template;
  readonly tags: readonly (readonly [string, Template])[];
}

interface CompiledProfile {
  readonly prefix: string;
  readonly mappings: readonly CompiledMapping[];
}

/** The agent's check on wildcard patterns: no regex metacharacters besides `*` and `.`. */
const WILDCARD_PATTERN = /^[a-zA-Z0-9\-_*.]+$/;

/** Raises the config error of one field, its path named as the user wrote it. */
export function configError(path: string, message: string, unknownKey = false): MdError {
  return new MdError(unknownKey ? 'MD_ERR_CONFIG_UNKNOWN_KEY' : 'MD_ERR_CONFIG_INVALID', `${path}: ${message}`);
}

/** Checks that `value` is a plain object with only `allowed` keys, naming the first other key. */
export function objectWithKeys(value: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw configError(path, 'must be an object');
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw configError(`${path}.${key}`, `unknown key (known: ${allowed.join(', ')})`, true);
  }
  return value as Record<string, unknown>;
}

/** A required non-empty string field. */
export function stringField(obj: Record<string, unknown>, key: string, path: string): string {
  const v = obj[key];
  if (typeof v !== 'string' || v === '') throw configError(`${path}.${key}`, 'must be a non-empty string');
  return v;
}

/** A wildcard pattern as the agent compiles it: `.` literal, `*` one (possibly empty) dot-free segment, anchored. */
export function wildcardRegex(pattern: string, path: string): RegExp {
  if (!WILDCARD_PATTERN.test(pattern)) throw configError(path, `wildcard pattern '${pattern}' may only hold letters, digits, '-', '_', '.' and '*'`);
  return new RegExp(`^${pattern.replaceAll('.', '\\.').replaceAll('*', '([^.]*)')}$`);
}

/** A regex pattern, anchored at both ends as the agent does; Go's `(?P<name>` becomes JS's `(?<name>`. */
export function anchoredRegex(pattern: string, path: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern.replaceAll('(?P<', '(?<')})$`);
  } catch (cause) {
    throw new MdError('MD_ERR_CONFIG_INVALID', `${path}: invalid regex '${pattern}'`, { cause });
  }
}

/**
 * Refuses a template referring to a group its pattern lacks: Go would expand it to nothing, which
 * silently loses part of a name (a `$3` with two groups, or `$1_total` meaning the group `1_total`).
 */
function checkReferences(template: Template, regex: RegExp, match: string, path: string): Template {
  // Matching the empty alternative gives an array as long as the groups, whatever the pattern.
  const probe = new RegExp(`${regex.source}|`).exec('')!;
  const count = probe.length - 1;
  const named = new Set(Object.keys(probe.groups ?? {}));
  const { groups, names } = template.references();
  for (const g of groups) {
    if (g > count) throw configError(path, `'$${g}' refers to group ${g}, but '${match}' has ${count} group(s)`);
  }
  for (const n of names) {
    if (!named.has(n)) {
      const digits = /^([0-9]+)(.*)$/.exec(n);
      const hint = digits !== null ? ` (for group ${digits[1]} followed by '${digits[2]}', write \${${digits[1]}}${digits[2]})` : '';
      throw configError(path, `'$${n}' refers to a group named '${n}', which '${match}' has not${hint}`);
    }
  }
  return template;
}

/** Runs `compile`, adding which profile and mapping a config error is about to its message. */
function within<T>(label: string, compile: () => T): T {
  try {
    return compile();
  } catch (err) {
    if (isMdError(err)) throw new MdError(err.code, `${err.message} (${label})`, { cause: err });
    throw err;
  }
}

function compileTags(raw: unknown, path: string, regex: RegExp, match: string): (readonly [string, Template])[] {
  if (raw === undefined) return [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw configError(path, 'must be a map of tag key to value');
  return Object.entries(raw as Record<string, unknown>).map(([k, v]) => {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw configError(`${path}.${k}`, 'must be a string');
    return [k, checkReferences(new Template(String(v)), regex, match, `${path}.${k}`)] as const;
  });
}

/** Compiles and checks `dogstatsd_mapper_profiles` as read from a config file; throws a config MdError naming the field. */
function compileProfiles(raw: unknown, path: string): CompiledProfile[] {
  if (!Array.isArray(raw)) throw configError(path, 'must be a list of profiles');
  return raw.map((p: unknown, i) => {
    const pp = `${path}[${i}]`;
    const obj = objectWithKeys(p, pp, ['name', 'prefix', 'mappings']);
    const profile = stringField(obj, 'name', pp);
    return within(`profile '${profile}'`, () => {
      const prefix = stringField(obj, 'prefix', pp);
      if (!Array.isArray(obj.mappings)) throw configError(`${pp}.mappings`, 'must be a list');
      const mappings = obj.mappings.map((m: unknown, j) => {
        const mp = `${pp}.mappings[${j}]`;
        const mo = objectWithKeys(m, mp, ['match', 'match_type', 'name', 'tags']);
        const match = stringField(mo, 'match', mp);
        return within(`mapping '${match}'`, () => {
          const type = mo.match_type ?? 'wildcard';
          if (type !== 'wildcard' && type !== 'regex') throw configError(`${mp}.match_type`, "must be 'wildcard' or 'regex'");
          const regex = type === 'wildcard' ? wildcardRegex(match, `${mp}.match`) : anchoredRegex(match, `${mp}.match`);
          return {
            regex,
            name: checkReferences(new Template(stringField(mo, 'name', mp)), regex, match, `${mp}.name`),
            tags: compileTags(mo.tags, `${mp}.tags`, regex, match),
          };
        });
      });
      return { prefix, mappings };
    });
  });
}

/** statsd_exporter mapping keys that change what a series is and have no equivalent here: refused, not ignored. */
const EXPORTER_UNSUPPORTED = ['match_metric_type', 'timer_type', 'observer_type', 'buckets', 'quantiles', 'summary_options', 'histogram_options', 'honor_labels', 'ttl', 'scale'];
/** statsd_exporter mapping keys that only describe Prometheus output; accepted and without effect here. */
const EXPORTER_DESCRIPTIVE = ['help'];

/**
 * Compiles a statsd_exporter mapping file's core (`mappings` with `match`, `match_type: glob|regex`,
 * `name`, `labels`, `action: map|drop`) into one profile of the same engine. A `drop` mapping blocks
 * what it matches (the stage counts it as `blocked`).
 */
function compileExporter(raw: unknown, path: string): { profile: CompiledProfile; drops: ReadonlySet<CompiledMapping> } {
  const top = objectWithKeys(raw, path, ['mappings', 'defaults']);
  if (top.defaults !== undefined) {
    const d = objectWithKeys(top.defaults, `${path}.defaults`, ['match_type', 'glob_disable_ordering', ...EXPORTER_UNSUPPORTED]);
    for (const k of Object.keys(d)) {
      if (k === 'match_type' && (d[k] === 'glob' || d[k] === 'regex')) continue;
      if (k === 'glob_disable_ordering' && d[k] === false) continue;
      throw configError(`${path}.defaults.${k}`, 'is not supported by metrics-distributor (see the core README)');
    }
  }
  const defaultType = (top.defaults as { match_type?: string } | undefined)?.match_type ?? 'glob';
  if (!Array.isArray(top.mappings)) throw configError(`${path}.mappings`, 'must be a list');
  const drops = new Set<CompiledMapping>();
  const mappings = top.mappings.map((m: unknown, j) => {
    const mp = `${path}.mappings[${j}]`;
    const mo = objectWithKeys(m, mp, ['match', 'match_type', 'name', 'labels', 'action', ...EXPORTER_DESCRIPTIVE, ...EXPORTER_UNSUPPORTED]);
    for (const k of EXPORTER_UNSUPPORTED) {
      if (mo[k] !== undefined) throw configError(`${mp}.${k}`, 'is not supported by metrics-distributor (see the core README)');
    }
    const match = stringField(mo, 'match', mp);
    return within(`mapping '${match}'`, () => {
      const type = mo.match_type ?? defaultType;
      if (type !== 'glob' && type !== 'regex') throw configError(`${mp}.match_type`, "must be 'glob' or 'regex'");
      const action = mo.action ?? 'map';
      if (action !== 'map' && action !== 'drop') throw configError(`${mp}.action`, "must be 'map' or 'drop'");
      const regex = type === 'glob' ? wildcardRegex(match, `${mp}.match`) : anchoredRegex(match, `${mp}.match`);
      // A drop mapping's name is never used, so it is not checked against the pattern.
      const name = action === 'drop' ? new Template('dropped') : checkReferences(new Template(stringField(mo, 'name', mp)), regex, match, `${mp}.name`);
      const compiled: CompiledMapping = { regex, name, tags: compileTags(mo.labels, `${mp}.labels`, regex, match) };
      if (action === 'drop') drops.add(compiled);
      return compiled;
    });
  });
  return { profile: { prefix: '*', mappings }, drops };
}

/** What {@link MetricMapper.map} answers: no match, a mapping, or a statsd_exporter `action: drop`. */
export type MapOutcome = MapResult | 'unmatched' | 'drop';

/** The compiled mapper. Building it validates the config; `map()` is pure. */
export class MetricMapper {
  private readonly profiles: CompiledProfile[];
  private readonly drops: ReadonlySet<CompiledMapping>;

  private constructor(profiles: CompiledProfile[], drops: ReadonlySet<CompiledMapping>) {
    this.profiles = profiles;
    this.drops = drops;
  }

  /** From the agent's `dogstatsd_mapper_profiles` block, as read from YAML or JSON. `path` names it in errors. */
  static fromProfiles(raw: unknown, path = 'dogstatsd_mapper_profiles'): MetricMapper {
    return new MetricMapper(compileProfiles(raw, path), new Set());
  }

  /** From a statsd_exporter mapping file's parsed content. */
  static fromStatsdExporter(raw: unknown, path = 'mapping-config'): MetricMapper {
    const { profile, drops } = compileExporter(raw, path);
    return new MetricMapper([profile], drops);
  }

  /** Both, agent profiles first, as one mapper. */
  static combine(mappers: readonly MetricMapper[]): MetricMapper {
    const drops = new Set<CompiledMapping>();
    for (const m of mappers) for (const d of m.drops) drops.add(d);
    return new MetricMapper(
      mappers.flatMap((m) => m.profiles),
      drops,
    );
  }

  /** True when there is no mapping at all. */
  get empty(): boolean {
    return this.profiles.every((p) => p.mappings.length === 0);
  }

  /** The first matching mapping's result for `name`. */
  map(name: string): MapOutcome {
    for (const profile of this.profiles) {
      if (profile.prefix !== '*' && !name.startsWith(profile.prefix)) continue;
      for (const m of profile.mappings) {
        const match = m.regex.exec(name);
        if (match === null) continue;
        if (this.drops.has(m)) return 'drop';
        return { name: m.name.expand(match), tags: m.tags.map(([k, v]) => `${k}:${v.expand(match)}`) };
      }
    }
    return 'unmatched';
  }
}
