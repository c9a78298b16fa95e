/**
 * `/api/events`: Server-Sent Events carrying the status document once per tick. The document is
 * serialised once per tick for every stream together, and a stream whose client reads too slowly
 * skips ticks instead of buffering them, so memory stays bounded by one document per stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** How long a browser waits before reconnecting a dropped stream, in ms (sent as `retry:`). */
export const EVENTS_RETRY_MS = 2000;

interface Stream {
  res: ServerResponse;
  /** Set while a write waits for `drain`: ticks are skipped meanwhile. */
  blocked: boolean;
}

/** The open event streams and the tick that feeds them. */
export class EventStreams {
  private readonly streams = new Set<Stream>();
  /** Ticks skipped for a slow client, since start. */
  skipped = 0;

  constructor(
    /** Most streams open at once; more get 503. */
    readonly max: number,
    /** The current status document, serialised; called once per tick, only when a stream is open. */
    private readonly document: () => string,
  ) {}

  /** Streams open now. */
  get size(): number {
    return this.streams.size;
  }

  /** Whether one more stream may open. */
  canOpen(): boolean {
    return this.streams.size < this.max;
  }

  /** Takes over a hijacked response: headers, `first` (the document, serialised by the caller before hijacking) at once, then one per {@link tick}. */
  open(req: IncomingMessage, res: ServerResponse, first: string): void {
    const s: Stream = { res, blocked: false };
    this.streams.add(s);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Proxies such as nginx buffer responses unless told not to, which would hold events back.
      'x-accel-buffering': 'no',
    });
    const remove = (): void => {
      this.streams.delete(s);
    };
    req.once('close', remove);
    res.once('close', remove);
    res.on('error', remove);
    this.write(s, `retry: ${EVENTS_RETRY_MS}\n`);
    this.write(s, frame(first));
  }

  /** Sends the current document to every stream; does nothing (not even serialising) when none is open. */
  tick(): void {
    if (this.streams.size === 0) return;
    const f = frame(this.document());
    for (const s of this.streams) this.write(s, f);
  }

  private write(s: Stream, text: string): void {
    if (s.blocked) {
      this.skipped++;
      return;
    }
    if (!s.res.write(text)) {
      s.blocked = true;
      s.res.once('drain', () => {
        s.blocked = false;
      });
    }
  }

  /** Ends every stream (at shutdown), so the server's close does not wait for clients to leave. */
  closeAll(): void {
    for (const s of this.streams) s.res.end();
    this.streams.clear();
  }
}

/** One `status` event; JSON has no raw newlines, so one `data:` line carries it. */
function frame(json: string): string {
  return `event: status\ndata: ${json}\n\n`;
}
