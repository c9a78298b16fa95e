/**
 * Time-budgeted slices for a sink's long synchronous work (a window's state update, encode,
 * compression, a scrape's render): the work runs until its budget is used up, then gives the event
 * loop a turn with `setImmediate`, so a 200,000-series window never holds the loop for much longer
 * than one slice. Two ways to drive it, on the same clock and figures: a loop that calls `tick()` per
 * item and `pause()` when told, or `run()` over a generator that yields every few items. Looking at
 * the clock only every `checkEvery` items keeps `performance.now()` off the per-item path.
 *
 * Each slice is measured in wall time and in the process' CPU time: on a loaded machine wall time
 * (and event-loop delay) mostly measures the other processes, while CPU time is what the slice costs
 * (it includes helper threads such as gzip's: an upper bound).
 */
import { MdError } from './errors.js';

/** Default budget of one slice (ms): well under the 50 ms loop-delay target, large enough to amortise a turn. */
export const DEFAULT_SLICE_BUDGET_MS = 5;

/** One slice, or the longest slice of an operation, in wall and process CPU time. */
export interface SliceFigures {
  /** Wall time (ms). */
  readonly wallMs: number;
  /** Process CPU time (ms). */
  readonly cpuMs: number;
}

/** The longer of two operations' longest slices, per figure. */
export function longestSlice(a: SliceFigures, b: SliceFigures): SliceFigures {
  return { wallMs: Math.max(a.wallMs, b.wallMs), cpuMs: Math.max(a.cpuMs, b.cpuMs) };
}

/** Options of a {@link Slicer}. */
export interface SlicerOptions {
  /** Budget of one slice (ms); 0 gives a turn at every look at the clock. Default {@link DEFAULT_SLICE_BUDGET_MS}. */
  readonly budgetMs?: number;
  /** Items (`tick()` calls, or a generator's yields in `run()`) between two looks at the clock. Default 1. */
  readonly checkEvery?: number;
}

/**
 * Cuts work into slices of about `budgetMs`, with an event-loop turn between two, and keeps the
 * longest slice. One slicer may drive several `run()`s that interleave (a sink's concurrent requests):
 * each starts a slice when it gets the loop and ends it before giving the loop away.
 */
export class Slicer {
  /** Told every slice as it ends (benchmarks: the distribution of slices, not only the longest). */
  onSlice: ((slice: SliceFigures) => void) | undefined;
  /** Longest slice so far (ms), from a turn (or the start) to the next pause, restart or end. */
  longestMs = 0;
  /** The process CPU time of the slice that used the most (ms). */
  longestCpuMs = 0;
  /** Event-loop turns given so far (pauses and restarts). */
  turns = 0;

  private readonly budgetMs: number;
  private readonly checkEvery: number;
  private sliceStart = performance.now();
  private cpuStart = process.cpuUsage();
  private k = 0;

  /** Throws `MD_ERR_CONFIG_INVALID` for a negative budget or a `checkEvery` that is not a positive integer. */
  constructor(options: SlicerOptions = {}) {
    const budgetMs = options.budgetMs ?? DEFAULT_SLICE_BUDGET_MS;
    const checkEvery = options.checkEvery ?? 1;
    if (!(budgetMs >= 0) || !Number.isFinite(budgetMs)) throw new MdError('MD_ERR_CONFIG_INVALID', `slicer budgetMs must be a finite number >= 0, got ${budgetMs}`);
    if (!Number.isInteger(checkEvery) || checkEvery < 1) throw new MdError('MD_ERR_CONFIG_INVALID', `slicer checkEvery must be an integer >= 1, got ${checkEvery}`);
    this.budgetMs = budgetMs;
    this.checkEvery = checkEvery;
  }

  /** Counts one item; true when the slice is used up and the caller should {@link pause}. */
  tick(): boolean {
    return ++this.k % this.checkEvery === 0 && performance.now() - this.sliceStart >= this.budgetMs;
  }

  /** Ends the slice, gives the event loop a turn, then starts the next slice. */
  async pause(): Promise<void> {
    this.close();
    this.turns++;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.start();
  }

  /** Ends the slice because the event loop had a turn meanwhile (the caller awaited I/O), and starts the next. */
  restart(): void {
    this.close();
    this.turns++;
    this.start();
  }

  /** Ends the last slice of a `tick()` loop; returns the longest slice so far. */
  finish(): SliceFigures {
    this.close();
    return { wallMs: this.longestMs, cpuMs: this.longestCpuMs };
  }

  /** The longest slice since the last call (or the start), and starts measuring anew. */
  takeLongest(): SliceFigures {
    const figures = { wallMs: this.longestMs, cpuMs: this.longestCpuMs };
    this.longestMs = 0;
    this.longestCpuMs = 0;
    return figures;
  }

  /**
   * Runs `work` to its end, looking at the clock at its yields and giving the event loop a turn
   * whenever a slice is used up; resolves with its result, rejects with what it throws.
   */
  async run<T>(work: Generator<void, T>): Promise<T> {
    // A slice starts whenever this code gets the loop: here, and after each turn (in pause()).
    this.start();
    for (;;) {
      let r: IteratorResult<void, T>;
      try {
        r = work.next();
      } catch (err) {
        this.close();
        throw err;
      }
      if (r.done === true) {
        this.close();
        return r.value;
      }
      if (this.tick()) await this.pause();
    }
  }

  // The clock is read nearest the work at both ends (after cpuUsage here, before it in close()), so a
  // slice's wall time holds none of the getrusage calls.
  private start(): void {
    this.cpuStart = process.cpuUsage();
    this.sliceStart = performance.now();
  }

  private close(): void {
    const wallMs = performance.now() - this.sliceStart;
    if (wallMs > this.longestMs) this.longestMs = wallMs;
    const cpu = process.cpuUsage(this.cpuStart);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    if (cpuMs > this.longestCpuMs) this.longestCpuMs = cpuMs;
    this.onSlice?.({ wallMs, cpuMs });
  }
}
