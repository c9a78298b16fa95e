/**
 * A sink that prints each closed window: JSON lines for pipes and files (one object per series,
 * distribution, event or service check), or an aligned table for a human at a terminal.
 */
import {
  AgentSketch,
  ComponentContext,
  ComponentStats,
  MdError,
  RateLimitedLog,
  SUCCESS,
  silentLogger,
  type ExportResult,
  type MetricBatch,
  type ServiceCheck,
  type Sink,
  type SketchSeries,
  type StatsdEvent,
} from '@metrics-distributor/core';

/** Options of the {@link ConsoleSink}. */
export interface ConsoleSinkOptions {
  /** `json` lines, a `table`, or `auto` (table on a TTY, else JSON). Default `auto`. */
  format?: 'json' | 'table' | 'auto';
  /** Where output goes. Default `process.stdout` (logs go to stderr, so stdout stays clean). */
  stream?: NodeJS.WritableStream;
}

/** One JSON line of a gauge, rate or count series; keys appear in this order. */
export interface SeriesLine {
  metric: string;
  type: 'count' | 'rate' | 'gauge';
  timestamp: number;
  value: number;
  interval: number;
  tags: readonly string[];
  host: string;
}

/** One JSON line of a distribution: the sketch summarised, percentiles estimated from it. */
export interface DistributionLine {
  metric: string;
  type: 'distribution';
  timestamp: number;
  interval: number;
  tags: readonly string[];
  host: string;
  count: number;
  min: number;
  max: number;
  avg: number;
  p50: number;
  p95: number;
  p99: number;
}

/** Percentiles shown for distributions, in output order. */
const QUANTILES = [
  ['p50', 0.5],
  ['p95', 0.95],
  ['p99', 0.99],
] as const;

const STATUS_NAMES = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'] as const;

/** Summarises a distribution; exported so other text sinks print the same numbers. */
export function distributionLine(s: SketchSeries): DistributionLine {
  const sketch = AgentSketch.fromData(s.sketch);
  const d = s.sketch;
  return {
    metric: s.metric,
    type: 'distribution',
    timestamp: s.timestamp,
    interval: s.interval,
    tags: s.tags,
    host: s.host,
    count: d.count,
    min: d.min,
    max: d.max,
    avg: d.avg,
    p50: sketch.quantile(0.5),
    p95: sketch.quantile(0.95),
    p99: sketch.quantile(0.99),
  };
}

/** Renders a batch as JSON lines (each ending in `\n`); empty string for an empty window. */
export function formatJsonLines(batch: MetricBatch): string {
  let out = '';
  for (const s of batch.series) {
    // Built field by field so the key order is fixed and nothing else leaks into the output.
    const line: SeriesLine = { metric: s.metric, type: s.type, timestamp: s.timestamp, value: s.value, interval: s.interval, tags: s.tags, host: s.host };
    out += JSON.stringify(line) + '\n';
  }
  for (const s of batch.sketches) out += JSON.stringify(distributionLine(s)) + '\n';
  for (const e of batch.events) out += JSON.stringify(eventLine(e)) + '\n';
  for (const c of batch.serviceChecks) out += JSON.stringify(serviceCheckLine(c)) + '\n';
  return out;
}

/** Event fields in a fixed order; absent optional fields are left out by JSON.stringify. */
function eventLine(e: StatsdEvent): Record<string, unknown> {
  return {
    kind: 'event',
    title: e.title,
    text: e.text,
    timestampS: e.timestampS,
    host: e.host,
    aggregationKey: e.aggregationKey,
    priority: e.priority,
    sourceType: e.sourceType,
    alertType: e.alertType,
    tags: e.tags,
  };
}

/** Service check fields in a fixed order; absent optional fields are left out by JSON.stringify. */
function serviceCheckLine(c: ServiceCheck): Record<string, unknown> {
  return { kind: 'service_check', name: c.name, status: c.status, timestampS: c.timestampS, host: c.host, message: c.message, tags: c.tags };
}

/** Short, stable number text for the table: up to 6 significant digits, no trailing zeros. */
function num(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  return String(Number(v.toPrecision(6)));
}

/** Left-aligns rows into columns separated by two spaces; the last column is not padded. */
function alignRows(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  let out = '';
  for (const row of rows) {
    out += row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd() + '\n';
  }
  return out;
}

/** Renders a batch as a human-readable table, one block per window. */
export function formatTable(batch: MetricBatch): string {
  const when = new Date(batch.windowStartMs).toISOString();
  let out =
    `== window ${when} (${num(batch.intervalMs / 1000)}s): ${batch.series.length} series, ${batch.sketches.length} distributions, ` +
    `${batch.events.length} events, ${batch.serviceChecks.length} service checks ==\n`;
  if (batch.series.length + batch.sketches.length > 0) {
    const rows: string[][] = [['METRIC', 'TYPE', 'VALUE', 'TAGS', 'HOST']];
    for (const s of batch.series) rows.push([s.metric, s.type, num(s.value), s.tags.join(','), s.host]);
    for (const s of batch.sketches) {
      const d = distributionLine(s);
      const value = `count=${num(d.count)} ` + QUANTILES.map(([k]) => `${k}=${num(d[k])}`).join(' ');
      rows.push([d.metric, 'distribution', value, d.tags.join(','), d.host]);
    }
    out += alignRows(rows);
  }
  if (batch.events.length > 0) {
    out += 'EVENTS\n';
    const rows: string[][] = [];
    for (const e of batch.events) {
      // Event text may span lines; the table keeps one row per event.
      rows.push([`[${e.alertType}/${e.priority}]`, e.title, JSON.stringify(e.text), e.tags.join(','), e.host ?? '']);
    }
    out += alignRows(rows);
  }
  if (batch.serviceChecks.length > 0) {
    out += 'SERVICE CHECKS\n';
    const rows: string[][] = [];
    for (const c of batch.serviceChecks) {
      rows.push([STATUS_NAMES[c.status] ?? String(c.status), c.name, c.message === undefined ? '' : JSON.stringify(c.message), c.tags.join(','), c.host ?? '']);
    }
    out += alignRows(rows);
  }
  return out;
}

/**
 * Prints every closed window to a stream. One string is built per batch and written once, and
 * `export` resolves only after it was flushed (and `drain` seen when the stream asked for it), so a
 * slow reader (a pager, a full pipe) applies backpressure to the sink queue instead of growing memory.
 */
export class ConsoleSink implements Sink {
  /** Component id, used in logs and self-metrics. */
  readonly name = 'console';
  /** The format chosen at construction (`auto` resolved against the stream). */
  readonly format: 'json' | 'table';
  private readonly stream: NodeJS.WritableStream;
  private readonly context: ComponentContext<'sink'>;
  private readonly errorLog = new RateLimitedLog(60_000);
  private pending: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** `context` is the `sink-console` component's; without one (tests, embedders) logs go nowhere. */
  constructor(opts: ConsoleSinkOptions = {}, context?: ComponentContext<'sink'>) {
    this.stream = opts.stream ?? process.stdout;
    const format = opts.format ?? 'auto';
    this.format = format === 'auto' ? ((this.stream as { isTTY?: boolean }).isTTY === true ? 'table' : 'json') : format;
    this.context = context ?? new ComponentContext('sink', 'sink-console', silentLogger(), new ComponentStats('sink-console'));
    // An unhandled 'error' (EPIPE when the reader goes away) would crash the process; the failed
    // write is reported through its callback, so this listener only keeps the process alive.
    this.stream.on('error', (err: unknown) => {
      this.errorLog.maybe((suppressed) => this.context.logger.error({ err, suppressed }, 'Console sink stream error.'));
    });
  }

  /** Prints one window; resolves `SUCCESS`, or `failure` with `MD_ERR_SINK_EXPORT` when the write fails. Never throws. */
  async export(batch: MetricBatch): Promise<ExportResult> {
    if (this.closed) return { code: 'failure', error: new MdError('MD_ERR_SINK_EXPORT', 'console sink is shut down') };
    let text: string;
    try {
      text = this.format === 'json' ? formatJsonLines(batch) : formatTable(batch);
    } catch (err) {
      return { code: 'failure', error: new MdError('MD_ERR_SINK_EXPORT', 'console sink could not format the batch', { cause: err }) };
    }
    if (text.length === 0) return SUCCESS;
    // Chained so that concurrent exports (the queue does not make any, embedders might) keep window order.
    const write = this.pending.then(() => this.write(text));
    this.pending = write;
    const err = await write;
    if (err === undefined) return SUCCESS;
    return { code: 'failure', error: new MdError('MD_ERR_SINK_EXPORT', `console sink write failed: ${err.message}`, { cause: err }) };
  }

  /**
   * Writes `text` once and resolves with the write error, if any, once the callback ran and, when
   * `write` returned false, 'drain' was seen. A stream closed mid-write also settles it.
   */
  private write(text: string): Promise<Error | undefined> {
    const stream = this.stream;
    return new Promise<Error | undefined>((resolve) => {
      let settled = false;
      let written = false;
      let drained = true;
      const finish = (err: Error | undefined): void => {
        if (settled) return;
        settled = true;
        stream.off('drain', onDrain);
        stream.off('close', onClose);
        resolve(err);
      };
      const onDrain = (): void => {
        drained = true;
        if (written) finish(undefined);
      };
      const onClose = (): void => finish(new Error('stream closed before the write completed'));
      stream.on('close', onClose);
      let ok: boolean;
      try {
        ok = stream.write(text, (err?: Error | null) => {
          if (err) return finish(err);
          written = true;
          if (drained) finish(undefined);
        });
      } catch (err) {
        finish(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      // 'drain' is always emitted asynchronously, so listening after write() returned misses nothing.
      if (!ok && !settled) {
        drained = false;
        stream.on('drain', onDrain);
      }
    });
  }

  /** Waits for pending writes until `deadlineMs` (epoch ms), then refuses further exports. Idempotent; the stream is not ended (it is usually stdout). */
  async shutdown(deadlineMs: number = Date.now() + 10_000): Promise<void> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.pending.then(() => undefined),
      new Promise<void>((resolve) => {
        // Not unref'd: the caller is awaiting this deadline, so it must keep the process alive until then.
        timer = setTimeout(resolve, Math.max(0, deadlineMs - Date.now()));
      }),
    ]);
    clearTimeout(timer);
  }
}
