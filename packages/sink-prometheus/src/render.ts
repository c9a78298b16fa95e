/**
 * Renders the exposition state in the Prometheus text format 0.0.4 or OpenMetrics 1.0, in slices so
 * a scrape of a large state gives the event loop turns, and picks the format from `Accept`.
 */
import { Slicer, type SliceFigures } from '@metrics-distributor/core';
import { escapeHelp, formatValue } from './names.js';
import type { ExpositionState, Family, SeriesState } from './state.js';

/** The two exposition formats. */
export type ExpositionFormat = 'text' | 'openmetrics';

/** Content-Type of each format, as client_golang sends them. */
export const CONTENT_TYPES: Readonly<Record<ExpositionFormat, string>> = {
  text: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
};

/**
 * The format for an `Accept` header: the acceptable entry of highest `q` (earliest on ties) among
 * `application/openmetrics-text` (version 1.0.0, 0.0.1 or none), `text/plain` (0.0.4 or none) and
 * wildcards; text when nothing matches or there is no header, as client_golang falls back.
 */
export function negotiate(accept: string | undefined): ExpositionFormat {
  if (accept === undefined || accept === '') return 'text';
  let best: ExpositionFormat = 'text';
  let bestQ = -1;
  for (const entry of accept.split(',')) {
    const parts = entry.split(';');
    const type = parts[0]!.trim().toLowerCase();
    let q = 1;
    let version: string | undefined;
    for (let i = 1; i < parts.length; i++) {
      const p = parts[i]!;
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      const k = p.slice(0, eq).trim().toLowerCase();
      const v = p.slice(eq + 1).trim();
      if (k === 'q') q = Number(v);
      else if (k === 'version') version = v;
    }
    if (!(q > 0) || q <= bestQ) continue;
    let format: ExpositionFormat | undefined;
    if (type === 'application/openmetrics-text' && (version === undefined || version === '1.0.0' || version === '0.0.1')) format = 'openmetrics';
    else if (type === 'text/plain' && (version === undefined || version === '0.0.4')) format = 'text';
    else if (type === '*/*' || type === 'text/*') format = 'text';
    if (format === undefined) continue;
    best = format;
    bestQ = q;
  }
  return best;
}

/** What a render needs besides the state. */
export interface RenderOptions {
  /** Histogram bucket upper bounds (`+Inf` implied). */
  buckets: readonly number[];
  /** The clock, for skipping series past their TTL. */
  nowMs: number;
  /** Yield to the event loop after this many series at most (and after each slice's time budget); 0 renders in one go. */
  yieldEvery: number;
  /** Told the longest synchronous slice of the render once it is done. */
  onLongestSlice?: (slice: SliceFigures) => void;
  /** Quantiles of summaries, in the state's order. */
  quantiles?: readonly number[];
}

const HELP_KIND: Readonly<Record<Family['type'], string>> = {
  counter: 'counter (cumulative sum of every window)',
  gauge: 'gauge',
  histogram: 'distribution (cumulative histogram from its sketches)',
  summary: 'distribution (quantiles of the last window with samples; cumulative sum and count)',
};

function helpText(fam: Family): string {
  return `StatsD ${HELP_KIND[fam.type]} ${fam.rawName}, via metrics-distributor.`;
}

function braces(labels: string): string {
  return labels === '' ? '' : '{' + labels + '}';
}

/** The lines of one series. */
function seriesLines(fam: Family, st: SeriesState, om: boolean, les: readonly string[], qls: readonly string[]): string {
  switch (fam.type) {
    case 'counter':
      return fam.name + '_total' + braces(st.labels) + ' ' + formatValue(st.value) + '\n';
    case 'gauge':
      return fam.name + braces(st.labels) + ' ' + formatValue(st.value) + '\n';
    case 'histogram': {
      const prefix = fam.name + '_bucket{' + (st.labels === '' ? '' : st.labels + ',') + 'le="';
      const buckets = st.buckets!;
      let body = '';
      let cum = 0;
      for (let i = 0; i < buckets.length; i++) {
        cum += buckets[i]!;
        body += prefix + les[i]! + '"} ' + formatValue(cum) + '\n';
      }
      const l = braces(st.labels);
      const count = fam.name + '_count' + l + ' ' + formatValue(st.count) + '\n';
      const sum = fam.name + '_sum' + l + ' ' + formatValue(st.scale === 1 ? st.value : st.value * st.scale) + '\n';
      // OpenMetrics orders a histogram's samples buckets, count, sum; 0.0.4 as client_golang: sum, count.
      return om ? body + count + sum : body + sum + count;
    }
    case 'summary': {
      const prefix = fam.name + '{' + (st.labels === '' ? '' : st.labels + ',') + 'quantile="';
      const qs = st.quantiles!;
      let body = '';
      for (let i = 0; i < qs.length; i++) body += prefix + qls[i]! + '"} ' + formatValue(qs[i]!) + '\n';
      const l = braces(st.labels);
      const count = fam.name + '_count' + l + ' ' + formatValue(st.count) + '\n';
      const sum = fam.name + '_sum' + l + ' ' + formatValue(st.scale === 1 ? st.value : st.value * st.scale) + '\n';
      // Same orders as histograms: OpenMetrics count then sum, 0.0.4 sum then count (client_golang).
      return om ? body + count + sum : body + sum + count;
    }
  }
}

function header(fam: Family, om: boolean): string {
  // 0.0.4 names the family by its sample name (`x_total`); OpenMetrics by the family name (`x`).
  const name = !om && fam.type === 'counter' ? fam.name + '_total' : fam.name;
  return '# HELP ' + name + ' ' + escapeHelp(helpText(fam), om) + '\n# TYPE ' + name + ' ' + fam.type + '\n';
}

/** The `le` label value of each bucket, `+Inf` last. */
export function bucketLabels(buckets: readonly number[]): string[] {
  return [...buckets.map(formatValue), '+Inf'];
}

/** Chunks handed out at about this many characters: big enough for few writes, small enough to stream. */
const CHUNK_CHARS = 64 * 1024;

/** Series rendered between two looks at the clock: a histogram series is about a kilobyte of text. */
const RENDER_CHECK_EVERY = 16;

/**
 * Renders the state as chunks of text, giving the event loop a turn after each slice's time budget
 * and at least every `yieldEvery` series, so a
 * scrape streams to the socket instead of building one string of tens of MiB. Families are taken as a
 * snapshot, and each family's series too, so one created or removed meanwhile is either fully in or
 * skipped, and no name or series is ever written twice.
 */
export async function* renderChunks(state: ExpositionState, format: ExpositionFormat, opts: RenderOptions): AsyncGenerator<string, void, boolean | undefined> {
  const om = format === 'openmetrics';
  const les = bucketLabels(opts.buckets);
  const qls = (opts.quantiles ?? []).map(formatValue);
  let pending = '';
  let since = 0;
  const clock = new Slicer({ checkEvery: RENDER_CHECK_EVERY });
  for (const fam of state.snapshot()) {
    if (fam.removed) continue;
    let headed = false;
    for (const st of Array.from(fam.series.values())) {
      if (state.expired(st, opts.nowMs)) continue;
      // The header waits for a live series: a family whose series all expired is left out.
      if (!headed) {
        pending += header(fam, om);
        headed = true;
      }
      pending += seriesLines(fam, st, om, les, qls);
      if (pending.length >= CHUNK_CHARS) {
        // The consumer says whether it waited for the socket to drain (an event-loop turn): the slice ends there.
        const waited = yield pending;
        pending = '';
        if (waited === true) clock.restart();
      }
      if (opts.yieldEvery > 0 && (++since >= opts.yieldEvery || clock.tick())) {
        since = 0;
        await clock.pause();
      }
    }
  }
  if (om) pending += '# EOF\n';
  if (pending !== '' && (yield pending) === true) clock.restart();
  opts.onLongestSlice?.(clock.finish());
}

/** Renders the state into one string (tests, small states); scrapes use {@link renderChunks}. */
export async function render(state: ExpositionState, format: ExpositionFormat, opts: RenderOptions): Promise<string> {
  const out: string[] = [];
  for await (const chunk of renderChunks(state, format, opts)) out.push(chunk);
  return out.join('');
}
