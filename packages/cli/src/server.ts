import { Aggregator, Checkpointer, ComponentNames, MdError, SinkFanout, StatsRegistry, componentContext, type ComponentRoot, type Frontend, type Logger, type Sink } from '@metrics-distributor/core';
import { UdpFrontend } from '@metrics-distributor/frontend-statsd-udp';
import type { HttpFrontend } from '@metrics-distributor/frontend-http';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { startAdmin, trackSinks } from './admin.js';
import type { ServerConfig } from './config.js';
import { tlsPairOf } from './options/tls.js';
import { transformOptions } from './options/transform.js';
import { RULE_KEYS, reloadableKeys } from './reload.js';
import { ProcessMetrics } from './process-metrics.js';
import { SINK_FACTORIES, SINK_NAMES } from './sinks/index.js';

export { SINK_NAMES } from './sinks/index.js';
import { tcpOptions, udpOptions } from './statsd-options.js';
import { resolveWorkers, UdpWorkerPool } from './workers.js';

/** Process-level things the server needs, injectable for tests. */
export interface ServerDeps {
  /** The root logger; every component gets a child. */
  logger: Logger;
  /** Where the console sink writes; default process.stdout. */
  stdout?: NodeJS.WritableStream;
}

/** A running server. */
export interface RunningServer {
  /** The aggregator every front-end feeds. */
  readonly aggregator: Aggregator;
  /** Self-metrics of every component. */
  readonly stats: StatsRegistry;
  /** Started front-ends. */
  readonly frontends: readonly Frontend[];
  /** The admin listener's address (`http://127.0.0.1:8126`); undefined when it is off or its default port was taken. */
  readonly admin: string | undefined;
  /**
   * Swaps in what `next` changes of the settings that can change while running: drain and admin
   * credentials and both listeners' certificates (re-read from their files even when the paths are the
   * same, for renewals). All or nothing: on an error (typed, cause kept) the running settings stay.
   */
  applyReload(next: ServerConfig): void;
  /** Stops receiving, flushes the open window and waits for sinks until the shutdown timeout. Idempotent. */
  close(): Promise<void>;
}

/**
 * A front-end part of whose window arrives after the boundary (from other processes): the aggregator
 * waits for it before closing the window.
 */
interface LateWindowParts {
  /** Resolves once the parts of window `windowStart` are in, or a grace period has passed. */
  waitForWindow(windowStart: number): Promise<void>;
}

/** A sink that listens itself (the Prometheus scrape endpoint): its addresses go in the start-up line. */
function hasAddresses(s: Sink): s is Sink & { addresses(): readonly string[] } {
  return typeof (s as Partial<{ addresses: unknown }>).addresses === 'function';
}

/** Whether `f` has parts of its windows arriving late (today: the UDP worker pool). */
function hasLateWindowParts(f: Frontend): f is Frontend & LateWindowParts {
  return typeof (f as Partial<LateWindowParts>).waitForWindow === 'function';
}

/** Builds sinks, aggregator and front-ends from a validated config and starts them. */
export async function startServer(config: ServerConfig, deps: ServerDeps): Promise<RunningServer> {
  const { logger } = deps;
  const startedAtMs = Date.now();
  const stats = new StatsRegistry();
  // Every component's context (logger child, self-metrics, drop call) is built from this one root.
  const root: ComponentRoot = { logger, stats };
  for (const name of config.sinks) {
    if (SINK_FACTORIES[name] === undefined) throw new MdError('MD_ERR_CONFIG_INVALID', `invalid option --sink: unknown sink '${name}' (known: ${SINK_NAMES.join(', ')})`);
  }
  const built: Sink[] = [];
  for (const name of config.sinks) built.push(await SINK_FACTORIES[name]!(config, root, { stdout: deps.stdout }));
  // The admin listener shows each sink's last success and error, recorded by a wrapper of the same name.
  const tracked = config.admin === undefined ? [] : await trackSinks(built);
  const sinks: readonly Sink[] = config.admin === undefined ? built : tracked;
  if (config.sinks.includes('datadog') && config.flushIntervalMs % 1000 !== 0) {
    // Datadog timestamps and intervals are whole seconds: windows that are not would share a timestamp
    // (Datadog keeps one point per timestamp) and carry a rounded interval.
    logger.warn(
      { flushIntervalMs: config.flushIntervalMs },
      'The flush interval is not a whole number of seconds; Datadog points are per second, so windows sharing a second overwrite each other there. Use a whole-second --flush-interval with the datadog sink.',
    );
  }
  const aggregator = new Aggregator({
    stats,
    flushIntervalMs: config.flushIntervalMs,
    hostname: config.hostname,
    countersAs: config.countersAs,
    histogramAggregates: config.histogramAggregates,
    histogramPercentiles: config.histogramPercentiles,
    counterExpiryMs: config.counterExpiryMs,
    maxContexts: config.maxContexts,
    gaugeDeltas: config.gaugeDeltas,
    globalTags: config.tags,
    selfMetrics: config.selfMetrics,
    transform: transformOptions(config),
    // Prometheus buckets timers from their sketches; other sinks get the aggregates alone, unchanged.
    histogramSketches: config.sinks.includes('prometheus'),
    logger,
  });
  // Each closed window goes to every sink's own bounded queue; the aggregator only emits it.
  const disk = config.dataDir === undefined ? undefined : { dir: config.dataDir, maxBytesPerSink: config.dataDirMaxBytes };
  const fanout = new SinkFanout(root, { maxBatches: config.sinkQueueMaxBatches }, disk);
  for (const sink of sinks) fanout.add(sink);
  // Windows left on disk by the last run are queued before the first new one closes.
  await fanout.opened();
  const checkpointer =
    config.checkpointOpenWindowMs === undefined || config.dataDir === undefined
      ? undefined
      : new Checkpointer(aggregator, componentContext(root, 'checkpoint', ComponentNames.checkpoint), { dir: join(config.dataDir, 'checkpoint'), intervalMs: config.checkpointOpenWindowMs });
  aggregator.onWindow((batch) => {
    const written = fanout.push(batch);
    // A window's checkpoint goes once the window is on the disk buffer, never before.
    checkpointer?.windowClosed(batch.windowStartMs, written);
  });
  // Before any front-end starts: an older window is closed through the still empty open window.
  await checkpointer?.restore();

  const frontends: Frontend[] = [];
  const workerCount = config.statsdUdp === undefined ? 1 : resolveWorkers(config.workers, availableParallelism());
  // Workers send their partial window right at the boundary; give them a moment before closing it.
  const graceMs = Math.min(2000, Math.max(50, Math.floor(config.flushIntervalMs / 2)));
  if (config.statsdUdp !== undefined) {
    const udpContext = componentContext(root, 'statsd-udp', ComponentNames.statsdUdp);
    if (workerCount > 1) {
      const pool = new UdpWorkerPool(
        { workers: workerCount, config, graceMs, snapshotWaitMs: config.checkpointOpenWindowMs },
        { aggregator, stats, context: componentContext(root, 'workers', ComponentNames.workers), udpContext },
      );
      // The workers' parts of the open window go into every checkpoint with the primary's own.
      checkpointer?.addParts(pool.checkpointParts());
      frontends.push(pool);
    } else {
      frontends.push(new UdpFrontend(udpOptions(config), { target: aggregator.target(udpContext), context: udpContext }));
    }
  }
  if (config.statsdTcp !== undefined || config.statsdUnix !== undefined) {
    const { TcpFrontend } = await import('@metrics-distributor/frontend-statsd-tcp');
    const context = componentContext(root, 'statsd-tcp', ComponentNames.statsdTcp);
    frontends.push(new TcpFrontend(tcpOptions(config), { target: aggregator.target(context), context }));
  }
  let http: HttpFrontend | undefined;
  if (config.http !== undefined) {
    const { HttpFrontend } = await import('@metrics-distributor/frontend-http');
    const tls = tlsPairOf(config.httpTlsCert, config.httpTlsKey, '--http-tls');
    const httpContext = componentContext(root, 'http', ComponentNames.http);
    const httpStatsdContext = componentContext(root, 'http', ComponentNames.httpStatsd);
    http = new HttpFrontend(
        {
          ...(tls !== undefined ? { tls } : {}),
          host: config.http.host,
          port: config.http.port,
          credentials: config.httpAuth,
          allowUnauthenticated: config.httpAllowUnauthenticated,
          maxBodyBytes: config.httpMaxBodyBytes,
          vercelSecret: config.vercelSecret,
        },
        { target: aggregator.target(httpContext), context: httpContext, statsdTarget: aggregator.target(httpStatsdContext) },
      );
    frontends.push(http);
  }
  const started: Frontend[] = [];
  try {
    for (const f of frontends) {
      await f.start();
      started.push(f);
    }
  } catch (err) {
    // A front-end that failed to start has released what it held; the others are closed here.
    await Promise.allSettled(started.map((f) => f.close()));
    throw err;
  }
  let shuttingDown = false;
  let admin;
  try {
    admin = await startAdmin({ config, stats, aggregator, frontends, sinks: tracked, startedAtMs, shuttingDown: () => shuttingDown }, logger);
  } catch (err) {
    await Promise.allSettled(frontends.map((f) => f.close()));
    throw err;
  }
  const adminAddress = admin?.addresses()[0];
  const processMetrics = config.selfMetrics ? new ProcessMetrics(componentContext(root, 'process', ComponentNames.process).stats) : undefined;
  const lateParts = frontends.filter(hasLateWindowParts);
  aggregator.start({
    beforeClose: async (windowStart) => {
      processMetrics?.record();
      await Promise.all(lateParts.map((f) => f.waitForWindow(windowStart)));
    },
  });
  checkpointer?.start();
  logger.info(
    {
      listeners: [...frontends.flatMap((f) => f.addresses()), ...built.flatMap((s) => (hasAddresses(s) ? s.addresses() : []))],
      admin: adminAddress,
      workers: workerCount,
      sinks: sinks.map((s) => s.name),
      dataDir: config.dataDir,
      checkpointOpenWindowMs: config.checkpointOpenWindowMs,
      flushIntervalMs: config.flushIntervalMs,
      hostname: config.hostname,
    },
    'metrics-distributor started.',
  );

  let closing: Promise<void> | undefined;
  let running = config;
  return {
    aggregator,
    stats,
    frontends,
    admin: adminAddress,
    applyReload(next) {
      // Files first: an unreadable or mismatched pair must fail before anything is swapped.
      const httpTls = tlsPairOf(next.httpTlsCert, next.httpTlsKey, '--http-tls');
      const adminTls = tlsPairOf(next.adminTlsCert, next.adminTlsKey, '--admin-tls');
      if ((httpTls !== undefined) !== (running.httpTlsCert !== undefined) && http !== undefined) throw new MdError('MD_ERR_CONFIG_RELOAD', 'turning TLS of the HTTP listener on or off needs a restart');
      if ((adminTls !== undefined) !== (running.adminTlsCert !== undefined) && admin !== undefined) throw new MdError('MD_ERR_CONFIG_RELOAD', 'turning TLS of the admin listener on or off needs a restart');
      const before = running;
      const rulesChanged = reloadableKeys(running).includes('tags') && RULE_KEYS.some((k) => JSON.stringify(next[k]) !== JSON.stringify(running[k]));
      const setRules = (c: ServerConfig) => aggregator.reconfigure({ transform: transformOptions(c), globalTags: c.tags });
      try {
        if (rulesChanged) setRules(next);
        http?.setCredentials(next.httpAuth);
        admin?.setCredentials(next.adminAuth);
        if (httpTls !== undefined) http?.setTls(httpTls);
        if (adminTls !== undefined) admin?.setTls(adminTls);
      } catch (err) {
        // Put back what was already swapped; the old sets passed these same checks at start-up.
        http?.setCredentials(before.httpAuth);
        admin?.setCredentials(before.adminAuth);
        if (rulesChanged) setRules(before);
        throw new MdError('MD_ERR_CONFIG_RELOAD', err instanceof Error ? err.message : String(err), { cause: err });
      }
      running = next;
    },
    close() {
      closing ??= (async () => {
        // First, so /readyz answers 503 while the server drains.
        shuttingDown = true;
        const deadline = Date.now() + config.shutdownTimeoutMs;
        // Front-ends first so everything already received lands in the final window.
        await Promise.allSettled(frontends.map((f) => f.close()));
        processMetrics?.record();
        processMetrics?.close();
        // No checkpoint of the window after the last: the timer stops before the final flush.
        await checkpointer?.close();
        await aggregator.close(deadline);
        // The final window's checkpoint is deleted once that window is on disk: a clean stop restores nothing.
        await checkpointer?.close();
        await fanout.shutdown(deadline);
        await admin?.close();
      })();
      return closing;
    },
  };
}
