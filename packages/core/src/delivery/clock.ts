/**
 * Time as the delivery policy sees it, so tests can drive backoff, the breaker and the age limit with a
 * fake clock instead of sleeping.
 */

/** Cancels a timer set with {@link Clock.setTimer}. */
export type CancelTimer = () => void;

/** The clock and timers the delivery code runs on. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /**
   * Runs `fn` after `ms`. `keepAlive: false` (retry timers) must not keep the process alive on its own:
   * a library user's process may exit with data parked; a shutdown wait passes `true`.
   */
  setTimer(fn: () => void, ms: number, keepAlive: boolean): CancelTimer;
}

/** `Date.now` and `setTimeout`. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms, keepAlive) {
    const t = setTimeout(fn, Math.max(0, ms));
    if (!keepAlive) t.unref();
    return () => clearTimeout(t);
  },
};

/** Resolves after `ms` on `clock` (keeping the process alive: only shutdown and queue waits use it). */
export function sleepOn(clock: Clock, ms: number): { done: Promise<void>; wake: () => void } {
  let wake!: () => void;
  const done = new Promise<void>((resolve) => {
    const cancel = clock.setTimer(resolve, ms, true);
    wake = () => {
      cancel();
      resolve();
    };
  });
  return { done, wake };
}
