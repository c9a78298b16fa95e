/**
 * A bounded memory of recently accepted Logplex frame ids, so a retried delivery (same drain token
 * and `Logplex-Frame-Id`, logreference §1.4) is acknowledged without being counted twice.
 */

/** Ids remembered for this long: logplex retries within seconds, three attempts at most. */
export const DEFAULT_DEDUPE_WINDOW_MS = 5 * 60_000;
/** At most this many ids are kept; the oldest go first, so memory stays bounded under any load. */
export const DEFAULT_DEDUPE_MAX_IDS = 50_000;

/**
 * Recently added ids with their expiry, oldest first. Expired and over-limit entries are evicted from
 * the oldest end on every insert, so each operation is amortised O(1) and the size never exceeds
 * `maxIds`.
 *
 * The order is kept in a queue beside the map rather than by iterating the map: a Map that keeps
 * losing its oldest entries fills with deleted slots that every new iterator walks over, which made an
 * insert cost ~12 us once 50000 ids were held.
 */
export class RecentIds {
  /** Id → sequence number of its latest add. */
  private readonly seqs = new Map<string, number>();
  /** Ids and expiries in insertion order; entry `i` has sequence number `base + i`. */
  private ids: string[] = [];
  private expiries: number[] = [];
  private base = 0;
  /** Index of the oldest entry not yet evicted or skipped. */
  private head = 0;

  constructor(
    private readonly windowMs = DEFAULT_DEDUPE_WINDOW_MS,
    private readonly maxIds = DEFAULT_DEDUPE_MAX_IDS,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when `id` was added less than the window ago. */
  has(id: string): boolean {
    const seq = this.seqs.get(id);
    return seq !== undefined && this.expiries[seq - this.base]! > this.now();
  }

  /** Remembers `id` for the window (a re-add restarts its window and moves it to the young end). */
  add(id: string): void {
    if (this.maxIds <= 0) return;
    const t = this.now();
    this.seqs.set(id, this.base + this.ids.length);
    this.ids.push(id);
    this.expiries.push(t + this.windowMs);
    const { ids, expiries, seqs } = this;
    while (this.head < ids.length) {
      const i = this.head;
      const oldest = ids[i]!;
      // An entry whose id was added again later is only a placeholder now.
      if (seqs.get(oldest) === this.base + i) {
        if (expiries[i]! > t && seqs.size <= this.maxIds) break;
        seqs.delete(oldest);
      }
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > ids.length) this.compact();
    // Placeholders of re-added ids wait behind a live entry; keep them from outgrowing the ids held.
    else if (ids.length - this.head > 2 * this.maxIds + 1024) this.compact();
  }

  /** Drops evicted entries and placeholders from the queue. */
  private compact(): void {
    const ids: string[] = [];
    const expiries: number[] = [];
    const base = this.base + this.ids.length;
    for (let i = this.head; i < this.ids.length; i++) {
      const id = this.ids[i]!;
      if (this.seqs.get(id) !== this.base + i) continue;
      this.seqs.set(id, base + ids.length);
      ids.push(id);
      expiries.push(this.expiries[i]!);
    }
    this.ids = ids;
    this.expiries = expiries;
    this.base = base;
    this.head = 0;
  }

  /** Ids currently held (expired ones may linger until the next insert). */
  get size(): number {
    return this.seqs.size;
  }
}
