import { validateBootstrap } from '../../bootstrap/validate.ts';
import { type BootstrapJson, ConfigurationError } from './bootstrap-load.ts';
import { type InterpretOptions, interpretBootstrap, type StandinBootstrap } from './bootstrap-model.ts';

export interface BootstrapCheckOptions extends InterpretOptions {
  /** `--allow-unknown-static-fields`: unknown fields are counted and logged instead of fatal. */
  readonly allowUnknownStaticFields: boolean;
}

export type BootstrapCheckResult =
  | {
      readonly valid: true;
      readonly bootstrap: StandinBootstrap;
      /** Unknown fields tolerated under --allow-unknown-static-fields (server.static_unknown_fields). */
      readonly unknownFields: readonly string[];
    }
  | { readonly valid: false; readonly fieldPath?: string; readonly message: string };

/**
 * The stand-in's bootstrap check, as strict as Envoy's start-up: first the project's validator against
 * Envoy's own v3 API protos (unknown fields at any depth, unknown `@type` URLs, bad enums and values; unknown
 * fields only counted under `--allow-unknown-static-fields`), then the shapes the stand-in acts on (admin
 * address, listeners, routes to known clusters, static clusters, the ADS cluster).
 */
export function checkBootstrap(
  bootstrap: BootstrapJson,
  options: BootstrapCheckOptions,
): BootstrapCheckResult {
  const validation = validateBootstrap(bootstrap, { allowUnknownFields: options.allowUnknownStaticFields });
  if (!validation.valid) {
    return {
      valid: false,
      fieldPath: validation.fieldPath,
      message: envoyMessage(validation.fieldPath, validation.message),
    };
  }
  const unknownFields = validation.ignoredFields;
  try {
    return { valid: true, bootstrap: interpretBootstrap(bootstrap, options), unknownFields };
  } catch (error) {
    if (error instanceof ConfigurationError) return { valid: false, message: error.message };
    throw error;
  }
}

/** Envoy's wording for a bootstrap its protobuf parser refused (MessageUtil's "has unknown fields" for unknown keys). */
function envoyMessage(fieldPath: string, problem: string): string {
  const unknown = /^unknown field "([^"]+)" in (\S+)$/.exec(problem);
  if (unknown) {
    return `Protobuf message (type ${unknown[2]} reason INVALID_ARGUMENT:${unknown[1]}: Cannot find field.) has unknown fields`;
  }
  return `Unable to parse JSON as proto (INVALID_ARGUMENT:${fieldPath}: ${problem})`;
}
