/**
 * Datagrams the kernel dropped because a socket's receive buffer was full never reach the server, so
 * no parser can count them. Linux does count them per socket (the `drops` column of /proc/net/udp and
 * /proc/net/udp6); this reads that column for one bound address so the loss shows up as a self-metric
 * (`metrics_distributor.dropped{reason:kernel_rcvbuf}`) instead of only in kernel tables.
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { isIPv4 } from 'node:net';
import type { ComponentContext } from '@metrics-distributor/core';

/** Default interval between two reads of the kernel's counter. */
export const DEFAULT_KERNEL_DROPS_POLL_MS = 10_000;

/**
 * The `local_address` column for an IPv4 address and port as Linux prints it on a little-endian host
 * (`127.0.0.1:8125` is `0100007F:1FBD`), or undefined when it cannot be told (IPv6, big-endian).
 */
export function procLocalAddress(address: string, port: number): string | undefined {
  if (!isIPv4(address) || endianness() !== 'LE') return undefined;
  const hex = address
    .split('.')
    .reverse()
    .map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0'))
    .join('');
  return `${hex}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Sum of the `drops` column over the sockets of a /proc/net/udp table whose local address is `local`
 * (`ADDR:PORT` in hex), or whose port is `:PORT` when `local` starts with `:` (IPv6).
 */
export function dropsFor(table: string, local: string): number {
  let drops = 0;
  const byPort = local.startsWith(':');
  for (const line of table.split('\n')) {
    const f = line.trim().split(/\s+/);
    const addr = f[1];
    if (addr === undefined || f.length < 13) continue;
    if (byPort ? addr.endsWith(local) : addr === local) drops += Number(f[f.length - 1]) || 0;
  }
  return drops;
}

/** Options of a {@link KernelDropWatch}. */
export interface KernelDropWatchOptions {
  /** The bound address, as `socket.address()` gives it. */
  address: string;
  /** The bound port (never 0). */
  port: number;
  /** Socket type: which table (/proc/net/udp or udp6) to read. */
  family: 'udp4' | 'udp6';
  /** Interval between reads. Default {@link DEFAULT_KERNEL_DROPS_POLL_MS}. */
  pollMs?: number;
}

/**
 * Reads the kernel's drop counter of one UDP socket every `pollMs` and reports what grew as
 * `context.drop('kernel_rcvbuf', n)`, with a warning at most once a minute. Does nothing where
 * /proc/net/udp is not readable (not Linux).
 */
export class KernelDropWatch {
  private readonly file: string;
  private readonly local: string;
  private readonly pollMs: number;
  private last: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;

  constructor(
    opts: KernelDropWatchOptions,
    /** The `statsd-udp` context the drops are counted and logged on. */
    private readonly context: ComponentContext<'statsd-udp'>,
  ) {
    this.file = opts.family === 'udp6' ? '/proc/net/udp6' : '/proc/net/udp';
    // IPv6 addresses are printed as host-order words: match those sockets by port alone.
    this.local = (opts.family === 'udp4' ? procLocalAddress(opts.address, opts.port) : undefined) ?? `:${opts.port.toString(16).toUpperCase().padStart(4, '0')}`;
    this.pollMs = opts.pollMs ?? DEFAULT_KERNEL_DROPS_POLL_MS;
  }

  /** Takes the current count as the baseline and starts polling. */
  async start(): Promise<void> {
    this.last = await this.read();
    if (this.last === undefined) {
      this.context.logger.debug({ file: this.file }, 'Kernel UDP drop counters are not readable here; kernel drops are not counted.');
      return;
    }
    const tick = (): void => {
      this.timer = setTimeout(() => {
        void this.poll().finally(() => {
          if (this.timer !== undefined) tick();
        });
      }, this.pollMs);
      this.timer.unref();
    };
    tick();
  }

  /** Reads once more (so drops up to now are counted) and stops. */
  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = undefined;
    if (t !== undefined) clearTimeout(t);
    await this.reading;
    if (this.last !== undefined) await this.poll();
  }

  /** Counts what the kernel dropped since the last read; reads run one after another, never overlapping. */
  poll(): Promise<void> {
    const run = async (): Promise<void> => {
      const now = await this.read();
      if (now === undefined || this.last === undefined) return;
      const grown = now - this.last;
      this.last = now;
      if (grown <= 0) return;
      this.context.drop('kernel_rcvbuf', grown, {
        code: 'MD_ERR_FRONTEND_KERNEL_DROPS',
        // `code` at the top level as well: that is where operators' log queries have matched it.
        fields: { code: 'MD_ERR_FRONTEND_KERNEL_DROPS', datagrams: grown, total: this.context.stats.dropped('kernel_rcvbuf') + grown },
        message: 'The kernel dropped StatsD datagrams: the socket receive buffer was full. Raise net.core.rmem_max and recvBufferBytes, or use --workers.',
      });
    };
    // Two reads in flight could finish out of order and move `last` back, counting drops twice.
    this.reading = (this.reading ?? Promise.resolve()).then(run);
    return this.reading;
  }

  private async read(): Promise<number | undefined> {
    try {
      return dropsFor(await readFile(this.file, 'utf8'), this.local);
    } catch {
      return undefined;
    }
  }
}
