/**
 * Payloads waiting for a retry, bounded by the bytes they hold. Past the bound the oldest go first;
 * retries take the newest first, as the agent does: after an outage the freshest data matters most, and
 * the oldest is the nearest to the destination's age limit anyway.
 */

/** A byte-bounded stack of payloads. */
export class RetryBuffer<P> {
  private readonly items: P[] = [];
  private held = 0;

  /**
   * @param maxBytes Bytes held at most (0: nothing is kept).
   * @param bytesOf What a payload holds in memory; must not change while it is buffered.
   */
  constructor(
    readonly maxBytes: number,
    private readonly bytesOf: (p: P) => number,
  ) {}

  /** Bytes held. */
  get bytes(): number {
    return this.held;
  }

  /** Payloads held. */
  get length(): number {
    return this.items.length;
  }

  /** Adds `p`; returns the oldest payloads evicted to stay within the bound (`p` itself when it alone is too big). */
  push(p: P): P[] {
    this.items.push(p);
    this.held += this.bytesOf(p);
    const evicted: P[] = [];
    while (this.held > this.maxBytes && this.items.length > 0) {
      const old = this.items.shift()!;
      this.held -= this.bytesOf(old);
      evicted.push(old);
    }
    return evicted;
  }

  /** Removes and returns the newest payload. */
  takeNewest(): P | undefined {
    const p = this.items.pop();
    if (p !== undefined) this.held -= this.bytesOf(p);
    return p;
  }

  /** Removes and returns every payload for which `pred` holds, keeping the others in order. */
  removeWhere(pred: (p: P) => boolean): P[] {
    const gone: P[] = [];
    let kept = 0;
    for (const p of this.items) {
      if (pred(p)) gone.push(p);
      else this.items[kept++] = p;
    }
    this.items.length = kept;
    for (const p of gone) this.held -= this.bytesOf(p);
    return gone;
  }

  /** Removes and returns everything. */
  clear(): P[] {
    const all = this.items.splice(0);
    this.held = 0;
    return all;
  }
}
