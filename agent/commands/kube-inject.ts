import type { CommandModule } from 'yargs';

// Filled in by its own issue; until then the command says so instead of pretending.
export function kubeInjectCommand(): CommandModule {
  return {
    command: 'kube-inject',
    describe: 'Add the sidecar to Kubernetes workload manifests',
    handler: () => {
      throw new Error('pilot-agent kube-inject is not implemented yet');
    },
  };
}
