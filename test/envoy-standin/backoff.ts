/**
 * Envoy's JitteredExponentialBackOffStrategy as its xDS gRPC streams use it (base 500 ms, max 30 s): the
 * n-th retry waits a random time below (2^n − 1) × base, capped at the maximum; reset once a stream gets a
 * message.
 */
export class JitteredBackoff {
  readonly #base: number;
  readonly #maximum: number;
  readonly #random: () => number;
  #retry = 1;

  constructor(base = 500, maximum = 30_000, random: () => number = Math.random) {
    this.#base = base;
    this.#maximum = maximum;
    this.#random = random;
  }

  next(): number {
    const ceiling = (2 ** this.#retry - 1) * this.#base;
    if (ceiling <= this.#maximum) this.#retry++;
    return Math.min(Math.floor(this.#random() * ceiling), this.#maximum);
  }

  reset(): void {
    this.#retry = 1;
  }
}
