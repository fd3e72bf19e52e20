import type { DrainStrategy } from './flags.ts';

export type DrainScope = 'all' | 'inbound';

export interface DrainManagerOptions {
  readonly drainTimeMilliseconds: number;
  readonly strategy: DrainStrategy;
  readonly now?: () => number;
  readonly random?: () => number;
}

/**
 * Envoy's drain manager: a drain sequence lasts `--drain-time-s`; while it runs, connections are asked to
 * close — all at once with `immediate`, with a probability growing over the drain time with `gradual` —
 * and when it ends the completion callback runs (stop listeners, unless skip_exit).
 */
export class DrainManager {
  readonly #options: DrainManagerOptions;
  #startedAt: number | undefined;
  #scope: DrainScope = 'all';
  #timer: NodeJS.Timeout | undefined;

  constructor(options: DrainManagerOptions) {
    this.#options = options;
  }

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }

  get draining(): boolean {
    return this.#startedAt !== undefined;
  }

  /** Starts the sequence once (later calls are ignored, as Envoy ignores a second graceful drain). */
  startDrainSequence(scope: DrainScope, onComplete: () => void): boolean {
    if (this.#startedAt !== undefined) return false;
    this.#startedAt = this.#now();
    this.#scope = scope;
    this.#timer = setTimeout(onComplete, this.#options.drainTimeMilliseconds);
    return true;
  }

  /** Whether a connection of a listener in this direction should close now. */
  drainClose(inbound: boolean): boolean {
    if (this.#startedAt === undefined) return false;
    if (this.#scope === 'inbound' && !inbound) return false;
    if (this.#options.strategy === 'immediate') return true;
    const elapsed = this.#now() - this.#startedAt;
    const fraction =
      this.#options.drainTimeMilliseconds === 0 ? 1 : elapsed / this.#options.drainTimeMilliseconds;
    return (this.#options.random ?? Math.random)() < fraction;
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }
}
