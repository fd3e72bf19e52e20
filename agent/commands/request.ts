import type { CommandModule } from 'yargs';

// Filled in by its own issue; until then the command says so instead of pretending.
export function requestCommand(): CommandModule {
  return {
    command: 'request',
    describe: "Send an HTTP request to Envoy's admin API",
    handler: () => {
      throw new Error('pilot-agent request is not implemented yet');
    },
  };
}
