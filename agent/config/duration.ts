import { ConfigError, quoteForError } from './errors.ts';

const unitMilliseconds: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const componentPattern = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a Go `time.Duration` string ("100ms", "1h30m", "45s", "1.5s") or a protobuf JSON duration
 * ("45s") into milliseconds. Returns undefined when the text is not a duration.
 */
export function parseDurationMilliseconds(text: string): number | undefined {
  let rest = text.trim();
  if (rest === '') return undefined;
  let sign = 1;
  if (rest[0] === '-' || rest[0] === '+') {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  let total = 0;
  let position = 0;
  componentPattern.lastIndex = 0;
  while (position < rest.length) {
    componentPattern.lastIndex = position;
    const match = componentPattern.exec(rest);
    if (!match) return undefined;
    total += Number(match[1]) * (unitMilliseconds[match[2] as string] as number);
    position = componentPattern.lastIndex;
  }
  return sign * total;
}

/** Like {@link parseDurationMilliseconds}, but a bad or negative value is a {@link ConfigError} naming `source`. */
export function requireDurationMilliseconds(source: string, text: string): number {
  const milliseconds = parseDurationMilliseconds(text);
  if (milliseconds === undefined || milliseconds < 0) {
    throw new ConfigError(
      source,
      `${quoteForError(text)} is not a valid duration (expected a non-negative Go duration such as "100ms", "45s" or "1h30m")`,
    );
  }
  return milliseconds;
}
