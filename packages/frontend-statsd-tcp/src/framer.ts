/**
 * Newline framing of a byte stream, with no I/O: chunks in, lines out. Complete lines are handed out
 * in place, straight from the chunk; only a line split across chunks is copied, into a small buffer
 * bounded by the maximum line length. The stream is never decoded, so a split may fall anywhere,
 * inside a multi-byte UTF-8 character too.
 */

/** What a {@link LineFramer} hands its output to. */
export interface LineHandler {
  /** One complete line `buf[start, end)` without its `\n`; `buf` may be reused once the call returns. */
  line(buf: Buffer, start: number, end: number): void;
  /** A line longer than the limit was discarded (up to its newline, however many chunks that takes). */
  tooLong(): void;
}

const NEWLINE = 10;
/** First size of the partial-line buffer: most metric lines are well under this. */
const INITIAL_TAIL_BYTES = 512;
/** A partial-line buffer grown past this is released once its line is done, so rare long lines do not pin memory. */
const KEEP_TAIL_BYTES = 4096;

/** The framing state of one stream: at most one partial line, never the stream. */
export class LineFramer {
  /** Bytes of a line split across chunks; reused for the next split line. */
  private tail: Buffer | undefined;
  private tailLen = 0;
  /** An over-long line is being skipped up to its newline (already reported). */
  private discarding = false;

  constructor(
    private readonly maxLineBytes: number,
    private readonly handler: LineHandler,
  ) {}

  /** Bytes of the unfinished last line held now. */
  get pendingBytes(): number {
    return this.tailLen;
  }

  /** Size of the partial-line buffer held now (0 when released), to show memory stays bounded. */
  get bufferBytes(): number {
    return this.tail?.length ?? 0;
  }

  /** The hot path: finish the pending partial line, hand out every complete line in place, keep the new tail. */
  push(chunk: Buffer): void {
    const max = this.maxLineBytes;
    const len = chunk.length;
    let pos = 0;
    if (this.tailLen > 0 || this.discarding) {
      const nl = chunk.indexOf(NEWLINE);
      const upto = nl === -1 ? len : nl;
      if (this.discarding) {
        if (nl === -1) return;
        this.discarding = false;
      } else if (this.tailLen + upto > max) {
        this.tailLen = 0;
        this.handler.tooLong();
        if (nl === -1) {
          this.discarding = true;
          return;
        }
      } else {
        this.appendTail(chunk, 0, upto);
        if (nl === -1) return;
        const tail = this.tail!;
        const n = this.tailLen;
        this.tailLen = 0;
        if (tail.length > KEEP_TAIL_BYTES) this.tail = undefined;
        this.handler.line(tail, 0, n);
      }
      pos = nl + 1;
    }
    let nl: number;
    while ((nl = chunk.indexOf(NEWLINE, pos)) !== -1) {
      if (nl - pos > max) this.handler.tooLong();
      else this.handler.line(chunk, pos, nl);
      pos = nl + 1;
    }
    if (pos < len) {
      if (len - pos > max) {
        this.handler.tooLong();
        this.discarding = true;
      } else {
        this.appendTail(chunk, pos, len);
      }
    }
  }

  /** The stream ended cleanly: the unfinished last line, if any, is a line (the sender said it is done). */
  end(): void {
    if (this.tailLen === 0 || this.discarding) return;
    const n = this.tailLen;
    this.tailLen = 0;
    this.handler.line(this.tail!, 0, n);
  }

  /** Forgets the pending bytes and skips to the next newline: after a failure mid-chunk, resync there. */
  resync(): void {
    this.tailLen = 0;
    this.discarding = true;
  }

  /** Releases the buffer; returns how many bytes of an unfinished line were pending (and are lost). */
  release(): number {
    const lost = this.tailLen;
    this.tailLen = 0;
    this.tail = undefined;
    return lost;
  }

  /** Copies `src[start, end)` after the pending bytes; the caller guarantees the total fits `maxLineBytes`. */
  private appendTail(src: Buffer, start: number, end: number): void {
    const need = this.tailLen + (end - start);
    let tail = this.tail;
    if (tail === undefined || tail.length < need) {
      const size = Math.min(this.maxLineBytes, Math.max(need, INITIAL_TAIL_BYTES, tail === undefined ? 0 : tail.length * 2));
      // Unpooled: the buffer lives as long as the stream and must not pin a shared pool slab.
      const grown = Buffer.allocUnsafeSlow(size);
      if (tail !== undefined && this.tailLen > 0) tail.copy(grown, 0, 0, this.tailLen);
      this.tail = tail = grown;
    }
    src.copy(tail, this.tailLen, start, end);
    this.tailLen = need;
  }
}
