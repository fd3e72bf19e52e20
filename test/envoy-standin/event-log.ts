import { appendFileSync } from 'node:fs';

/**
 * Appends JSON lines to a file tests read (the admin request log, the lifecycle event log). Synchronous so
 * the order of lines is the order of events even across processes appending to the same file (O_APPEND).
 */
export class JsonLineLog {
  readonly #path: string | undefined;
  readonly #base: Record<string, unknown>;

  constructor(path: string | undefined, base: Record<string, unknown>) {
    this.#path = path;
    this.#base = base;
  }

  append(entry: Record<string, unknown>): void {
    if (this.#path === undefined) return;
    try {
      appendFileSync(
        this.#path,
        `${JSON.stringify({ time: new Date().toISOString(), ...this.#base, ...entry })}\n`,
      );
    } catch {
      // Observation must never break the process under test.
    }
  }
}
