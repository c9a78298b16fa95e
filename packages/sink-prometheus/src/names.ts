/**
 * Prometheus naming rules: metric and label names sanitised the way statsd_exporter does, label
 * values and help text escaped, numbers formatted as the exposition formats want them.
 */

/** Characters that may not appear in an exposed metric or label name (statsd_exporter also maps `:`). */
const INVALID_NAME_CHARS = /[^a-zA-Z0-9_]/gu;
/** Label names Prometheus gives a meaning on histograms and summaries; a tag of that name is renamed. */
const RESERVED_LABELS: ReadonlySet<string> = new Set(['le', 'quantile']);

/**
 * A metric name as Prometheus accepts it: every character outside `[a-zA-Z0-9_]` (dots, dashes,
 * colons, anything non-ASCII) becomes `_`, and a leading digit gets a `_` prefix, as in statsd_exporter.
 * Colons are legal in Prometheus but reserved for recording rules, so they are mapped too.
 */
export function sanitizeMetricName(name: string): string {
  let out = name.replace(INVALID_NAME_CHARS, '_');
  if (out === '') out = '_';
  const c = out.charCodeAt(0);
  if (c >= 48 && c <= 57) out = '_' + out;
  return out;
}

/**
 * A label name from a tag key: the metric-name rules, plus `__`-prefixed names (reserved for
 * Prometheus' internal labels, dropped at scrape) and `le`/`quantile` (bucket and quantile labels)
 * are prefixed with `exported_`, as Prometheus itself renames clashing target labels.
 */
export function sanitizeLabelName(name: string): string {
  const out = sanitizeMetricName(name);
  if (out.startsWith('__') || RESERVED_LABELS.has(out)) return 'exported_' + out;
  return out;
}

/** Label values escape backslash, double quote and newline, in both formats. */
export function escapeLabelValue(v: string): string {
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and newline (0.0.4); OpenMetrics also escapes the double quote. */
export function escapeHelp(v: string, openMetrics: boolean): string {
  const s = v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  return openMetrics ? s.replace(/"/g, '\\"') : s;
}

/** A sample value as both formats spell it: `+Inf`, `-Inf`, `NaN`, else the shortest round-trip decimal. */
export function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

/**
 * The label set of a tag list, rendered once as `k="v",k2="v2"` (no braces, no host): tags `k:v`
 * become labels, sorted by sanitised name so tag lists that sanitise alike give the same string.
 * Bare tags and tags with an empty value are left out, as statsd_exporter does (an empty label is
 * the same as no label in Prometheus). When two tags give the same label name (`env:a,env:b`, or
 * `a.b:1,a_b:2`) the first in sorted tag order wins; `duplicates` counts the others.
 */
export function renderTagLabels(tags: readonly string[]): { labels: string; duplicates: number; bare: number } {
  const pairs: [string, string][] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let bare = 0;
  for (const tag of tags) {
    const i = tag.indexOf(':');
    if (i <= 0 || i === tag.length - 1) {
      bare++;
      continue;
    }
    const name = sanitizeLabelName(tag.slice(0, i));
    // `host` is the series' host; a tag sanitising to it would give the label twice.
    if (name === 'host' || seen.has(name)) {
      duplicates++;
      continue;
    }
    seen.add(name);
    pairs.push([name, tag.slice(i + 1)]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  let labels = '';
  for (const [k, v] of pairs) labels += (labels === '' ? '' : ',') + k + '="' + escapeLabelValue(v) + '"';
  return { labels, duplicates, bare };
}

/** Hosts remembered per tag list before that list's host cache is cleared (user input: it must be bounded). */
const HOSTS_PER_TAGS = 4096;

/** The cached label strings of one tag list: its tag labels, and the full label set per host. */
interface TagsEntry {
  readonly body: string;
  readonly byHost: Map<string, string>;
}

/**
 * Caches the label string of each tag list and host. Core interns tag lists (one array per tag set,
 * shared by contexts and windows), so a WeakMap on the array and a Map on the host turn the per-point
 * cost into two lookups, and hand out the same string each time: its hash is computed once, where a
 * freshly concatenated key would be flattened and hashed again on every series lookup.
 */
export class LabelCache {
  private readonly byTags = new WeakMap<readonly string[], TagsEntry>();
  /** Tags that gave a label name already taken, since start (counted once per tag list). */
  duplicates = 0;
  /** Bare or empty-valued tags left out, since start (counted once per tag list). */
  bare = 0;

  /** `host="h",k="v"…` for a host and a tag list: the series' identity within its family and its rendered labels. */
  labels(host: string, tags: readonly string[]): string {
    let entry = this.byTags.get(tags);
    if (entry === undefined) {
      const r = renderTagLabels(tags);
      this.duplicates += r.duplicates;
      this.bare += r.bare;
      entry = { body: r.labels, byHost: new Map() };
      this.byTags.set(tags, entry);
    }
    let labels = entry.byHost.get(host);
    if (labels === undefined) {
      const body = entry.body;
      const h = host === '' ? '' : 'host="' + escapeLabelValue(host) + '"';
      labels = h === '' ? body : body === '' ? h : h + ',' + body;
      if (entry.byHost.size >= HOSTS_PER_TAGS) entry.byHost.clear();
      entry.byHost.set(host, labels);
    }
    return labels;
  }
}
