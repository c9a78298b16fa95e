/** Helpers shared by the front-end's test files. */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:dgram';
import { StatsRegistry, componentContext, createRootLogger, type ComponentContext, type Logger } from '@metrics-distributor/core';
import type { UdpFrontend } from '../src/index.js';

/** One captured pino line. */
export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A real pino logger whose JSON lines are captured, so tests can assert what was logged. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createRootLogger({ level, destination: { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) } });
  return { logger, lines };
}

/** Polls `cond` every few ms; rejects after `timeoutMs` so a lost datagram fails the test instead of hanging. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A `statsd-udp` context on its own registry, logging to `logger`. */
export function udpContext(logger: Logger, stats = new StatsRegistry()): ComponentContext<'statsd-udp'> {
  return componentContext({ logger, stats }, 'statsd-udp');
}

/** The port of the front-end's first bound address. */
export function portOf(fe: UdpFrontend): number {
  const addr = fe.addresses()[0];
  if (addr === undefined) throw new Error('not listening');
  return Number(addr.slice(addr.lastIndexOf(':') + 1));
}

/** Sends one datagram and resolves once the kernel took it. */
export function send(client: Socket, payload: string | Buffer, port: number, host = '127.0.0.1'): Promise<void> {
  return new Promise((resolve, reject) => client.send(payload, port, host, (err) => (err ? reject(err) : resolve())));
}

/** The kernel's drop count of the socket on `port` (Linux /proc/net/udp), to tell a lost datagram from a bug. */
export function kernelDrops(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  const row = readFileSync('/proc/net/udp', 'utf8').split('\n').find((l) => l.includes(hex));
  return Number(row?.trim().split(/\s+/).at(-1) ?? 0);
}
