import type { CommandModule } from 'yargs';

// Filled in by its own issue; until then the command says so instead of pretending.
export function istioIptablesCommand(): CommandModule {
  return {
    command: 'istio-iptables',
    describe: "Set up the pod's traffic capture (init container)",
    handler: () => {
      throw new Error('pilot-agent istio-iptables is not implemented yet');
    },
  };
}
