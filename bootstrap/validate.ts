import { type DescField, type DescMessage, fromJson, type JsonValue, ScalarType } from '@bufbuild/protobuf';
import { type EnvoyApiSchema, loadEnvoyApiSchema } from './envoy-schema.ts';

export interface ValidationOptions {
  /**
   * Skip keys the schema does not know, as Envoy's `--allow-unknown-static-fields` does. Everything else
   * (unknown `@type` URLs, enum names, value formats) stays strict.
   */
  readonly allowUnknownFields?: boolean;
}

export type ValidationResult =
  | {
      readonly valid: true;
      /** Unknown keys skipped under `allowUnknownFields` (Envoy counts them in `server.static_unknown_fields`). */
      readonly ignoredFields: readonly string[];
    }
  | {
      readonly valid: false;
      /** Where the first defect is, as written in the input: `static_resources.clusters[0].connect_timeout`. */
      readonly fieldPath: string;
      readonly message: string;
    };

export const bootstrapTypeName = 'envoy.config.bootstrap.v3.Bootstrap';

/**
 * Checks an Envoy v3 `Bootstrap` (parsed JSON or YAML) against Envoy's own API protos, as strictly as Envoy
 * parses its bootstrap: unknown keys at any depth (inside `typed_config` payloads too), unknown `@type` URLs,
 * bad enum names and malformed values (durations, integers, …) are defects. Keys may be snake_case or
 * lowerCamelCase. The `(validate.rules)` constraints are not evaluated.
 *
 * The schema is built on the first call (about a second of CPU) and reused for the life of the process; call
 * {@link loadEnvoyApiSchema} early to pay that cost at a convenient time.
 */
export function validateBootstrap(bootstrap: unknown, options: ValidationOptions = {}): ValidationResult {
  return validateEnvoyMessage(bootstrapTypeName, bootstrap, options);
}

/** As {@link validateBootstrap}, for any message of Envoy's API named by its full type name. */
export function validateEnvoyMessage(
  typeName: string,
  json: unknown,
  options: ValidationOptions = {},
): ValidationResult {
  const schema = loadEnvoyApiSchema();
  const message = schema.registry.getMessage(typeName);
  if (message === undefined) {
    return { valid: false, fieldPath: '', message: `${typeName} is not a message type of Envoy's API` };
  }
  const walker = new Walker(schema, options.allowUnknownFields === true);
  try {
    const known = walker.message(message, json, '');
    // The walk locates defects; the library's own parser then has the last word on the known content.
    try {
      fromJson(message, known as JsonValue, { registry: schema.registry });
    } catch (error) {
      return { valid: false, fieldPath: '', message: (error as Error).message };
    }
    return { valid: true, ignoredFields: walker.ignoredFields };
  } catch (error) {
    if (error instanceof Defect) return { valid: false, fieldPath: error.fieldPath, message: error.message };
    throw error;
  }
}

class Defect extends Error {
  readonly fieldPath: string;
  constructor(fieldPath: string, message: string) {
    super(message);
    this.fieldPath = fieldPath;
  }
}

const typeUrlPrefix = /^(?:[^/]*\/)+/;

const fieldIndexes = new WeakMap<DescMessage, Map<string, DescField>>();

/** A message's fields by both JSON spellings (lowerCamelCase and the proto name), built once per message. */
export function fieldsByKey(descriptor: DescMessage): ReadonlyMap<string, DescField> {
  let index = fieldIndexes.get(descriptor);
  if (index === undefined) {
    index = new Map();
    for (const field of descriptor.fields) {
      index.set(field.name, field);
      index.set(field.jsonName, field);
    }
    fieldIndexes.set(descriptor, index);
  }
  return index;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return JSON.stringify(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function child(path: string, key: string): string {
  return /^[A-Za-z_@][A-Za-z0-9_@]*$/.test(key)
    ? path === ''
      ? key
      : `${path}.${key}`
    : `${path}[${JSON.stringify(key)}]`;
}

/** The well-known types whose JSON form is not an object of fields; the library checks them whole. */
const specialJsonTypes = new Set([
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.FieldMask',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
  'google.protobuf.Empty',
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
]);

/**
 * Walks JSON alongside the schema to find the first defect and its path; returns the input without the
 * keys it was told to ignore, so that the library parser can check the rest strictly.
 */
class Walker {
  readonly #schema: EnvoyApiSchema;
  readonly #allowUnknownFields: boolean;
  readonly ignoredFields: string[] = [];

  constructor(schema: EnvoyApiSchema, allowUnknownFields: boolean) {
    this.#schema = schema;
    this.#allowUnknownFields = allowUnknownFields;
  }

  message(descriptor: DescMessage, json: unknown, path: string): unknown {
    if (specialJsonTypes.has(descriptor.typeName)) {
      this.#library(descriptor, json, path);
      return json;
    }
    if (descriptor.typeName === 'google.protobuf.Any') return this.#any(json, path);
    if (!isPlainObject(json)) {
      throw new Defect(path, `expected an object for ${descriptor.typeName}, got ${describe(json)}`);
    }
    return this.#fields(descriptor, json, path, new Set());
  }

  #fields(
    descriptor: DescMessage,
    json: Record<string, unknown>,
    path: string,
    ignoredKeys: ReadonlySet<string>,
  ): Record<string, unknown> {
    const known: Record<string, unknown> = {};
    const seenFields = new Map<DescField, string>();
    const seenOneofs = new Map<string, string>();
    for (const [key, value] of Object.entries(json)) {
      if (ignoredKeys.has(key)) {
        known[key] = value;
        continue;
      }
      const keyPath = child(path, key);
      const field = descriptor.fields.find(
        (candidate) => candidate.jsonName === key || candidate.name === key,
      );
      if (field === undefined) {
        if (this.#allowUnknownFields) {
          this.ignoredFields.push(keyPath);
          continue;
        }
        throw new Defect(keyPath, `unknown field "${key}" in ${descriptor.typeName}`);
      }
      const previousKey = seenFields.get(field);
      if (previousKey !== undefined) {
        throw new Defect(keyPath, `field ${field.name} is set twice (as "${previousKey}" and "${key}")`);
      }
      seenFields.set(field, key);
      if (field.oneof !== undefined && value !== null) {
        const other = seenOneofs.get(field.oneof.name);
        if (other !== undefined) {
          throw new Defect(
            keyPath,
            `"${key}" and "${other}" are both set, but only one field of oneof ${field.oneof.name} may be`,
          );
        }
        seenOneofs.set(field.oneof.name, key);
      }
      known[key] = this.#field(descriptor, field, key, value, keyPath);
    }
    return known;
  }

  #field(descriptor: DescMessage, field: DescField, key: string, value: unknown, path: string): unknown {
    if (value === null) return value;
    switch (field.fieldKind) {
      case 'scalar':
      case 'enum':
        this.#library(descriptor, { [key]: value }, path);
        return value;
      case 'message':
        return this.message(field.message, value, path);
      case 'list': {
        if (!Array.isArray(value))
          throw new Defect(path, `expected a list for ${field.name}, got ${describe(value)}`);
        return value.map((item, index) => {
          const itemPath = `${path}[${index}]`;
          if (item === null) throw new Defect(itemPath, 'a list item must not be null');
          if (field.listKind === 'message') return this.message(field.message, item, itemPath);
          this.#library(descriptor, { [key]: [item] }, itemPath);
          return item;
        });
      }
      case 'map': {
        if (!isPlainObject(value)) {
          throw new Defect(path, `expected an object (a map) for ${field.name}, got ${describe(value)}`);
        }
        const known: Record<string, unknown> = {};
        for (const [mapKey, entry] of Object.entries(value)) {
          const entryPath = `${path}[${JSON.stringify(mapKey)}]`;
          checkMapKey(field.mapKey, mapKey, entryPath);
          if (entry === null) throw new Defect(entryPath, 'a map value must not be null');
          if (field.mapKind === 'message') {
            known[mapKey] = this.message(field.message, entry, entryPath);
          } else {
            this.#library(descriptor, { [key]: { [mapKey]: entry } }, entryPath);
            known[mapKey] = entry;
          }
        }
        return known;
      }
    }
  }

  #any(json: unknown, path: string): unknown {
    if (!isPlainObject(json)) {
      throw new Defect(
        path,
        `expected an object with "@type" for google.protobuf.Any, got ${describe(json)}`,
      );
    }
    const typePath = child(path, '@type');
    const typeUrl = json['@type'];
    if (typeof typeUrl !== 'string' || typeUrl === '') {
      if (Object.keys(json).length === 0) return json; // an empty Any is valid JSON for an unset payload
      throw new Defect(typePath, `"@type" is missing: google.protobuf.Any needs a type URL`);
    }
    const typeName = typeUrl.replace(typeUrlPrefix, '');
    if (!typeUrl.includes('/') || typeName === '') {
      throw new Defect(typePath, `"${typeUrl}" is not a type URL (expected type.googleapis.com/<type name>)`);
    }
    const payload = this.#schema.registry.getMessage(typeName);
    if (payload === undefined) {
      throw new Defect(typePath, `unknown type "${typeUrl}": no message ${typeName} in Envoy's API`);
    }
    if (specialJsonTypes.has(payload.typeName) || payload.typeName === 'google.protobuf.Any') {
      // A well-known type travels as {"@type": …, "value": <its JSON>}.
      const { '@type': _, ...rest } = json;
      for (const key of Object.keys(rest)) {
        if (key !== 'value')
          throw new Defect(child(path, key), `unknown field "${key}" next to a ${payload.typeName}`);
      }
      if ('value' in rest) this.message(payload, rest.value, child(path, 'value'));
      return json;
    }
    return this.#fields(payload, json, path, new Set(['@type']));
  }

  #library(descriptor: DescMessage, json: unknown, path: string): void {
    try {
      fromJson(descriptor, json as JsonValue, { registry: this.#schema.registry });
    } catch (error) {
      throw new Defect(path, (error as Error).message);
    }
  }
}

const integerKeyRanges: Partial<Record<ScalarType, readonly [bigint, bigint]>> = {
  [ScalarType.INT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SINT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SFIXED32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.UINT32]: [0n, 2n ** 32n - 1n],
  [ScalarType.FIXED32]: [0n, 2n ** 32n - 1n],
  [ScalarType.INT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SINT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SFIXED64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.UINT64]: [0n, 2n ** 64n - 1n],
  [ScalarType.FIXED64]: [0n, 2n ** 64n - 1n],
};

function checkMapKey(keyType: ScalarType, key: string, path: string): void {
  if (keyType === ScalarType.STRING) return;
  if (keyType === ScalarType.BOOL) {
    if (key !== 'true' && key !== 'false') throw new Defect(path, `map key "${key}" is not true or false`);
    return;
  }
  const range = integerKeyRanges[keyType];
  if (range === undefined) return;
  if (!/^-?\d+$/.test(key) || BigInt(key) < range[0] || BigInt(key) > range[1]) {
    throw new Defect(path, `map key "${key}" is not an integer in range`);
  }
}
