import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/** A bootstrap as JSON with every proto field name in snake_case (Envoy accepts both spellings). */
export type BootstrapJson = Record<string, unknown>;

/** A configuration Envoy refuses (EnvoyException): logged critically, then exit 1. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Fields whose value is a google.protobuf.Struct (or a map of them): their keys are data, not field names.
 * `metadata` is a Struct only under `node`; elsewhere it is core.v3.Metadata (whose `filter_metadata` is).
 */
const structFields = new Set(['static_layer', 'json_format', 'filter_metadata', 'fields']);
/** Map fields: keys are data (extension names, filter names), values are messages. */
const mapFields = new Set([
  'typed_extension_protocol_options',
  'typed_per_filter_config',
  'typed_filter_metadata',
  'extension_protocol_options',
]);

/** `lowerCamelCase` → `snake_case`, the inverse of protobuf's json_name (digits stay with their word). */
export function snakeCase(key: string): string {
  if (key.startsWith('@') || !/[A-Z]/.test(key)) return key;
  return key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

function normaliseValue(value: unknown, parentKey: string): unknown {
  if (Array.isArray(value)) return value.map((item) => normaliseValue(item, parentKey));
  if (!isObject(value)) return value;
  return normaliseMessage(value, parentKey);
}

function normaliseMessage(message: Record<string, unknown>, ownKey: string): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [rawKey, value] of Object.entries(message)) {
    const key = snakeCase(rawKey);
    if (structFields.has(key) || (key === 'metadata' && ownKey === 'node')) {
      result[key] = value;
    } else if (mapFields.has(key) && isObject(value)) {
      result[key] = Object.fromEntries(
        Object.entries(value).map(([name, entry]) => [name, normaliseValue(entry, key)]),
      );
    } else {
      result[key] = normaliseValue(value, key);
    }
  }
  return result;
}

/** Rewrites every proto field name to snake_case, leaving Struct contents and map keys untouched. */
export function normaliseBootstrapKeys(bootstrap: Record<string, unknown>): BootstrapJson {
  return normaliseMessage(bootstrap, '');
}

/**
 * protobuf `MergeFrom` as Envoy applies `--config-yaml` over the file: singular fields replaced, messages
 * merged field by field, repeated fields appended, map entries replaced by key.
 */
export function mergeBootstrap(base: BootstrapJson, override: BootstrapJson): BootstrapJson {
  const merge = (target: Record<string, unknown>, source: Record<string, unknown>, key: string) => {
    const result: Record<string, unknown> = { ...target };
    for (const [field, value] of Object.entries(source)) {
      const existing = result[field];
      if (Array.isArray(value) && Array.isArray(existing)) {
        result[field] = [...existing, ...value];
      } else if (isObject(value) && isObject(existing)) {
        // Maps and Structs (a map<string, Value>) merge entry by entry, each entry replaced whole.
        const byKey =
          mapFields.has(field) || structFields.has(field) || (field === 'metadata' && key === 'node');
        result[field] = byKey ? { ...existing, ...value } : merge(existing, value, field);
      } else {
        result[field] = value;
      }
    }
    return result;
  };
  return merge(base, override, '');
}

function parseDocument(text: string, source: string, asYaml: boolean): Record<string, unknown> {
  let parsed: unknown;
  if (asYaml) {
    try {
      parsed = parseYaml(text);
    } catch (error) {
      throw new ConfigurationError(
        `Unable to convert YAML as JSON: ${(error as Error).message.split('\n')[0]}`,
      );
    }
  } else {
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ConfigurationError(
        `Unable to parse JSON as proto (INVALID_ARGUMENT:${(error as Error).message}): ${text.slice(0, 200)}`,
      );
    }
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isObject(parsed)) {
    throw new ConfigurationError(
      `Unable to parse ${source} as proto: expected an object, got ${typeof parsed}`,
    );
  }
  return parsed;
}

export interface BootstrapSources {
  readonly configPath: string;
  readonly configYaml: string;
  /** Reads the file named by `-c`; injectable for tests. */
  readonly readFile?: (path: string) => string;
}

/** Loads `-c` (JSON, or YAML by extension) and merges `--config-yaml` over it, as Envoy does at start-up. */
export function loadBootstrap(sources: BootstrapSources): BootstrapJson {
  const { configPath, configYaml } = sources;
  if (configPath === '' && configYaml === '') {
    throw new ConfigurationError(
      'At least one of --config-path or --config-yaml or Options::configProto() should be non-empty',
    );
  }
  let bootstrap: BootstrapJson = {};
  if (configPath !== '') {
    let text: string;
    try {
      text = (sources.readFile ?? ((path) => readFileSync(path, 'utf8')))(configPath);
    } catch {
      throw new ConfigurationError(`unable to read file: ${configPath}`);
    }
    if (configPath.endsWith('.pb') || configPath.endsWith('.pb_text')) {
      throw new ConfigurationError(
        `the Envoy stand-in reads JSON or YAML bootstraps only, not ${configPath}`,
      );
    }
    const asYaml = configPath.endsWith('.yaml') || configPath.endsWith('.yml');
    bootstrap = normaliseBootstrapKeys(parseDocument(text, configPath, asYaml));
  }
  if (configYaml !== '') {
    bootstrap = mergeBootstrap(
      bootstrap,
      normaliseBootstrapKeys(parseDocument(configYaml, '--config-yaml', true)),
    );
  }
  return bootstrap;
}
