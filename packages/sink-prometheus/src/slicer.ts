/**
 * Time-budgeted slices for the sink's long synchronous steps (state update, remote-write encode and
 * compression, scrape rendering): work runs until its budget is used up, then gives the event loop a
 * turn with `setImmediate`. A count between looks at the clock keeps `performance.now()` off the
 * per-item path. Each slicer measures its longest slice itself, in wall time and in the process' CPU
 * time: on a loaded machine wall time (and event-loop delay) mostly measures the other processes,
 * while CPU time is what the slice costs (it includes helper threads: an upper bound).
 */

/** Default budget of one slice (ms): well under the 50 ms loop-delay target, large enough to amortise a turn. */
export const SLICE_BUDGET_MS = 5;

/** The longest slice of an operation. */
export interface SliceFigures {
  /** Wall time (ms). */
  readonly wallMs: number;
  /** Process CPU time (ms). */
  readonly cpuMs: number;
}

/** The longer of two operations' longest slices, per figure. */
export function longest(a: SliceFigures, b: SliceFigures): SliceFigures {
  return { wallMs: Math.max(a.wallMs, b.wallMs), cpuMs: Math.max(a.cpuMs, b.cpuMs) };
}

/** Cuts one operation into slices of about `budgetMs`, with an event-loop turn between two. */
export class Slicer {
  private sliceStart = performance.now();
  private cpuStart = process.cpuUsage();
  private k = 0;
  /** Longest slice so far (ms), from a turn (or the start) to the next pause or to {@link finish}. */
  longestMs = 0;
  /** The process CPU time of the slice that used the most (ms). */
  longestCpuMs = 0;
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
    this.start();
  }

  /** Ends the slice because the event loop had a turn meanwhile (the caller awaited I/O), and starts the next. */
  restart(): void {
    this.close();
    this.turns++;
    this.start();
  }

  /** Ends the last slice; returns the longest, in wall and CPU time (ms). */
  finish(): SliceFigures {
    this.close();
    return { wallMs: this.longestMs, cpuMs: this.longestCpuMs };
  }

  private start(): void {
    this.sliceStart = performance.now();
    this.cpuStart = process.cpuUsage();
  }

  private close(): void {
    const ms = performance.now() - this.sliceStart;
    if (ms > this.longestMs) this.longestMs = ms;
    const cpu = process.cpuUsage(this.cpuStart);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    if (cpuMs > this.longestCpuMs) this.longestCpuMs = cpuMs;
  }
}
