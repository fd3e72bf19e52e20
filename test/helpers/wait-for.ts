import { setTimeout as delay } from 'node:timers/promises';

/** Thrown by a probe when waiting longer cannot help (the process it watches exited): fails the wait at once. */
export class StopWaiting extends Error {
  override name = 'StopWaiting';
}

/**
 * Polls `probe` until it returns a value other than undefined/false, or fails after `timeoutMilliseconds`
 * with the last error or `description`. This is a readiness poll, not a sleep: it returns as soon as the
 * condition holds.
 */
export async function waitFor<T>(
  description: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMilliseconds = 60_000, intervalMilliseconds = 25 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMilliseconds;
  let lastError: unknown;
  for (;;) {
    try {
      const result = await probe();
      if (result !== undefined && result !== false) return result;
    } catch (error) {
      if (error instanceof StopWaiting) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMilliseconds} ms waiting for ${description}${reason}`);
    }
    await delay(intervalMilliseconds);
  }
}
