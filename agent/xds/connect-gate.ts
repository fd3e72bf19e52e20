import type { Clock, Random } from '../clock.ts';
import { type BackoffPolicy, ExponentialBackoff } from '../identity/backoff.ts';

/**
 * Between failed attempts to reach istiod: 500 ms doubling to 15 s. Envoy backs off on its own (500 ms to
 * 30 s); this floor protects istiod when several streams (two Envoy epochs, a reconnecting client) retry at
 * once, and adds nothing when Envoy already waited longer.
 */
export const upstreamConnectBackoff: BackoffPolicy = {
  initialMilliseconds: 500,
  maximumMilliseconds: 15_000,
  jitterRatio: 0.1,
};

/**
 * Decides when the next upstream stream may be opened: at once while istiod answers, and no sooner than a
 * growing backoff after the last failure (a failed connection, or a stream istiod ended before answering).
 */
export class ConnectGate {
  readonly #clock: Clock;
  readonly #backoff: ExponentialBackoff;
  #notBefore = 0;
  #consecutiveFailures = 0;

  constructor(clock: Clock, random: Random, policy: BackoffPolicy = upstreamConnectBackoff) {
    this.#clock = clock;
    this.#backoff = new ExponentialBackoff(policy, random);
  }

  /** Milliseconds to wait before the next attempt (0 when it may go now). */
  delayBeforeAttempt(): number {
    return Math.max(0, this.#notBefore - this.#clock.now());
  }

  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** An attempt failed: the next one waits for the next backoff step, counted from now. */
  recordFailure(): number {
    this.#consecutiveFailures += 1;
    const delay = this.#backoff.next();
    this.#notBefore = this.#clock.now() + delay;
    return delay;
  }

  /** istiod answered: the next attempt, after whatever ends this stream, goes at once. */
  recordSuccess(): void {
    this.#consecutiveFailures = 0;
    this.#notBefore = 0;
    this.#backoff.reset();
  }
}
