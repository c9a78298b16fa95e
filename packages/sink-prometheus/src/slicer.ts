/**
 * Time-budgeted slices for the sink's long synchronous steps (state update, remote-write encode and
 * compression, scrape rendering): work runs until its budget is used up, then gives the event loop a
 * turn with `setImmediate`. A count between looks at the clock keeps `performance.now()` off the
 * per-item path. Each slicer measures its longest slice itself, so the figure can be shown on a
 * loaded machine where event-loop delay mostly measures the other processes.
 */

/** Default budget of one slice (ms): well under the 50 ms loop-delay target, large enough to amortise a turn. */
export const SLICE_BUDGET_MS = 5;

/** Cuts one operation into slices of about `budgetMs`, with an event-loop turn between two. */
export class Slicer {
  private sliceStart = performance.now();
  private k = 0;
  /** Longest slice so far (ms), from a turn (or the start) to the next pause or to {@link finish}. */
  longestMs = 0;
  /** Event-loop turns given so far. */
  turns = 0;

  constructor(
    /** Items between two looks at the clock. */
    private readonly every: number,
    private readonly budgetMs = SLICE_BUDGET_MS,
  ) {}

  /** Counts one item; true when the slice is used up and the caller should {@link pause}. */
  tick(): boolean {
    return ++this.k % this.every === 0 && performance.now() - this.sliceStart >= this.budgetMs;
  }

  /** Gives the event loop a turn, then starts the next slice. */
  async pause(): Promise<void> {
    this.close();
    this.turns++;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.sliceStart = performance.now();
  }

  /** Ends the slice because the event loop had a turn meanwhile (the caller awaited I/O), and starts the next. */
  restart(): void {
    this.close();
    this.turns++;
    this.sliceStart = performance.now();
  }

  /** Ends the last slice; returns the longest (ms). */
  finish(): number {
    this.close();
    return this.longestMs;
  }

  private close(): void {
    const ms = performance.now() - this.sliceStart;
    if (ms > this.longestMs) this.longestMs = ms;
  }
}
