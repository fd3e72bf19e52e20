import { type BootstrapJson, ConfigurationError } from './bootstrap-load.ts';
import { type InterpretOptions, interpretBootstrap, type StandinBootstrap } from './bootstrap-model.ts';

/** Top-level fields of envoy.config.bootstrap.v3.Bootstrap (the version the stand-in imitates). */
const bootstrapFields = new Set([
  'node',
  'node_context_params',
  'static_resources',
  'dynamic_resources',
  'cluster_manager',
  'hds_config',
  'flags_path',
  'stats_sinks',
  'deferred_stat_options',
  'stats_config',
  'stats_flush_interval',
  'stats_flush_on_admin',
  'watchdog',
  'watchdogs',
  'tracing',
  'layered_runtime',
  'admin',
  'overload_manager',
  'enable_dispatcher_stats',
  'header_prefix',
  'stats_server_version_override',
  'use_tcp_for_dns_lookups',
  'dns_resolution_config',
  'typed_dns_resolver_config',
  'bootstrap_extensions',
  'fatal_actions',
  'config_sources',
  'default_config_source',
  'default_socket_interface',
  'certificate_provider_instances',
  'inline_headers',
  'perf_tracing_file_path',
  'default_regex_engine',
  'xds_delegate_extension',
  'xds_config_tracker_extension',
  'listener_manager',
  'application_log_config',
  'grpc_async_client_manager_config',
  'memory_allocator_manager',
]);
const adminFields = new Set([
  'access_log',
  'access_log_path',
  'profile_path',
  'address',
  'socket_options',
  'ignore_global_conn_limit',
  'allow_paths',
]);

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

function unknownFieldMessage(type: string, field: string): string {
  return `Protobuf message (type ${type} reason INVALID_ARGUMENT:${field}: Cannot find field.) has unknown fields`;
}

/**
 * The stand-in's bootstrap check: everything Envoy would refuse at start-up that the stand-in knows about.
 *
 * THIS IS THE ONE PLACE where the strict validator plugs in: once `bootstrap/validate.ts` is merged, call
 * `validateBootstrap(bootstrap, { allowUnknownFields: options.allowUnknownStaticFields })` first and return
 * its `{ valid: false, fieldPath, message }` unchanged. Until then, the structural checks below stand in for
 * it: unknown top-level and admin fields, then the shapes the stand-in acts on (admin address, listeners,
 * routes to known clusters, static clusters, the ADS cluster).
 */
export function checkBootstrap(
  bootstrap: BootstrapJson,
  options: BootstrapCheckOptions,
): BootstrapCheckResult {
  const unknownFields: string[] = [];
  for (const field of Object.keys(bootstrap)) {
    if (!bootstrapFields.has(field)) unknownFields.push(field);
  }
  const admin = bootstrap.admin;
  if (typeof admin === 'object' && admin !== null && !Array.isArray(admin)) {
    for (const field of Object.keys(admin)) if (!adminFields.has(field)) unknownFields.push(`admin.${field}`);
  }
  const [firstUnknown] = unknownFields;
  if (firstUnknown !== undefined && !options.allowUnknownStaticFields) {
    const nested = firstUnknown.startsWith('admin.');
    return {
      valid: false,
      fieldPath: firstUnknown,
      message: unknownFieldMessage(
        nested ? 'envoy.config.bootstrap.v3.Admin' : 'envoy.config.bootstrap.v3.Bootstrap',
        nested ? firstUnknown.slice('admin.'.length) : firstUnknown,
      ),
    };
  }
  try {
    return { valid: true, bootstrap: interpretBootstrap(bootstrap, options), unknownFields };
  } catch (error) {
    if (error instanceof ConfigurationError) return { valid: false, message: error.message };
    throw error;
  }
}
