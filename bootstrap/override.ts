import { type DescField, type DescMessage, ScalarType } from '@bufbuild/protobuf';
import { FeatureSet_FieldPresence } from '@bufbuild/protobuf/wkt';
import { ConfigError } from '../agent/config/errors.ts';
import { isPlainObject, parseJsonOrYaml } from '../agent/config/structured-text.ts';
import { loadEnvoyApiSchema } from './envoy-schema.ts';
import type { JsonObject } from './envoy-types.ts';
import { fieldsByKey, validateBootstrap } from './validate.ts';

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
 * Merges `override` into `base` as Envoy merges `--config-yaml` into its `-c` file (protobuf `MergeFrom`),
 * guided by Envoy's schema: messages merge field by field, repeated fields append, map entries (and the keys
 * of a `Struct`) are replaced, a set oneof member replaces the other members, an `Any` is replaced whole, and
 * a scalar at its proto3 default ("", 0, false) counts as unset and changes nothing. Both documents must be
 * valid bootstraps (see {@link parseBootstrapDocument}); keys keep the spelling they have in `base`.
 */
export function mergeBootstrap(base: JsonObject, override: JsonObject): JsonObject {
  return mergeMessage(loadEnvoyApiSchema().bootstrap, base, override) as JsonObject;
}

function mergeMessage(descriptor: DescMessage, base: unknown, override: unknown): unknown {
  if (override === null || override === undefined) return base;
  if (base === null || base === undefined) return override;
  switch (descriptor.typeName) {
    case 'google.protobuf.Any':
      // type_url and value are both set by any non-empty Any: the payload is replaced, not merged.
      return isPlainObject(override) && Object.keys(override).length === 0 ? base : override;
    case 'google.protobuf.Struct':
      return isPlainObject(base) && isPlainObject(override) ? { ...base, ...override } : override;
    case 'google.protobuf.Value':
      if (isPlainObject(base) && isPlainObject(override)) return { ...base, ...override };
      if (Array.isArray(base) && Array.isArray(override)) return [...base, ...override];
      return override;
    case 'google.protobuf.ListValue':
      return Array.isArray(base) && Array.isArray(override) ? [...base, ...override] : override;
    case 'google.protobuf.FieldMask':
      return typeof base === 'string' && typeof override === 'string' && base !== '' && override !== ''
        ? `${base},${override}`
        : override || base;
    case 'google.protobuf.Duration':
      return mergeDuration(base, override);
    case 'google.protobuf.Empty':
      return base;
  }
  const wrapperKind = wrapperKinds[descriptor.typeName];
  if (wrapperKind !== undefined) {
    // Wrappers: the message is present either way; its single `value` field keeps proto3 default semantics.
    return isZero(wrapperKind, override) ? base : override;
  }
  if (descriptor.typeName === 'google.protobuf.Timestamp') return override;
  if (!isPlainObject(base) || !isPlainObject(override)) return override;

  const merged: Record<string, unknown> = { ...base };
  const keyOf = (field: DescField) =>
    Object.keys(merged).find((key) => key === field.jsonName || key === field.name);
  for (const [key, value] of Object.entries(override)) {
    const field = fieldsByKey(descriptor).get(key);
    if (field === undefined || value === null) continue;
    const existingKey = keyOf(field);
    const targetKey = existingKey ?? key;
    const existing = existingKey === undefined ? undefined : merged[existingKey];
    if (field.oneof !== undefined) {
      for (const member of field.oneof.fields) {
        const memberKey = member === field ? undefined : keyOf(member);
        if (memberKey !== undefined) delete merged[memberKey];
      }
    }
    switch (field.fieldKind) {
      case 'scalar':
      case 'enum':
        if (field.presence === FeatureSet_FieldPresence.IMPLICIT && isDefaultValue(field, value)) continue;
        merged[targetKey] = value;
        break;
      case 'message':
        merged[targetKey] = mergeMessage(field.message, existing, value);
        break;
      case 'list':
        merged[targetKey] = [...(Array.isArray(existing) ? existing : []), ...(value as unknown[])];
        break;
      case 'map':
        merged[targetKey] = { ...(isPlainObject(existing) ? existing : {}), ...(value as object) };
        break;
    }
  }
  return merged;
}

/** proto3's "unset" value of a scalar: the empty string or bytes, false, or a numeric zero. */
function isZero(kind: 'string' | 'bool' | 'number', value: unknown): boolean {
  if (kind === 'string') return value === '';
  if (kind === 'bool') return value === false;
  return (
    (typeof value === 'number' || (typeof value === 'string' && value.trim() !== '')) && Number(value) === 0
  );
}

function isDefaultValue(field: DescField, value: unknown): boolean {
  if (field.fieldKind === 'enum') {
    const zero = field.enum.values.find((candidate) => candidate.number === 0);
    return value === 0 || (zero !== undefined && value === zero.name);
  }
  if (field.fieldKind !== 'scalar') return false;
  return isZero(scalarKind(field.scalar), value);
}

function scalarKind(scalar: ScalarType): 'string' | 'bool' | 'number' {
  if (scalar === ScalarType.STRING || scalar === ScalarType.BYTES) return 'string';
  return scalar === ScalarType.BOOL ? 'bool' : 'number';
}

const wrapperKinds: Record<string, 'string' | 'bool' | 'number'> = {
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'string',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.DoubleValue': 'number',
  'google.protobuf.FloatValue': 'number',
  'google.protobuf.Int64Value': 'number',
  'google.protobuf.UInt64Value': 'number',
  'google.protobuf.Int32Value': 'number',
  'google.protobuf.UInt32Value': 'number',
};

/** Durations are messages of seconds and nanos: each part is merged on its own, a zero part changing nothing. */
function mergeDuration(base: unknown, override: unknown): unknown {
  const parse = (value: unknown) => {
    const match = typeof value === 'string' ? /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(value) : null;
    if (!match) return undefined;
    const sign = match[1] === '-' ? -1 : 1;
    return {
      seconds: sign * Number(match[2]),
      nanos: sign * Number((match[3] ?? '').padEnd(9, '0')),
    };
  };
  const from = parse(base);
  const to = parse(override);
  if (from === undefined || to === undefined) return override;
  const seconds = to.seconds !== 0 ? to.seconds : from.seconds;
  const nanos = to.nanos !== 0 ? to.nanos : from.nanos;
  if (seconds !== 0 && nanos !== 0 && Math.sign(seconds) !== Math.sign(nanos)) return override;
  const negative = seconds < 0 || nanos < 0;
  const absoluteNanos = Math.abs(nanos);
  const fraction =
    absoluteNanos === 0
      ? ''
      : absoluteNanos % 1_000_000 === 0
        ? `.${String(absoluteNanos / 1_000_000).padStart(3, '0')}`
        : absoluteNanos % 1000 === 0
          ? `.${String(absoluteNanos / 1000).padStart(6, '0')}`
          : `.${String(absoluteNanos).padStart(9, '0')}`;
  return `${negative ? '-' : ''}${Math.abs(seconds)}${fraction}s`;
}
