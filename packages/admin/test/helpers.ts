/** Shared test helpers: a fake AdminSources made of plain fields, a captured logger, and a started server. */
import { StatsRegistry, createRootLogger, type Logger, type TapSource } from '@metrics-distributor/core';
import { AdminServer, type AdminServerOptions, type AdminSources, type ProcessHealth, type Readiness, type SinkStatus, type TopContextsQuery, type TopContextsReport } from '../src/index.js';

/** An AdminSources whose every answer is a field the test sets. */
export class FakeSources implements AdminSources {
  readonly stats = new StatsRegistry();
  readonly version = '0.1.0-test';
  startedAtMs = Date.now() - 90_000;
  listenerList: string[] = ['udp://127.0.0.1:8125', 'http://127.0.0.1:8080'];
  frontendList: string[] = ['statsd-udp', 'http'];
  ready: Readiness = { ready: true, problems: [] };
  sinkList: SinkStatus[] = [];
  live = 0;
  health: ProcessHealth = { eventLoopDelayP99Ms: 1.5, eventLoopDelayMaxMs: 4, rssBytes: 80 * 1024 * 1024, heapUsedBytes: 30 * 1024 * 1024 };
  report: TopContextsReport = { windowStartMs: 0, liveContexts: 0, maxContexts: undefined, names: 0, entries: [], truncated: false };
  /** Every topContexts question asked. */
  readonly questions: TopContextsQuery[] = [];
  /** The tap `/api/tap` serves; none unless a test sets one. */
  tap?: TapSource;
  /** When set, topContexts returns this instead of the report. */
  topImpl: ((q: TopContextsQuery) => TopContextsReport | Promise<TopContextsReport>) | undefined;

  listeners(): readonly string[] {
    return this.listenerList;
  }
  frontends(): readonly string[] {
    return this.frontendList;
  }
  readiness(): Readiness {
    return this.ready;
  }
  sinks(): readonly SinkStatus[] {
    return this.sinkList;
  }
  liveContexts(): number {
    return this.live;
  }
  topContexts(q: TopContextsQuery): TopContextsReport | Promise<TopContextsReport> {
    this.questions.push(q);
    return this.topImpl !== undefined ? this.topImpl(q) : this.report;
  }
  processHealth(): ProcessHealth {
    return this.health;
  }
}

/** One captured pino line. */
export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A real pino logger whose JSON lines are kept. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createRootLogger({ level, destination: { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) } });
  return { logger, lines };
}

/** Starts an AdminServer on 127.0.0.1:0 and returns it with its base URL; closed at teardown. */
export async function startServer(
  t: { teardown: (fn: () => unknown) => void },
  sources: AdminSources = new FakeSources(),
  opts: AdminServerOptions = {},
  logger: Logger = captureLogger('warn').logger,
): Promise<{ server: AdminServer; url: string }> {
  const server = new AdminServer({ port: 0, ...opts }, sources, { logger });
  await server.start();
  t.teardown(() => server.close());
  return { server, url: server.addresses()[0]! };
}

/** `Authorization: Basic …` for `user:pass`. */
export function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}
