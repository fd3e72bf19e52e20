import type { Lifetime } from '../../test/helpers/lifetime.ts';

export interface BenchLifetime extends Lifetime {
  /** Runs the registered clean-ups, the last registered first (as ava does). */
  end(): Promise<void>;
}

/** A lifetime for the test helpers outside ava: processes and temp dirs are cleaned up by `end()`. */
export function createBenchLifetime(): BenchLifetime {
  const cleanups: Array<() => unknown> = [];
  return {
    passed: true,
    teardown: (cleanup) => {
      cleanups.push(cleanup);
    },
    log: (...values) => console.error(...values),
    async end() {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    },
  };
}
