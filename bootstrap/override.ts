import { fromJson, type JsonValue, merge, toJson } from '@bufbuild/protobuf';
import { ConfigError } from '../agent/config/errors.ts';
import { isPlainObject, parseJsonOrYaml } from '../agent/config/structured-text.ts';
import { loadEnvoyApiSchema } from './envoy-schema.ts';
import type { JsonObject } from './envoy-types.ts';
import { validateBootstrap } from './validate.ts';

/** A bootstrap document as read from a file: its name (for errors) and its text. */
export interface BootstrapDocument {
  readonly file: string;
  readonly text: string;
}

/**
 * Parses a bootstrap file (JSON or YAML) and checks it strictly against Envoy's API, replacing `$(HOST_IP)`
 * first as Istio does for `ISTIO_BOOTSTRAP_OVERRIDE`. Errors name the file and the field.
 */
export function parseBootstrapDocument(
  document: BootstrapDocument,
  substitutions: Readonly<Record<string, string>> = {},
): JsonObject {
  let text = document.text;
  for (const [variable, value] of Object.entries(substitutions))
    text = text.replaceAll(`$(${variable})`, value);
  const parsed = parseJsonOrYaml(document.file, text);
  if (parsed === null || parsed === undefined) return {};
  if (!isPlainObject(parsed)) {
    throw new ConfigError(document.file, 'expected an Envoy bootstrap object (a JSON/YAML mapping)');
  }
  const result = validateBootstrap(parsed);
  if (!result.valid) {
    throw new ConfigError(
      document.file,
      `invalid Envoy bootstrap at ${result.fieldPath || '(top level)'}: ${result.message}`,
    );
  }
  return parsed as JsonObject;
}

/**
 * Merges `override` into `base` as Envoy merges `--config-yaml` into its `-c` file (protobuf `MergeFrom`):
 * messages field by field, repeated fields appended, map entries and scalars replaced, a set oneof member
 * replacing the other members. Both must be valid bootstraps. The result is the canonical proto JSON form
 * with Envoy's snake_case field names (fields at their default value are left out, as Envoy would read them).
 */
export function mergeBootstrap(base: JsonObject, override: JsonObject): JsonObject {
  const { bootstrap: schema, registry } = loadEnvoyApiSchema();
  const target = fromJson(schema, base as JsonValue, { registry });
  merge(schema, target, fromJson(schema, override as JsonValue, { registry }));
  return toJson(schema, target, { registry, useProtoFieldName: true }) as JsonObject;
}
