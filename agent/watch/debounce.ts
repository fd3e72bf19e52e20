/**
 * Collects values and hands them over once no new one arrived for `quietMilliseconds` (a trailing
 * debounce, as Istio's `FILE_DEBOUNCE_DURATION`), so that a burst of file events becomes one reload.
 */
export class Debouncer<T> {
  readonly #quietMilliseconds: number;
  readonly #flush: (values: ReadonlySet<T>) => void;
  readonly #pending = new Set<T>();
  #timer: NodeJS.Timeout | undefined;

  constructor(quietMilliseconds: number, flush: (values: ReadonlySet<T>) => void) {
    this.#quietMilliseconds = quietMilliseconds;
    this.#flush = flush;
  }

  push(value: T): void {
    this.#pending.add(value);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const values = new Set(this.#pending);
      this.#pending.clear();
      this.#flush(values);
    }, this.#quietMilliseconds);
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }
}
