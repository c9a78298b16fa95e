import { Aggregator, MdError, StatsRegistry, type Frontend, type Logger, type Sink } from '@metrics-distributor/core';
import { UdpFrontend } from '@metrics-distributor/frontend-statsd-udp';
import { ConsoleSink } from '@metrics-distributor/sink-console';
import { availableParallelism } from 'node:os';
import type { ServerConfig } from './config.js';
import { ProcessMetrics } from './process-metrics.js';
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
  /** Started front-ends. */
  readonly frontends: readonly Frontend[];
  /** Stops receiving, flushes the open window and waits for sinks until the shutdown timeout. Idempotent. */
  close(): Promise<void>;
}

/**
 * Known sink names and how each is built: the CLI is the only place that wires packages together.
 * Packages with heavy dependencies (undici, fastify) are imported only when configured: each costs
 * about 9 MiB of resident memory, in the primary and in every UDP worker.
 */
const SINK_FACTORIES: Record<string, (config: ServerConfig, deps: ServerDeps, stats: StatsRegistry) => Promise<Sink>> = {
  console: (_config, deps) => Promise.resolve(new ConsoleSink({ stream: deps.stdout ?? process.stdout }, { logger: deps.logger.child({ component: 'sink-console' }) })),
  datadog: async (config, deps, stats) => {
    const { DatadogSink } = await import('@metrics-distributor/sink-datadog');
    const sink = new DatadogSink(
      {
        // buildConfig guarantees a key whenever the datadog sink is selected.
        apiKey: config.datadogApiKey!,
        site: config.datadogSite,
        url: config.datadogUrl,
        timeoutMs: config.datadogTimeoutMs,
        retryBufferBytes: config.datadogRetryBufferBytes,
        retryBaseMs: config.datadogRetryBaseMs,
        retryMaxMs: config.datadogRetryMaxMs,
        retryMaxAgeMs: config.datadogRetryMaxAgeMs,
        compression: config.datadogCompression,
      },
      { logger: deps.logger.child({ component: 'sink-datadog' }), stats: stats.component('sink-datadog'), extraStats: (c) => stats.component(c) },
    );
    // Fail open like the agent: a bad key is logged loudly, the server keeps running.
    void sink.start();
    return sink;
  },
};

/** Names accepted by `--sink`. */
export const SINK_NAMES = Object.keys(SINK_FACTORIES);

/** Builds sinks, aggregator and front-ends from a validated config and starts them. */
export async function startServer(config: ServerConfig, deps: ServerDeps): Promise<RunningServer> {
  const { logger } = deps;
  const stats = new StatsRegistry();
  for (const name of config.sinks) {
    if (SINK_FACTORIES[name] === undefined) throw new MdError('MD_ERR_CONFIG_INVALID', `invalid option --sink: unknown sink '${name}' (known: ${SINK_NAMES.join(', ')})`);
  }
  const sinks: Sink[] = [];
  for (const name of config.sinks) sinks.push(await SINK_FACTORIES[name]!(config, deps, stats));
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
    sinkQueue: { maxBatches: config.sinkQueueMaxBatches },
    logger,
  });
  for (const sink of sinks) aggregator.addSink(sink);

  const frontends: Frontend[] = [];
  const workerCount = resolveWorkers(config.workers, availableParallelism());
  const pool = config.statsdUdp !== undefined && workerCount > 1 ? new UdpWorkerPool(workerCount, config, aggregator, logger.child({ component: 'workers' })) : undefined;
  if (config.statsdUdp !== undefined && pool === undefined) {
    frontends.push(
      new UdpFrontend(
        {
          host: config.statsdUdp.host,
          port: config.statsdUdp.port,
          recvBufferBytes: config.statsdUdpRecvBufferBytes,
          maxDatagramBytes: config.statsdUdpMaxDatagramBytes,
          kernelDropsPollMs: config.statsdUdpKernelDropsPollMs,
        },
        { receiver: aggregator.statsdReceiver('statsd-udp'), logger: logger.child({ component: 'statsd-udp' }) },
      ),
    );
  }
  if (config.statsdTcp !== undefined || config.statsdUnix !== undefined) {
    const { TcpFrontend } = await import('@metrics-distributor/frontend-statsd-tcp');
    frontends.push(
      new TcpFrontend(
        {
          host: config.statsdTcp?.host,
          port: config.statsdTcp?.port ?? null,
          unixPath: config.statsdUnix,
          unixSocketMode: config.statsdUnixMode,
          maxLineBytes: config.statsdTcpMaxLineBytes,
          maxConnections: config.statsdTcpMaxConnections,
          idleTimeoutMs: config.statsdTcpIdleTimeoutMs,
        },
        { receiver: aggregator.statsdReceiver('statsd-tcp'), logger: logger.child({ component: 'statsd-tcp' }) },
      ),
    );
  }
  if (config.http !== undefined) {
    const { HttpFrontend } = await import('@metrics-distributor/frontend-http');
    // Core is loaded already; imported here only to keep this change inside the HTTP block.
    const { ComponentNames, componentContext } = await import('@metrics-distributor/core');
    const httpContext = componentContext({ logger, stats }, 'http', ComponentNames.http);
    const httpStatsdContext = componentContext({ logger, stats }, 'http', ComponentNames.httpStatsd);
    frontends.push(
      new HttpFrontend(
        {
          host: config.http.host,
          port: config.http.port,
          credentials: config.httpAuth,
          allowUnauthenticated: config.httpAllowUnauthenticated,
          maxBodyBytes: config.httpMaxBodyBytes,
          vercelSecret: config.vercelSecret,
        },
        { target: aggregator.target(httpContext), context: httpContext, statsd: { target: aggregator.target(httpStatsdContext), context: httpStatsdContext } },
      ),
    );
  }
  const started: Frontend[] = [];
  let poolAddresses: string[] = [];
  try {
    for (const f of frontends) {
      await f.start();
      started.push(f);
    }
    if (pool !== undefined) poolAddresses = await pool.start();
  } catch (err) {
    await Promise.allSettled(started.map((f) => f.close()));
    await pool?.close(Date.now() + 2000);
    throw err;
  }
  // Workers send their partial window right at the boundary; give them a moment before closing it.
  const graceMs = Math.min(2000, Math.max(50, Math.floor(config.flushIntervalMs / 2)));
  const processMetrics = config.selfMetrics ? new ProcessMetrics(stats.component('process')) : undefined;
  aggregator.start({
    beforeClose: (windowStart) => {
      processMetrics?.record();
      return pool === undefined ? Promise.resolve() : pool.waitForWindow(windowStart, graceMs);
    },
  });
  logger.info(
    {
      listeners: [...poolAddresses, ...frontends.flatMap((f) => f.addresses())],
      workers: pool === undefined ? 1 : workerCount,
      sinks: sinks.map((s) => s.name),
      flushIntervalMs: config.flushIntervalMs,
      hostname: config.hostname,
    },
    'metrics-distributor started.',
  );

  let closing: Promise<void> | undefined;
  return {
    aggregator,
    frontends,
    close() {
      closing ??= (async () => {
        const deadline = Date.now() + config.shutdownTimeoutMs;
        // Front-ends first so everything already received lands in the final window.
        await Promise.allSettled([...frontends.map((f) => f.close()), pool?.close(deadline)]);
        processMetrics?.record();
        processMetrics?.close();
        await aggregator.close(deadline);
      })();
      return closing;
    },
  };
}
