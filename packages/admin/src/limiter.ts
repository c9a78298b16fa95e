/** A token bucket bounding what the admin listener may cost: requests per second, with one second of burst. */

/** Admits at most `perSecond` requests per second on average, `perSecond` at once after a quiet second. */
export class RequestBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    /** Average admitted rate, requests per second. */
    readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = perSecond;
    this.lastMs = now();
  }

  /** Takes one token; false when none is left (the caller answers 429). */
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((t - this.lastMs) / 1000) * this.perSecond);
    this.lastMs = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
