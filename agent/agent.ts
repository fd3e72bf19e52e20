import { Registry } from 'prom-client';
import type { AgentConfig } from './config/agent-config.ts';
import { ExitCode } from './exit-codes.ts';
import { WorkloadIdentity } from './identity/workload-identity.ts';
import type { Logging } from './log.ts';

/**
 * The composition root: builds the agent's parts from one configuration, wires their events and owns the
 * lifecycle (start: identity → bootstrap → proxy → status; stop in reverse). Resolves with the exit code.
 */
export async function runAgent(config: AgentConfig, logging: Logging): Promise<number> {
  const log = logging.scope('default');
  log.info(
    `starting pilot-agent ${config.nodeType} for ${config.pod.name}.${config.pod.namespace} (identity ${config.security.spiffeId})`,
  );
  // The agent's own metrics; the status server will serve them merged with Envoy's.
  const registry = new Registry();
  // Signal listeners alone do not keep Node's event loop alive.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });

  let identity: WorkloadIdentity | undefined;
  if (config.security.pilotCertProvider === 'none') {
    log.info('PILOT_CERT_PROVIDER=none: no workload certificate is requested and no SDS server runs');
  } else {
    identity = new WorkloadIdentity({ config, logging, registry });
    identity.on('first-certificate', (certificate) =>
      log.info(
        `first certificate held for ${certificate.spiffeIds.join(', ')} (serial ${certificate.serialNumber}, expires ${certificate.notAfter.toISOString()}, from ${certificate.source === 'ca' ? 'istiod' : 'files'})`,
      ),
    );
    try {
      await identity.start();
    } catch (error) {
      log.error(`workload identity failed to start: ${(error as Error).message}`);
      await identity.stop();
      clearInterval(keepAlive);
      return ExitCode.startupError;
    }
  }

  const signal = await stopSignal;
  log.info(`received ${signal}, shutting down`);
  await identity?.stop();
  clearInterval(keepAlive);
  return ExitCode.ok;
}
