/**
 * The one backoff of every sink: jittered exponential delays, and the circuit breaker built on them
 * that stops a sink from sending while its destination is failing (as the Datadog agent's forwarder).
 */
import { systemClock, type Clock } from './clock.js';

/** Settings of the backoff. */
export interface BackoffOptions {
  /** Delay after the first failure, before jitter. */
  baseMs: number;
  /** Longest delay; reached without jitter. */
  maxMs: number;
}

/**
 * Delay after the `n`-th consecutive failure: t = base·2^(n-1), random in [t/2, t] so that many senders
 * recovering together do not retry in lockstep; `maxMs` once t reaches it.
 */
export function backoffDelay(n: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const t = opts.baseMs * 2 ** Math.max(0, n - 1);
  if (t >= opts.maxMs) return opts.maxMs;
  return t / 2 + random() * (t / 2);
}

/** Consecutive failures counted at most: 2^40 times any base is past every sane maximum anyway. */
const MAX_ERROR_COUNT = 40;

/**
 * Open (blocked) for a backoff after each failure, closed again by one success. Failures of requests
 * already in flight when the breaker opened do not escalate it again, and one success forgives two
 * failures (the agent's recovery interval), so a flapping destination settles at a moderate delay.
 */
export class CircuitBreaker {
  private errorCount = 0;
  private blockedUntil = 0;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly clock: Clock = systemClock,
    private readonly random: () => number = Math.random,
  ) {}

  /** Whether sending should wait. */
  get open(): boolean {
    return this.clock.now() < this.blockedUntil;
  }

  /** Milliseconds until the breaker closes (0 when closed). */
  get remainingMs(): number {
    return Math.max(0, this.blockedUntil - this.clock.now());
  }

  /** Consecutive failures the breaker currently counts. */
  get failures(): number {
    return this.errorCount;
  }

  /** The delay of the `n`-th consecutive failure under this breaker's settings. */
  delay(n: number): number {
    return backoffDelay(n, this.opts, this.random);
  }

  /** Records a failure; the destination's own wait (`Retry-After`) is honoured when longer than the backoff. */
  failure(retryAfterMs = 0): void {
    const now = this.clock.now();
    if (now >= this.blockedUntil) this.errorCount = Math.min(this.errorCount + 1, MAX_ERROR_COUNT);
    const wait = Math.max(retryAfterMs, this.delay(this.errorCount));
    this.blockedUntil = Math.max(this.blockedUntil, now + wait);
  }

  /** Records a success; true when the breaker was open until now (so parked data can go at once). */
  success(): boolean {
    this.errorCount = Math.max(0, this.errorCount - 2);
    if (this.blockedUntil === 0) return false;
    this.blockedUntil = 0;
    return true;
  }
}
