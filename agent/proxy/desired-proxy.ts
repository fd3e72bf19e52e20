import { buildEnvoyArgs } from '../../bootstrap/envoy-args.ts';
import { generateBootstrap } from '../../bootstrap/generate.ts';
import type { AgentConfig } from '../config/agent-config.ts';
import { readBootstrapSources, serialiseBootstrap } from './bootstrap-file.ts';
import type { DesiredProxy, EpochLaunch } from './supervisor.ts';

export interface DesiredProxyResult {
  readonly desired: DesiredProxy;
  /** Problems Istio logs and ignores (an unsupported tracer, …). */
  readonly warnings: readonly string[];
}

/** Annotations whose change is applied to the running Envoy, so they take no part in the decision to restart. */
const liveAnnotations = ['sidecar.istio.io/logLevel', 'sidecar.istio.io/componentLogLevel'];

function withoutLiveAnnotations(bootstrap: object): object {
  const copy = structuredClone(bootstrap) as {
    node?: { metadata?: { ANNOTATIONS?: Record<string, unknown> } };
  };
  const annotations = copy.node?.metadata?.ANNOTATIONS;
  if (annotations) {
    for (const name of liveAnnotations) delete annotations[name];
    // No annotations left reads the same as none at all.
    if (Object.keys(annotations).length === 0) delete copy.node?.metadata?.ANNOTATIONS;
  }
  return copy;
}

/** Log levels are applied live, so they take no part in the decision to restart. */
const neutralLogLevels = Object.freeze({
  level: 'info',
  componentLevels: Object.freeze({}),
}) as AgentConfig['proxyLogLevels'];

/**
 * What Envoy should run for one configuration: the bootstrap (generated, or the custom file, with the
 * override merged in and checked) and its command line per epoch. Reads the override and custom files;
 * throws a ConfigError naming the file or field at fault.
 */
export async function buildDesiredProxy(config: AgentConfig): Promise<DesiredProxyResult> {
  const generated = await generateBootstrap(config, readBootstrapSources(config));
  const bootstrap = serialiseBootstrap(generated.bootstrap);
  const argsFor = (launch: EpochLaunch) => {
    const args = buildEnvoyArgs(config, {
      configFile: config.paths.bootstrapFile,
      epoch: launch.epoch,
      ...(launch.baseId !== undefined ? { baseId: launch.baseId } : {}),
    });
    // No parent to hand over from: start serving instead of waiting for one (Envoy ≥ 1.30).
    return launch.coldStart ? [...args, '--skip-hot-restart-on-no-parent'] : args;
  };
  const comparableArgs = config.hotRestartEnabled
    ? buildEnvoyArgs(
        { ...config, proxyLogLevels: neutralLogLevels },
        { configFile: config.paths.bootstrapFile, epoch: 1, baseId: 0 },
      )
    : buildEnvoyArgs(
        { ...config, proxyLogLevels: neutralLogLevels },
        { configFile: config.paths.bootstrapFile, epoch: 0 },
      );
  return {
    desired: {
      bootstrap,
      restartKey: `${comparableArgs.join('\u0000')}\n${serialiseBootstrap(withoutLiveAnnotations(generated.bootstrap))}`,
      logLevels: config.proxyLogLevels,
      argsFor,
    },
    warnings: generated.warnings,
  };
}
