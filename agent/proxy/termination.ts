import { setTimeout as delay } from 'node:timers/promises';
import type { DrainConfig } from '../config/agent-config.ts';
import type { Logger } from '../log.ts';
import type { EnvoyAdminClient } from './admin-client.ts';

export interface DrainOptions {
  readonly admin: EnvoyAdminClient;
  readonly drain: DrainConfig;
  /** The agent's own static listeners (`0.0.0.0_15021`, `0.0.0.0_15090`), which never count as traffic. */
  readonly ownListenerPorts: readonly number[];
  readonly logger: Logger;
  readonly sleep?: (milliseconds: number) => Promise<void>;
}

/**
 * Istio's termination drain: a graceful drain of the inbound listeners, then either `terminationDrainDuration`
 * or, with `EXIT_ON_ZERO_ACTIVE_CONNECTIONS`, `MINIMUM_DRAIN_DURATION` followed by a poll every second until
 * no downstream connection is active (giving up after five consecutive failed polls). Envoy is stopped by
 * the caller afterwards.
 */
export async function drainForTermination(options: DrainOptions): Promise<void> {
  const { admin, drain, logger } = options;
  const sleep = options.sleep ?? ((milliseconds: number) => delay(milliseconds));
  try {
    await admin.drainListeners({ inboundOnly: true, graceful: true });
    logger.info('Envoy is draining its inbound listeners');
  } catch (error) {
    logger.warn(`could not start Envoy's graceful drain: ${(error as Error).message}`);
  }
  if (!drain.exitOnZeroActiveConnections) {
    logger.info(
      `waiting ${drain.terminationDrainDurationMilliseconds} ms (terminationDrainDuration) for connections to drain`,
    );
    await sleep(drain.terminationDrainDurationMilliseconds);
    return;
  }
  logger.info(
    `waiting ${drain.minimumDrainDurationMilliseconds} ms (MINIMUM_DRAIN_DURATION), then until no connection is active`,
  );
  await sleep(drain.minimumDrainDurationMilliseconds);
  let failures = 0;
  for (;;) {
    try {
      const active = await activeConnections(admin, options.ownListenerPorts);
      failures = 0;
      if (active === 0) {
        logger.info('no active downstream connections left');
        return;
      }
      logger.info(`${active} downstream connections still active`);
    } catch (error) {
      failures++;
      logger.warn(
        `reading Envoy's active connections failed (${failures} in a row): ${(error as Error).message}`,
      );
      if (failures >= 5) return;
    }
    await sleep(1_000);
  }
}

/** The sum of `listener.<address>.downstream_cx_active` over the workload's listeners (Istio's exclusions). */
export async function activeConnections(
  admin: EnvoyAdminClient,
  ownListenerPorts: readonly number[],
): Promise<number> {
  const stats = await admin.stats('downstream_cx_active$');
  let total = 0;
  for (const [name, value] of stats) {
    if (!name.startsWith('listener.') || name.startsWith('listener.admin.')) continue;
    if (name.includes('.worker_') || name.startsWith('listener.envoy_internal_')) continue;
    const address = name.slice('listener.'.length, -'.downstream_cx_active'.length);
    if (ownListenerPorts.some((port) => address.endsWith(`_${port}`))) continue;
    total += value;
  }
  return total;
}
