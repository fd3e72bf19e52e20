import type { CommandModule } from 'yargs';
import { loadAgentConfig } from '../config/load.ts';
import { listenForShutdownSignals } from '../shutdown-signals.ts';
import type { CommandContext } from './context.ts';
import { proxyFlagsFromArguments, withProxyFlags } from './proxy-flags.ts';

export function proxyCommand(context: CommandContext, setExitCode: (code: number) => void): CommandModule {
  return {
    command: 'proxy [type]',
    describe: 'Run the sidecar agent: workload certificates, Envoy bootstrap and supervision, status server',
    builder: (yargs) =>
      withProxyFlags(yargs).example(
        '$0 proxy sidecar --domain $(POD_NAMESPACE).svc.cluster.local --proxyLogLevel=warning --proxyComponentLogLevel=misc:error',
        'the container args of an injected pod (Kubernetes expands $(VAR))',
      ),
    handler: async (argv) => {
      // Listening first: a SIGTERM during start-up begins an orderly shutdown instead of killing the agent.
      const shutdownSignals = listenForShutdownSignals();
      const flags = proxyFlagsFromArguments(argv);
      const config = loadAgentConfig(flags, context.environment);
      const logging = context.createLogging({ levels: config.agentLogLevels, asJson: config.logAsJson });
      const log = logging.scope('default');
      for (const flag of context.unknownFlags)
        log.warn(`unknown flag ${flag} ignored (accepted for compatibility with Istio's pilot-agent)`);
      for (const field of config.unknownProxyConfigFields)
        log.warn(`unknown ProxyConfig field ${field} ignored`);
      // The runtime is loaded only by this command, not by `wait`, `istio-iptables` and the others.
      const { runAgent } = await import('../agent.ts');
      setExitCode(
        await runAgent(config, logging, {
          loadConfig: () => loadAgentConfig(flags, context.environment),
          shutdownSignals,
        }),
      );
    },
  };
}
