/**
 * The restart budget of Istio's original Envoy supervisor: a delay of `initial × 2^attempt` (200 ms
 * doubling) for at most `budget` consecutive failures; a success refills it.
 */
export class RestartBudget {
  readonly #initialMilliseconds: number;
  readonly #budget: number;
  #failures = 0;

  constructor(options: { initialMilliseconds?: number; budget?: number } = {}) {
    this.#initialMilliseconds = options.initialMilliseconds ?? 200;
    this.#budget = options.budget ?? 10;
  }

  /** Records a failure; returns the delay before the next attempt, or undefined when the budget is spent. */
  fail(): number | undefined {
    this.#failures++;
    if (this.#failures > this.#budget) return undefined;
    return this.#initialMilliseconds * 2 ** (this.#failures - 1);
  }

  get failures(): number {
    return this.#failures;
  }

  reset(): void {
    this.#failures = 0;
  }
}
