import type { Random } from '../clock.ts';

export interface BackoffPolicy {
  readonly initialMilliseconds: number;
  readonly maximumMilliseconds: number;
  /** ± this fraction of each delay, drawn from the injected random source (0.1 = ±10 %). */
  readonly jitterRatio: number;
}

/** Between calls of a CSR (Istio: 5 attempts, exponential from 100 ms, 10 % jitter). */
export const callRetryBackoff: BackoffPolicy = {
  initialMilliseconds: 100,
  maximumMilliseconds: 60_000,
  jitterRatio: 0.1,
};

/** Between attempts at the first certificate and at a failed rotation: 500 ms doubling to 60 s. */
export const certificateBackoff: BackoffPolicy = {
  initialMilliseconds: 500,
  maximumMilliseconds: 60_000,
  jitterRatio: 0.1,
};

/** Doubling delays with jitter; `reset()` after a success. */
export class ExponentialBackoff {
  readonly #policy: BackoffPolicy;
  readonly #random: Random;
  #attempt = 0;

  constructor(policy: BackoffPolicy, random: Random) {
    this.#policy = policy;
    this.#random = random;
  }

  /** The delay before the next attempt. */
  next(): number {
    const base = Math.min(
      this.#policy.initialMilliseconds * 2 ** this.#attempt,
      this.#policy.maximumMilliseconds,
    );
    this.#attempt += 1;
    const jitter = (this.#random() * 2 - 1) * this.#policy.jitterRatio;
    return Math.round(base * (1 + jitter));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
