/**
 * What the process helpers need from whoever owns the processes: a place to register clean-ups and a log
 * for the output of a failed run. Ava's `ExecutionContext` fits, and so does a benchmark's own lifetime
 * (scripts/bench/lifetime.ts), so the benchmarks start pods with the same helpers as the tests.
 */
export interface Lifetime {
  teardown(cleanup: (() => Promise<void>) | (() => void)): void;
  readonly passed: boolean;
  log(...values: unknown[]): void;
}
