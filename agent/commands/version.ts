import type { CommandModule } from 'yargs';
import { buildInfo } from '../version.ts';
import type { CommandContext } from './context.ts';

export function versionCommand(context: CommandContext): CommandModule {
  return {
    command: 'version',
    describe: 'Print the version of this agent and of the Istio agent it is compatible with',
    builder: (yargs) =>
      yargs
        .option('short', { alias: 's', type: 'boolean', default: false, describe: 'Print only the version' })
        .option('output', { alias: 'o', choices: ['', 'json'], default: '', describe: 'Output format' }),
    handler: (argv) => {
      const info = buildInfo();
      if (argv.output === 'json') context.stdout.write(`${JSON.stringify(info)}\n`);
      else if (argv.short) context.stdout.write(`${info.version}\n`);
      else
        context.stdout.write(
          `pilot-agent-ts ${info.version} (compatible with Istio ${info.istioVersion}; Node.js ${info.nodeVersion})\n`,
        );
    },
  };
}
