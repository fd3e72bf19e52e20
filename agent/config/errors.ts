/**
 * A configuration problem, always tied to where the bad value came from (an environment variable, a
 * file and line, a flag) and what was expected there. The CLI prints `message` as one line and exits 255.
 */
export class ConfigError extends Error {
  readonly source: string;

  constructor(source: string, problem: string) {
    super(`${source}: ${problem}`);
    this.name = 'ConfigError';
    this.source = source;
  }
}

/** Shortens an offending value for an error message without flooding the terminal. */
export function quoteForError(value: string, limit = 80): string {
  const shown = value.length > limit ? `${value.slice(0, limit)}…` : value;
  return JSON.stringify(shown);
}
