import { isIPv6 } from 'node:net';
import path from 'node:path';
import type { AgentConfig } from '../agent/config/agent-config.ts';
import { parseDurationMilliseconds } from '../agent/config/duration.ts';
import { ConfigError } from '../agent/config/errors.ts';

/** Per-epoch inputs of Envoy's command line, chosen by the proxy supervisor. */
export interface EnvoyLaunch {
  /** The bootstrap file (`-c`). */
  readonly configFile: string;
  /** Hot-restart epoch: 0 for the first Envoy, then one more for each hot restart. */
  readonly epoch: number;
  /**
   * The shared-memory base id that epoch 0 chose (read from {@link baseIdFile}); required for epochs > 0,
   * which must join the same hot-restart domain.
   */
  readonly baseId?: number;
}

/** Where epoch 0 records its dynamically chosen base id (`--base-id-path`). */
export function baseIdFile(config: AgentConfig): string {
  return path.join(config.paths.configDirectory, 'envoy-base-id');
}

/** Reads the base id Envoy wrote with `--base-id-path` (a decimal number, possibly with a newline). */
export function parseBaseId(file: string, text: string): number {
  const trimmed = text.trim();
  const baseId = /^\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(baseId)) {
    throw new ConfigError(
      file,
      `${JSON.stringify(trimmed)} is not a base id (expected a non-negative integer)`,
    );
  }
  return baseId;
}

const defaultFileFlushIntervalMilliseconds = 1000;

/**
 * Envoy's argv for one epoch: Istio's flags (`pkg/envoy/proxy.go`) plus the hot-restart flags of Istio's
 * epoch-based agents. With hot restart off (`DISABLE_HOT_RESTART`), Envoy gets `--disable-hot-restart`
 * and no epoch or base id, which also keeps it away from `/dev/shm`.
 */
export function buildEnvoyArgs(config: AgentConfig, launch: EnvoyLaunch): string[] {
  if (!Number.isSafeInteger(launch.epoch) || launch.epoch < 0) {
    throw new RangeError(`restart epoch ${launch.epoch} is not a non-negative integer`);
  }
  const args = ['-c', launch.configFile];
  if (config.hotRestartEnabled) {
    args.push('--restart-epoch', String(launch.epoch));
    if (launch.epoch === 0) {
      // Epoch 0 lets Envoy pick a free shared-memory id so that several Envoys on one host never collide.
      args.push('--use-dynamic-base-id', '--base-id-path', baseIdFile(config));
    } else {
      if (launch.baseId === undefined) {
        throw new RangeError(`restart epoch ${launch.epoch} needs the base id chosen by epoch 0`);
      }
      args.push('--base-id', String(launch.baseId));
    }
  } else {
    if (launch.epoch !== 0) throw new RangeError(`restart epoch ${launch.epoch} with hot restart disabled`);
    args.push('--disable-hot-restart');
  }
  args.push(
    '--drain-time-s',
    String(Math.floor(config.drain.drainDurationMilliseconds / 1000)),
    '--drain-strategy',
    'immediate',
    '--parent-shutdown-time-s',
    String(Math.floor(config.drain.parentShutdownDurationMilliseconds / 1000)),
    '--local-address-ip-version',
    isIPv6(config.pod.instanceIps[0] ?? '') ? 'v6' : 'v4',
    '--file-flush-interval-msec',
    String(fileFlushIntervalMilliseconds(config)),
    '-l',
    config.proxyLogLevels.level,
  );
  const componentLevels = Object.entries(config.proxyLogLevels.componentLevels);
  if (componentLevels.length > 0) {
    args.push(
      '--component-log-level',
      componentLevels.map(([component, level]) => `${component}:${level}`).join(','),
    );
  }
  if (config.concurrency > 0) args.push('--concurrency', String(config.concurrency));
  return args;
}

function fileFlushIntervalMilliseconds(config: AgentConfig): number {
  const configured = config.proxyConfig.fileFlushInterval;
  if (configured === undefined) return defaultFileFlushIntervalMilliseconds;
  const milliseconds = parseDurationMilliseconds(configured);
  return milliseconds === undefined || milliseconds <= 0
    ? defaultFileFlushIntervalMilliseconds
    : Math.round(milliseconds);
}
