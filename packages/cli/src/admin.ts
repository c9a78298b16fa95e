/**
 * The admin listener's wiring: {@link AdminSources} implemented over the CLI's own objects (the
 * stats registry, the front-ends, the sink queues' gauges, the aggregator), and the start-up rule for
 * etsy statsd's port. `@metrics-distributor/admin` (fastify) is imported only when `--admin` is on.
 */
import { readFileSync } from 'node:fs';
import type { AdminServer, AdminSources, SinkStatus, TrackedSink } from '@metrics-distributor/admin';
import { isMdError, type Aggregator, type Frontend, type Logger, type Sink, type StatsRegistry } from '@metrics-distributor/core';
import type { ServerConfig } from './config.js';
import { isDefaultAdminAddress } from './options/admin.js';
import { tlsPairOf } from './options/tls.js';

/** The CLI's version, from its package.json (read once). */
export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Component ids of the configured front-ends: the status page's throughput rows. */
function frontendIds(config: ServerConfig): string[] {
  return [
    ...(config.statsdUdp !== undefined ? ['statsd-udp'] : []),
    ...(config.statsdTcp !== undefined || config.statsdUnix !== undefined ? ['statsd-tcp'] : []),
    ...(config.http !== undefined ? ['http', 'http-statsd'] : []),
  ];
}

/** What the sources read; `shuttingDown` is read on every readiness question. */
export interface AdminWiring {
  config: ServerConfig;
  stats: StatsRegistry;
  aggregator: Aggregator;
  frontends: readonly Frontend[];
  sinks: readonly TrackedSink[];
  startedAtMs: number;
  shuttingDown: () => boolean;
}

/** AdminSources over the running server's objects; every call is a few field reads. */
export function adminSources(w: AdminWiring): AdminSources {
  const { config, stats, aggregator } = w;
  const procStats = stats.component('process');
  const sinks = (): SinkStatus[] =>
    w.sinks.map((s) => {
      // Set by core's SinkQueue (queue_depth) and by the sink's delivery policy (retry_buffer_bytes).
      const g = stats.component(`sink-${s.name}`).gaugeValues();
      return {
        name: s.name,
        queueDepth: g.get('queue_depth') ?? 0,
        maxBatches: config.sinkQueueMaxBatches,
        retryBufferBytes: g.get('retry_buffer_bytes') ?? 0,
        retryBufferMaxBytes: s.name === 'datadog' ? config.datadogRetryBufferBytes : 0,
        lastSuccessMs: s.lastSuccessMs,
        lastError: s.lastError,
      };
    });
  return {
    stats,
    version: VERSION,
    startedAtMs: w.startedAtMs,
    listeners: () => w.frontends.flatMap((f) => f.addresses()),
    frontends: () => frontendIds(config),
    readiness: () => {
      const problems: string[] = [];
      if (w.shuttingDown()) problems.push('shutting down');
      for (const f of w.frontends) if (f.addresses().length === 0) problems.push(`${f.name}: not listening`);
      for (const s of sinks()) if (s.queueDepth >= s.maxBatches) problems.push(`sink ${s.name}: queue full (${s.queueDepth}/${s.maxBatches} windows)`);
      return { ready: problems.length === 0, problems };
    },
    sinks,
    liveContexts: () => aggregator.contextCount,
    topContexts: (q) => aggregator.topContexts(q),
    processHealth: () => {
      // ProcessMetrics.record() sets these once per window (with self-metrics on).
      const g = procStats.gaugeValues();
      const mem = process.memoryUsage();
      return { eventLoopDelayP99Ms: g.get('event_loop_delay_p99_ms'), eventLoopDelayMaxMs: g.get('event_loop_delay_max_ms'), rssBytes: mem.rss, heapUsedBytes: mem.heapUsed };
    },
    tap: aggregator.tap,
  };
}

/** Wraps each sink so the admin listener can show its last success and last error. */
export async function trackSinks(sinks: readonly Sink[]): Promise<TrackedSink[]> {
  const { TrackedSink } = await import('@metrics-distributor/admin');
  return sinks.map((s) => new TrackedSink(s));
}

/**
 * Starts the admin listener, or returns undefined when it is off. Port 8126 is etsy statsd's admin
 * port, so a failed bind of the default address warns and the server runs without it; a failed bind
 * of an address given explicitly fails start-up like a front-end's (`MD_ERR_ADMIN_BIND`).
 */
export async function startAdmin(w: AdminWiring, logger: Logger): Promise<AdminServer | undefined> {
  const addr = w.config.admin;
  if (addr === undefined) return undefined;
  const { AdminServer } = await import('@metrics-distributor/admin');
  // Throws MD_ERR_CONFIG_INVALID for a non-loopback host without --admin-auth.
  const tls = tlsPairOf(w.config.adminTlsCert, w.config.adminTlsKey, '--admin-tls');
  const server = new AdminServer({ host: addr.host, port: addr.port, credentials: w.config.adminAuth, ...(tls !== undefined ? { tls } : {}) }, adminSources(w), { logger });
  try {
    await server.start();
  } catch (err) {
    if (!isMdError(err) || err.code !== 'MD_ERR_ADMIN_BIND' || !isDefaultAdminAddress(addr)) throw err;
    logger.warn({ code: err.code, err }, `Admin listener not started: ${err.message}; pass --admin host:port or --admin off.`);
    return undefined;
  }
  return server;
}
