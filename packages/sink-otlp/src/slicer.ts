/**
 * Runs the export's synchronous work (planning and encoding requests) in slices of the event loop:
 * the work is a generator that yields every few points, and after {@link SLICE_MS} of it the slicer
 * gives the loop a turn (`setImmediate`) before going on, so a 200,000-point window never holds the
 * loop for longer than one slice. It also measures the longest slice, to show that it does so.
 */
import { setImmediate as turn } from 'node:timers/promises';

/** Longest stretch of export work between two turns of the event loop. */
export const SLICE_MS = 4;

/** Drives work generators in time-bounded slices; one per sink, shared by its concurrent requests. */
export class Slicer {
  /** Longest slice since {@link takeLongestMs}, in milliseconds. */
  private longestMs = 0;

  constructor(private readonly sliceMs = SLICE_MS) {}

  /** Runs `work` to its end, with a turn of the event loop whenever a slice is used up; resolves with its result. */
  async run<T>(work: Generator<void, T>): Promise<T> {
    // A slice starts whenever this code gets the loop: here, and after each turn.
    let start = performance.now();
    for (;;) {
      const r = work.next();
      const now = performance.now();
      if (r.done === true) {
        this.note(now - start);
        return r.value;
      }
      if (now - start >= this.sliceMs) {
        this.note(now - start);
        await turn();
        start = performance.now();
      }
    }
  }

  private note(ms: number): void {
    if (ms > this.longestMs) this.longestMs = ms;
  }

  /** The longest slice since the last call, and starts measuring anew. */
  takeLongestMs(): number {
    const ms = this.longestMs;
    this.longestMs = 0;
    return ms;
  }
}
