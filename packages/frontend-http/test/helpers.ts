/** Shared test helpers: fixtures, a real aggregator, captured logs, and a compact view of a batch. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { Aggregator, ComponentNames, componentContext, createRootLogger, type AddResult, type ComponentContext, type IngestTarget, type Logger, type MetricBatch, type Sample } from '@metrics-distributor/core';
import { HttpFrontend, type HttpFrontendDeps, type HttpFrontendOptions } from '../src/index.js';
import { LogIngest } from '../src/ingest.js';
import { SampleFeed } from '../src/feed.js';
import type { BadValueReason } from '../src/heroku-metrics.js';
import type { LogLine as DrainLine } from '../src/platform-lines.js';

/** Byte-exact drain bodies copied from the project's shared fixtures, so a clone is self-contained. */
export const FIXTURES = fileURLToPath(new URL('./fixtures/logdrains/', import.meta.url));

/** One MANIFEST.json entry. */
export interface FixtureEntry {
  file: string;
  bytes: number;
  headers: Record<string, string>;
  expect: Record<string, unknown>;
}

/** The fixture manifest, as committed. */
export const MANIFEST = JSON.parse(readFileSync(`${FIXTURES}MANIFEST.json`, 'utf8')) as FixtureEntry[];

/** The exact bytes of a fixture file. */
export function fixture(file: string): Buffer {
  return readFileSync(FIXTURES + file);
}

/** The manifest entry of a fixture. */
export function entry(file: string): FixtureEntry {
  const e = MANIFEST.find((m) => m.file === file);
  if (e === undefined) throw new Error(`no fixture ${file}`);
  return e;
}

/** One captured pino line. */
export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A real pino logger whose JSON lines are kept, so tests can assert what was (not) logged. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: LogLine[]; text: () => string } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const logger = createRootLogger({
    level,
    destination: {
      write: (s: string) => {
        raw.push(s);
        lines.push(JSON.parse(s) as LogLine);
      },
    },
  });
  return { logger, lines, text: () => raw.join('') };
}

/** The aggregator every test uses: no self-metrics, host `h`, counters as counts so values read plainly. */
export function newAggregator(): Aggregator {
  return new Aggregator({ selfMetrics: false, hostname: 'h', countersAs: 'count' });
}

/** The `http` context on `agg`'s registry, as the CLI builds it. */
export function httpContext(agg: Aggregator, logger: Logger): ComponentContext<'http'> {
  return componentContext({ logger, stats: agg.stats }, 'http', ComponentNames.http);
}

/** The front-end's collaborators on `agg`, wired as the CLI wires them. */
export function httpDeps(agg: Aggregator, logger: Logger): HttpFrontendDeps {
  const context = httpContext(agg, logger);
  const statsd = componentContext({ logger, stats: agg.stats }, 'http', ComponentNames.httpStatsd);
  return { target: agg.target(context), context, statsdTarget: agg.target(statsd) };
}

/** A log ingest into `agg`, counting on its `http` component. */
export function ingestInto(agg: Aggregator, logger: Logger, maxLineBytes = 10240): LogIngest {
  const context = httpContext(agg, logger);
  return new LogIngest(agg.target(context), context, maxLineBytes);
}

/** One `addSample` the production path made: a copy of the sample, and its weight. */
export interface Added {
  sample: Sample;
  weight: number;
}

/** An ingest target that keeps copies of what it is given (the hot path reuses its sample objects). */
export function recordingTarget(windowStartMs = 0): IngestTarget & { added: Added[] } {
  const added: Added[] = [];
  return {
    added,
    windowStartMs,
    statsd: () => undefined,
    statsdLine: () => undefined,
    addSample(sample: Sample, weight = 1): AddResult {
      added.push({ sample: { ...sample, tags: [...(sample.tags ?? [])] }, weight });
      return 'accepted';
    },
  };
}

/** The samples production makes of one line (as a body of one line, tagged `app:<app>`), and the values it skipped. */
export function lineSamples(line: DrainLine, app?: string): { added: Added[]; bad: [BadValueReason, string][] } {
  const target = recordingTarget();
  const feed = new SampleFeed(target);
  const bad: [BadValueReason, string][] = [];
  feed.begin(app);
  feed.line(line, (reason, key) => bad.push([reason, key]));
  feed.end();
  return { added: target.added, bad };
}

/** A front-end on a fresh aggregator (not listening: tests use `inject()`), closed at teardown. */
export function setup(t: Test, opts: HttpFrontendOptions = {}, level = 'debug') {
  const agg = newAggregator();
  const log = captureLogger(level);
  const fe = new HttpFrontend({ port: 0, ...opts }, httpDeps(agg, log.logger));
  t.teardown(() => fe.close());
  return { agg, fe, log, stats: agg.stats.component('http') };
}

/**
 * A batch as sorted `metric type value [tags] host` strings: exact, order-free, and readable in a diff.
 * Timestamps are checked separately where they matter.
 */
export function flat(batch: MetricBatch): string[] {
  return batch.series.map((s) => `${s.metric} ${s.type} ${s.value} [${s.tags.join(',')}] ${s.host}`).sort();
}

/** Expected line of a counter (countersAs count). */
export function c(metric: string, value: number, tags: string[]): string {
  return `${metric} count ${value} [${[...tags].sort().join(',')}] h`;
}

/** Expected line of a gauge. */
export function g(metric: string, value: number, tags: string[]): string {
  return `${metric} gauge ${value} [${[...tags].sort().join(',')}] h`;
}

/** Expected lines of a timer/histogram that got the single value `v` (default aggregates and p95). */
export function h1(metric: string, v: number, tags: string[]): string[] {
  return [g(`${metric}.max`, v, tags), g(`${metric}.median`, v, tags), g(`${metric}.avg`, v, tags), c(`${metric}.count`, 1, tags), g(`${metric}.95percentile`, v, tags)];
}

/** Sorted copy, to compare with {@link flat}. */
export function sorted(lines: (string | string[])[]): string[] {
  return lines.flat().sort();
}

/** `Basic base64(userinfo)`. */
export function basic(userinfo: string): string {
  return `Basic ${Buffer.from(userinfo).toString('base64')}`;
}
