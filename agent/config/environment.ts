import { requireDurationMilliseconds } from './duration.ts';
import { ConfigError, quoteForError } from './errors.ts';

export type EnvironmentSnapshot = Readonly<Record<string, string | undefined>>;

/**
 * The process environment with names normalised: some rendered manifests spell variables with hyphens
 * (`POD-NAME`); both spellings are accepted and the underscore spelling wins when both are set.
 */
export function normaliseEnvironment(environment: EnvironmentSnapshot): Record<string, string> {
  const normalised: Record<string, string> = {};
  for (const [name, value] of Object.entries(environment)) {
    if (value === undefined || !name.includes('-')) continue;
    normalised[name.replaceAll('-', '_')] = value;
  }
  for (const [name, value] of Object.entries(environment)) {
    if (value === undefined || name.includes('-')) continue;
    normalised[name] = value;
  }
  return normalised;
}

/** Typed reads of one normalised environment; every failure names the variable and the expected form. */
export class EnvironmentReader {
  readonly variables: Readonly<Record<string, string>>;

  constructor(variables: Readonly<Record<string, string>>) {
    this.variables = variables;
  }

  /** The raw value, or undefined when unset. An empty value counts as set, as in Go's os.LookupEnv. */
  lookup(name: string): string | undefined {
    return this.variables[name];
  }

  string(name: string, fallback: string): string {
    const value = this.variables[name];
    return value === undefined || value === '' ? fallback : value;
  }

  optionalString(name: string): string | undefined {
    const value = this.variables[name];
    return value === undefined || value === '' ? undefined : value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.optionalString(name);
    if (value === undefined) return fallback;
    // Go's strconv.ParseBool spellings.
    if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
    if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
    throw new ConfigError(name, `${quoteForError(value)} is not a boolean (expected true or false)`);
  }

  integer(name: string, fallback: number, bounds: { min?: number; max?: number } = {}): number {
    const value = this.optionalString(name);
    if (value === undefined) return fallback;
    return parseInteger(name, value, bounds);
  }

  number(name: string, fallback: number, bounds: { min?: number; max?: number } = {}): number {
    const value = this.optionalString(name);
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (
      !Number.isFinite(parsed) ||
      (bounds.min !== undefined && parsed < bounds.min) ||
      (bounds.max !== undefined && parsed > bounds.max)
    ) {
      throw new ConfigError(name, `${quoteForError(value)} is not a number${describeBounds(bounds)}`);
    }
    return parsed;
  }

  durationMilliseconds(name: string, fallback: string): number {
    return requireDurationMilliseconds(name, this.string(name, fallback));
  }

  /** Every variable named `<prefix><KEY>` as `{KEY: value}`, in a stable order. */
  withPrefix(prefix: string): Record<string, string> {
    const selected: Record<string, string> = {};
    for (const name of Object.keys(this.variables).sort()) {
      if (name.startsWith(prefix) && name.length > prefix.length) {
        selected[name.slice(prefix.length)] = this.variables[name] as string;
      }
    }
    return selected;
  }
}

export function parseInteger(
  source: string,
  value: string,
  bounds: { min?: number; max?: number } = {},
): number {
  const trimmed = value.trim();
  const parsed = /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (
    !Number.isSafeInteger(parsed) ||
    (bounds.min !== undefined && parsed < bounds.min) ||
    (bounds.max !== undefined && parsed > bounds.max)
  ) {
    throw new ConfigError(source, `${quoteForError(value)} is not an integer${describeBounds(bounds)}`);
  }
  return parsed;
}

function describeBounds(bounds: { min?: number; max?: number }): string {
  if (bounds.min !== undefined && bounds.max !== undefined)
    return ` (expected ${bounds.min} to ${bounds.max})`;
  if (bounds.min !== undefined) return ` (expected ${bounds.min} or more)`;
  if (bounds.max !== undefined) return ` (expected at most ${bounds.max})`;
  return '';
}
