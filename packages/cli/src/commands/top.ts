/**
 * `metrics-distributor top`: a terminal view of a running server, redrawn every second from its
 * admin listener's `/api/status` and `/api/contexts`: rates per component, drops, sinks and the
 * metric names with the most contexts. Plain ANSI (bold, red, clear screen); `--once` prints one
 * frame without clearing, for scripts and tests.
 */
import type { StatusReport, TopContextsReport } from '@metrics-distributor/admin';
import { adminRequestHeaders, adminUrl, type AdminClientOptions } from './client.js';

/** Options of `top`. */
export interface TopCommandOptions extends AdminClientOptions {
  /** Print one frame and exit. */
  once?: boolean;
  /** Metric names shown. */
  names?: number;
}

/** How often the view is redrawn, in ms. */
const REFRESH_MS = 1000;
/** The contexts scan is heavier than the status: asked for every few frames only. */
const CONTEXTS_EVERY_FRAMES = 5;

const BOLD = '\x1b[1m';
const RED = '\x1b[31m';
const RESET = '\x1b[0m';
const CLEAR = '\x1b[H\x1b[2J';

function num(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function duration(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${m}m` : m > 0 ? `${m}m${s % 60}s` : `${s}s`;
}

/** Left-aligned first column, right-aligned numbers. */
function row(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' ');
}

/** One frame of the view, as text with ANSI attributes. */
export function renderTop(status: StatusReport, contexts: TopContextsReport | string | undefined, names = 10): string {
  const out: string[] = [];
  const ready = status.readiness.ready ? 'ready' : `${RED}not ready: ${status.readiness.problems.join('; ')}${RESET}`;
  out.push(`${BOLD}metrics-distributor ${status.version}${RESET}  up ${duration(status.uptimeSeconds)}  ${ready}`);
  out.push(`listeners ${status.listeners.join(' ')}`);
  out.push(`live contexts ${num(status.liveContexts)}  rss ${num(status.process.rssBytes)}B  event-loop p99 ${num(status.process.eventLoopDelayP99Ms)} ms`);
  out.push('');
  const cw = [16, 11, 9, 8, 10, 12, 10];
  out.push(BOLD + row(['COMPONENT', 'RECEIVED/s', 'SENT/s', 'BAD/s', 'DROPPED/s', 'RECEIVED', 'DROPPED'], cw) + RESET);
  for (const c of status.components) {
    out.push(row([c.id, num(c.rates.received), num(c.rates.sent), num(c.rates.bad), num(c.rates.dropped), num(c.totals.received), num(c.totals.dropped)], cw));
  }
  out.push('');
  out.push(`${BOLD}DROPS${RESET}`);
  if (status.drops.length === 0) out.push('none');
  for (const [i, d] of status.drops.entries()) {
    const line = row([`${d.component} ${d.reason}`, num(d.total), `${num(d.perSecond)}/s`], [40, 10, 10]);
    out.push(i === 0 && d.recent > 0 ? `${RED}${line}${RESET}` : line);
  }
  out.push('');
  const sw = [16, 9, 8, 12, 30];
  out.push(BOLD + row(['SINK', 'STATE', 'QUEUE', 'RETRY BUF', 'LAST ERROR'], sw) + RESET);
  for (const s of status.sinks) {
    const state = s.state === 'ok' ? s.state : `${RED}${s.state}${RESET}`;
    const err = s.lastError === undefined ? '-' : `${s.lastError.code}: ${s.lastError.message}`.slice(0, 80);
    out.push(`${s.name.padEnd(sw[0]!)} ${state.padStart(sw[1]! + (state.length - s.state.length))} ${`${s.queueDepth}/${s.maxBatches}`.padStart(sw[2]!)} ${`${num(s.retryBufferBytes)}B`.padStart(sw[3]!)} ${err}`);
  }
  out.push('');
  out.push(BOLD + row(['METRIC NAME', 'CONTEXTS', 'SAMPLES', 'TOP TAG KEY'], [48, 9, 9, 24]) + RESET);
  if (typeof contexts === 'string') out.push(contexts);
  else if (contexts !== undefined) {
    for (const e of contexts.entries.slice(0, names)) {
      const k = e.tagKeys?.[0];
      out.push(row([e.name.slice(0, 48), num(e.contexts), num(e.samples), k === undefined ? '-' : `${k.key} (${num(k.values)})`], [48, 9, 9, 24]));
    }
    if (contexts.truncated) out.push('(scan truncated: counts are lower bounds)');
  }
  return `${out.join('\n')}\n`;
}

async function getJson(url: URL, opts: AdminClientOptions): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { headers: adminRequestHeaders(opts), signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.json() };
}

/** Runs the view until signalled (or once); resolves with an exit code. */
export async function runTop(opts: TopCommandOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const names = opts.names ?? 10;
  const contextsUrl = adminUrl(opts.admin, `/api/contexts?top=${names}&by=contexts&examples=0`);
  let contexts: TopContextsReport | string | undefined;
  let stopped = false;
  const stop = (): void => {
    stopped = true;
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (let frame = 0; !stopped; frame++) {
    const started = Date.now();
    try {
      const s = await getJson(adminUrl(opts.admin, '/api/status'), opts);
      if (s.status !== 200) {
        err.write(`metrics-distributor top: /api/status answered ${s.status}: ${JSON.stringify(s.body)}\n`);
        return 1;
      }
      if (frame % CONTEXTS_EVERY_FRAMES === 0) {
        const c = await getJson(contextsUrl, opts);
        contexts = c.status === 200 ? (c.body as { report: TopContextsReport }).report : `contexts: ${c.status} ${JSON.stringify(c.body).slice(0, 200)}`;
      }
      out.write((opts.once === true ? '' : CLEAR) + renderTop(s.body as StatusReport, contexts, names));
    } catch (e) {
      err.write(`metrics-distributor top: cannot reach ${adminUrl(opts.admin, '/').origin}: ${(e as Error).message}\n`);
      if (opts.once === true) return 1;
    }
    if (opts.once === true) return 0;
    await new Promise((r) => setTimeout(r, Math.max(0, REFRESH_MS - (Date.now() - started))));
  }
  return 0;
}
