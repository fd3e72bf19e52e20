import type { CommandModule } from 'yargs';

// Filled in by its own issue; until then the command says so instead of pretending.
export function bootstrapCommand(): CommandModule {
  return {
    command: 'bootstrap',
    describe: 'Print the Envoy bootstrap the proxy command would generate, without starting anything',
    handler: () => {
      throw new Error('pilot-agent bootstrap is not implemented yet');
    },
  };
}
