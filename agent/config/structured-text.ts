import { parse as parseYaml } from 'yaml';
import { ConfigError } from './errors.ts';

/** Parses JSON or YAML (YAML 1.2 reads JSON too) and reports the source on failure. */
export function parseJsonOrYaml(source: string, text: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: false, uniqueKeys: true });
  } catch (error) {
    throw new ConfigError(source, `invalid JSON/YAML: ${firstLine(error)}`);
  }
}

/** Parses strict JSON and reports the source on failure. */
export function parseJson(source: string, text: string, expected: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(source, `invalid JSON (expected ${expected}): ${firstLine(error)}`);
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
