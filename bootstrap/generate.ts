import type { AgentConfig } from '../agent/config/agent-config.ts';
import { ConfigError } from '../agent/config/errors.ts';
import { buildBootstrap } from './build.ts';
import type { JsonObject } from './envoy-types.ts';
import type { BootstrapDocument } from './override.ts';

/** The files that change the bootstrap, read by the caller (this module does no I/O). */
export interface BootstrapSources {
  /** `ProxyConfig.customConfigFile`: used instead of the generated bootstrap. */
  readonly customConfig?: BootstrapDocument;
  /** `ISTIO_BOOTSTRAP_OVERRIDE`: merged into the bootstrap with Envoy's `--config-yaml` semantics. */
  readonly override?: BootstrapDocument;
}

export interface GeneratedBootstrap {
  /** What Envoy is started with (`envoy-rev.json`). */
  readonly bootstrap: JsonObject;
  readonly origin: 'generated' | 'custom';
  readonly overridden: boolean;
  /** Problems Istio would log and then ignore. */
  readonly warnings: readonly string[];
}

/**
 * The bootstrap the agent hands to Envoy: Istio's generated bootstrap (or the custom config file), with the
 * override merged in; a custom or overridden bootstrap is checked strictly against Envoy's API. Throws a
 * {@link ConfigError} naming the file and field at fault.
 */
export async function generateBootstrap(
  config: AgentConfig,
  sources: BootstrapSources = {},
): Promise<GeneratedBootstrap> {
  if (config.paths.templateFile !== undefined) {
    throw new ConfigError(
      config.paths.templateFile,
      'Go-template bootstrap files (--templateFile, ISTIO_BOOTSTRAP, proxyBootstrapTemplatePath) are not supported; use ISTIO_BOOTSTRAP_OVERRIDE or ProxyConfig.customConfigFile',
    );
  }
  const warnings: string[] = [];
  // The generated bootstrap is proven valid by the test suite for every option; only what a user wrote
  // (a custom config, an override) is checked here.
  const userInput = sources.override ?? sources.customConfig;
  if (userInput === undefined) {
    const bootstrap = buildBootstrap(config, {
      onWarning: (message) => warnings.push(message),
    }) as unknown as JsonObject;
    return { bootstrap, origin: 'generated', overridden: false, warnings };
  }
  // Loaded only for what a user wrote: Envoy's schema and its libraries cost tens of MiB of resident memory
  // that an agent without a custom or override bootstrap never needs.
  const [{ mergeBootstrap, parseBootstrapDocument }, { validateBootstrap }] = await Promise.all([
    import('./override.ts'),
    import('./validate.ts'),
  ]);
  let bootstrap: JsonObject =
    sources.customConfig !== undefined
      ? parseBootstrapDocument(sources.customConfig)
      : (buildBootstrap(config, { onWarning: (message) => warnings.push(message) }) as unknown as JsonObject);
  if (sources.override !== undefined) {
    const override = parseBootstrapDocument(sources.override, { HOST_IP: config.pod.hostIp ?? '' });
    bootstrap = mergeBootstrap(bootstrap, override);
  }
  const result = validateBootstrap(bootstrap);
  if (!result.valid) {
    throw new ConfigError(
      userInput.file,
      `${sources.override ? 'the bootstrap with this override merged in' : 'this custom bootstrap'} is invalid at ${result.fieldPath}: ${result.message}`,
    );
  }
  return {
    bootstrap,
    origin: sources.customConfig !== undefined ? 'custom' : 'generated',
    overridden: sources.override !== undefined,
    warnings,
  };
}
