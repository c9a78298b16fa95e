/**
 * The Datadog sink: splits each window into payloads that fit the intake limits (`batcher.ts`),
 * compresses them off the event loop (`payload.ts`), posts them over a keep-alive undici Pool
 * (`transport.ts`), and leaves every answer to core's one retry policy (`DeliveryPolicy`: drop, split,
 * or retry from a byte-bounded buffer), so that core's queue never re-sends a whole window.
 */
import {
  ComponentStats,
  DeliveryPolicy,
  KEPT_ON_DISK_REASONS,
  InFlightExports,
  unexpectedExportError,
  windowResult,
  addLoss,
  type BatchDelivery,
  type ComponentContext,
  type DropLog,
  type ExportResult,
  type LossTally,
  type MetricBatch,
  type SendOutcome,
  type Sink,
  type SinkDropReason,
} from '@metrics-distributor/core';
import { Batcher } from './batcher.js';
import { BATCH_KIND, type PayloadKind } from './kinds.js';
import { maxAgeOf, resolveOptions, type DatadogSinkOptions, type ResolvedOptions } from './options.js';
import { Compressor, PayloadQueue, cost, count, halves, snippet, tooLargeLog, type Payload } from './payload.js';
import { DatadogTransport, type KeyStatus } from './transport.js';
import { BufferPool } from './writer.js';

/** Payloads of one export holding a pooled scratch Buffer, not yet compressed, at most: the encoder waits beyond. */
const MAX_POOLED_PAYLOADS = 3;
/** Scratch Buffers kept for reuse: those payloads, the one being written, and one spare. */
const POOLED_BUFFERS = MAX_POOLED_PAYLOADS + 2;

/** The losses of one export, and the window's delivery bookkeeping when it is on disk. */
interface ExportTally extends LossTally {
  readonly ledger: BatchDelivery | undefined;
}

/** What the sink takes besides its options and its component context. */
export interface DatadogSinkExtras {
  /**
   * Stats for the sink's detail components (`sink-datadog-series`, `sink-datadog-http-5xx`, …; see the
   * README), e.g. `(c) => registry.component(c)`. Without it they are kept but not published.
   */
  detailStats?: (component: string) => ComponentStats;
}

/**
 * Delivers windows to Datadog as the agent would: series to `/api/v2/series` (JSON), distributions to
 * `/api/beta/sketches` (agent protobuf), events to `/api/v1/events`, service checks to `/api/v1/check_run`.
 * `export` never throws and never returns `retryable`: retries happen per payload, inside the sink.
 */
export class DatadogSink implements Sink {
  /** Sink id: core names its queue and stats `sink-datadog` after it. */
  readonly name = 'datadog';
  /** Base URL requests go to, for the start-up log line (holds no secret). */
  readonly baseUrl: string;
  /** Reports per-item delivery, so a window on disk is replayed without what Datadog already accepted. */
  readonly tracksDelivery = true;

  private readonly opts: ResolvedOptions;
  private readonly kindStats: Record<PayloadKind, ComponentStats>;
  private readonly transport: DatadogTransport;
  private readonly compressor: Compressor;
  /** Scratch Buffers for bodies, reused across windows (see {@link BufferPool}). */
  private readonly scratchPool = new BufferPool(POOLED_BUFFERS);
  private readonly batcher: Batcher;
  private readonly delivery: DeliveryPolicy<Payload>;
  private readonly inflight = new InFlightExports();
  private shutdownPromise: Promise<void> | undefined;

  /** Throws `MD_ERR_CONFIG_INVALID` for invalid options; `context` is the `sink-datadog` component's. */
  constructor(
    options: DatadogSinkOptions,
    private readonly context: ComponentContext<'sink'>,
    extras: DatadogSinkExtras = {},
  ) {
    this.opts = resolveOptions(options);
    const own = new Map<string, ComponentStats>();
    const statsFor =
      extras.detailStats ??
      ((c: string) => {
        let s = own.get(c);
        if (s === undefined) own.set(c, (s = new ComponentStats(c)));
        return s;
      });
    this.kindStats = {
      series: statsFor('sink-datadog-series'),
      sketches: statsFor('sink-datadog-sketches'),
      events: statsFor('sink-datadog-events'),
      checks: statsFor('sink-datadog-checks'),
    };
    this.transport = new DatadogTransport(this.opts, statsFor);
    this.baseUrl = this.transport.baseUrl;
    this.compressor = new Compressor(this.opts.compression);
    this.batcher = new Batcher(this.opts.limits, this.compressor, this.scratchPool, {
      received: (kind, n) => (this.kindStats[kind].received += n),
      lose: (kind, n, reason, tally, log) => this.lose(kind, n, reason, tally, log),
    });
    this.delivery = new DeliveryPolicy<Payload>(
      {
        send: (p) => this.send(p),
        split: (p, tally) => this.split(p, tally),
        bytes: cost,
        items: count,
        dataMs: (p) => p.dataMs,
        maxAgeMs: (p) => maxAgeOf(p.kind, this.opts.retryMaxAgeMs),
        onLost: (p, n) => {
          this.kindStats[p.kind].failed += n;
          p.ledger?.lost(BATCH_KIND[p.kind], n);
        },
        keep: (p, reason) => {
          if (p.ledger === undefined || !KEPT_ON_DISK_REASONS.has(reason)) return false;
          // Its window is on disk and will be exported again: not received yet, as far as the counters go.
          this.kindStats[p.kind].received -= count(p);
          p.ledger.kept(BATCH_KIND[p.kind], count(p));
          return true;
        },
        logFields: (p) => ({ kind: p.kind }),
        summarize: (unsent) => {
          const lost = { series: 0, sketches: 0, events: 0, checks: 0 };
          for (const p of unsent) lost[p.kind] += count(p);
          return { lost };
        },
      },
      context,
      {
        retryBufferBytes: this.opts.retryBufferBytes,
        retryBaseMs: this.opts.retryBaseMs,
        retryMaxMs: this.opts.retryMaxMs,
        maxAgeMs: this.opts.retryMaxAgeMs,
        concurrency: this.opts.maxConcurrent,
        destination: 'Datadog',
        retryStats: statsFor('sink-datadog-retry'),
        hints: { retryBufferBytes: '--datadog-retry-buffer-bytes', maxAge: '--datadog-retry-max-age' },
      },
    );
  }

  /**
   * Runs the start-up key check unless `validateKey: false`. Never rejects; the server keeps running
   * whatever the answer (fail open, as the agent does), so callers need not await it.
   */
  async start(): Promise<KeyStatus | undefined> {
    if (!this.opts.validateOnStart) return undefined;
    return this.validateKey();
  }

  /** `GET /api/v1/validate`: 2xx valid; 403 loud error; anything else or no answer a warning. Never rejects. */
  validateKey(): Promise<KeyStatus> {
    return this.transport.validateKey(this.context.logger);
  }

  /**
   * Splits the window into payloads and sends them. Resolves `success` once every payload was accepted or
   * parked for retry, `failure` when some items were dropped for good (each counted by reason). Never throws.
   */
  async export(batch: MetricBatch, delivery?: BatchDelivery): Promise<ExportResult> {
    return this.inflight.track(this.runExport(batch, delivery));
  }

  private async runExport(batch: MetricBatch, ledger: BatchDelivery | undefined): Promise<ExportResult> {
    const tally: ExportTally = { lost: 0, reasons: new Set(), ledger };
    if (this.delivery.final) {
      const counts: [PayloadKind, number][] = [
        ['series', batch.series.length],
        ['sketches', batch.sketches.length],
        ['events', batch.events.length],
        ['checks', batch.serviceChecks.length],
      ];
      for (const [kind, n] of counts) {
        if (ledger !== undefined) {
          // On disk: the next start sends it; nothing is lost.
          let left = 0;
          for (let i = 0; i < n; i++) if (!ledger.done(BATCH_KIND[kind], i)) left++;
          ledger.kept(BATCH_KIND[kind], left);
          continue;
        }
        this.kindStats[kind].received += n;
        this.lose(kind, n, 'shutdown_unsent', tally);
      }
    } else {
      try {
        const queue = new PayloadQueue(MAX_POOLED_PAYLOADS);
        const worker = async (): Promise<void> => {
          for (let p = await queue.take(); p !== undefined; p = await queue.take()) {
            const pooled = p.scratch !== undefined;
            await this.process(p, tally, pooled ? () => queue.released() : undefined);
          }
        };
        const workers = Array.from({ length: this.opts.maxConcurrent }, worker);
        try {
          await this.batcher.batch(batch, queue, tally, ledger);
        } finally {
          queue.end();
          await Promise.all(workers);
        }
      } catch (err) {
        // Only a bug gets here (process() catches per payload); the window is then partly unaccounted for.
        return unexpectedExportError(this.context.logger, 'Datadog', err);
      }
    }
    return windowResult(tally, 'datadog', 'item(s)');
  }

  /**
   * Compresses (re-splitting what still exceeds the compressed limit) and hands one payload to the
   * delivery policy. `prepared` runs once the payload's scratch Buffer, if any, is back in the pool.
   */
  private async process(p: Payload, tally: ExportTally, prepared?: () => void): Promise<void> {
    let ready: Payload[];
    try {
      try {
        ready = await this.prepare(p, tally);
      } finally {
        this.dropScratch(p);
        prepared?.();
      }
    } catch (err) {
      this.lose(
        p.kind,
        count(p),
        'internal_error',
        tally,
        {
          code: 'MD_ERR_SINK_EXPORT',
          level: 'error',
          cause: err,
          fields: { kind: p.kind },
          message: 'Datadog sink: unexpected error while preparing a payload; dropped.',
        },
        p.ledger,
      );
      return;
    }
    for (const r of ready) await this.delivery.deliver(r, tally);
  }

  /** Gives a compressed payload's scratch Buffer back to the pool; its raw body is rebuilt by `rawOf` if ever needed. */
  private dropScratch(p: Payload): void {
    if (p.scratch === undefined) return;
    this.scratchPool.give(p.scratch);
    p.scratch = undefined;
    p.raw = undefined;
  }

  /** Compresses `p`; a body over the compressed limit is split (or, holding one item, dropped). */
  private async prepare(p: Payload, tally: LossTally | undefined): Promise<Payload[]> {
    const raw = await this.compressor.rawOf(p);
    const body = await this.compressor.compress(raw);
    this.compressor.learn(p.kind, raw.length, body.length);
    const limit = this.opts.limits[p.kind].maxCompressedBytes;
    if (body.length <= limit) {
      p.body = body;
      return [p];
    }
    if (count(p) === 1) {
      this.lose(p.kind, 1, 'payload_too_large', tally, tooLargeLog(p.kind, snippet(p.kind, raw), 'compressed', body.length, limit), p.ledger);
      return [];
    }
    const [a, b] = halves(p, raw);
    return [...(await this.prepare(a, tally)), ...(await this.prepare(b, tally))];
  }

  /** The policy's split: halves at an item boundary, each compressed (and re-split if still over the limit). */
  private async split(p: Payload, tally: LossTally | undefined): Promise<readonly Payload[]> {
    const [a, b] = halves(p, await this.compressor.rawOf(p));
    return [...(await this.prepare(a, tally)), ...(await this.prepare(b, tally))];
  }

  /** The policy's send: one POST, its outcome counted; a refused single item gets a log line naming it. */
  private async send(p: Payload): Promise<SendOutcome> {
    const out = await this.transport.post(p.kind, p.body);
    if (out.kind === 'ok') {
      this.delivered(p);
      p.ledger?.delivered(BATCH_KIND[p.kind], p.idx);
    }
    if (out.kind === 'too_large' && count(p) === 1) {
      const what = snippet(p.kind, await this.compressor.rawOf(p));
      return { kind: 'too_large', log: tooLargeLog(p.kind, what, '413 from Datadog', p.body?.length ?? 0, this.opts.limits[p.kind].maxCompressedBytes) };
    }
    return out;
  }

  private delivered(p: Payload): void {
    const bytes = p.body?.length ?? 0;
    const ks = this.kindStats[p.kind];
    ks.sent += count(p);
    ks.packets++;
    ks.bytes += bytes;
    this.context.stats.packets++;
    this.context.stats.bytes += bytes;
  }

  /** Losses outside the policy go through here: `dropped{reason}` on sink-datadog and `failed` on the kind's component. */
  private lose(
    kind: PayloadKind,
    items: number,
    reason: SinkDropReason,
    tally: LossTally | undefined,
    log?: DropLog,
    ledger: BatchDelivery | undefined = (tally as ExportTally | undefined)?.ledger,
  ): void {
    if (items <= 0) return;
    this.context.drop(reason, items, log);
    this.kindStats[kind].failed += items;
    addLoss(tally, items, reason);
    ledger?.lost(BATCH_KIND[kind], items);
  }

  /**
   * Finishes exports in progress, then retries every buffered payload (ignoring the backoff) until
   * `deadlineMs`; what is still undelivered is counted as `shutdown_unsent` and logged. Idempotent.
   */
  shutdown(deadlineMs: number): Promise<void> {
    this.shutdownPromise ??= this.shutdownOnce(deadlineMs);
    return this.shutdownPromise;
  }

  private async shutdownOnce(deadlineMs: number): Promise<void> {
    this.transport.deadlineMs = deadlineMs;
    const deadlineTimer = setTimeout(() => this.transport.abortAll(), Math.max(0, deadlineMs - Date.now()));
    try {
      await this.delivery.shutdown(deadlineMs, this.inflight.settled());
    } finally {
      clearTimeout(deadlineTimer);
      this.transport.abortAll();
      await this.transport.destroy();
    }
  }
}

