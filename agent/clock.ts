/** A pending timer; cancelling it twice, or after it fired, does nothing. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as the agent's parts see it: injected, so that tests drive rotation schedules and backoffs without
 * waiting for them.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `callback` once after `delayMilliseconds` (negative delays count as 0). */
  setTimer(callback: () => void, delayMilliseconds: number): Timer;
}

/** Node caps a single timeout at 2^31−1 ms (~24.8 days); longer delays are chained. */
const longestTimeout = 2 ** 31 - 1;

/** The real clock. Its timers do not keep the process alive on their own (the servers and sockets do). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMilliseconds) {
    let handle: NodeJS.Timeout | undefined;
    const due = Date.now() + Math.max(0, delayMilliseconds);
    const arm = () => {
      const remaining = due - Date.now();
      handle = setTimeout(remaining > longestTimeout ? arm : callback, Math.min(remaining, longestTimeout));
      handle.unref();
    };
    arm();
    return {
      cancel: () => {
        if (handle !== undefined) clearTimeout(handle);
      },
    };
  },
};

/** Thrown by {@link sleep} when its signal aborts. */
export class SleepAbortedError extends Error {
  constructor() {
    super('aborted while waiting');
    this.name = 'AbortError';
  }
}

/** Resolves after `delayMilliseconds` on `clock`; rejects with {@link SleepAbortedError} when `signal` aborts. */
export function sleep(clock: Clock, delayMilliseconds: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new SleepAbortedError());
      return;
    }
    const onAbort = () => {
      timer.cancel();
      reject(new SleepAbortedError());
    };
    const timer = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, delayMilliseconds);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A source of uniformly distributed numbers in [0, 1) (jitter); injected so tests can pin it. */
export type Random = () => number;
