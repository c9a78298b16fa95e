/**
 * A bounded memory of recently accepted Logplex frame ids, so a retried delivery (same drain token
 * and `Logplex-Frame-Id`, logreference §1.4) is acknowledged without being counted twice.
 */

/** Ids remembered for this long: logplex retries within seconds, three attempts at most. */
export const DEFAULT_DEDUPE_WINDOW_MS = 5 * 60_000;
/** At most this many ids are kept; the oldest go first, so memory stays bounded under any load. */
export const DEFAULT_DEDUPE_MAX_IDS = 50_000;

/**
 * Insertion-ordered map of id → expiry. Expired and over-limit entries are evicted from the oldest
 * end on every insert, so each operation is amortised O(1) and the size never exceeds `maxIds`.
 */
export class RecentIds {
  private readonly expiries = new Map<string, number>();

  constructor(
    private readonly windowMs = DEFAULT_DEDUPE_WINDOW_MS,
    private readonly maxIds = DEFAULT_DEDUPE_MAX_IDS,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when `id` was added less than the window ago. */
  has(id: string): boolean {
    const exp = this.expiries.get(id);
    return exp !== undefined && exp > this.now();
  }

  /** Remembers `id` for the window (a re-add restarts its window and moves it to the young end). */
  add(id: string): void {
    if (this.maxIds <= 0) return;
    const t = this.now();
    this.expiries.delete(id);
    this.expiries.set(id, t + this.windowMs);
    for (const [oldest, exp] of this.expiries) {
      if (exp > t && this.expiries.size <= this.maxIds) break;
      this.expiries.delete(oldest);
    }
  }

  /** Ids currently held (expired ones may linger until the next insert). */
  get size(): number {
    return this.expiries.size;
  }
}
