import type { CommandModule } from 'yargs';

// Filled in by its own issue; until then the command says so instead of pretending.
export function waitCommand(): CommandModule {
  return {
    command: 'wait',
    describe: 'Wait until the proxy is ready (for a postStart hook)',
    handler: () => {
      throw new Error('pilot-agent wait is not implemented yet');
    },
  };
}
