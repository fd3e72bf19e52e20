import type { CommandModule } from 'yargs';
import { ConfigError } from '../config/errors.ts';
import { ExitCode } from '../exit-codes.ts';
import type { CommandContext } from './context.ts';

/** The ports `pilot-agent request` may talk to, as Istio allows them: Envoy's admin API and the agent's own. */
export const allowedRequestPorts: readonly number[] = [15000, 15004, 15020, 15021];

/**
 * Istio's `pilot-agent request <method> <path> [<body>]`: one HTTP request to Envoy's admin API on localhost
 * (or another allowed port); prints the response body and nothing else, because `istioctl proxy-config`
 * reads that output as JSON.
 */
export function requestCommand(context: CommandContext, setExitCode: (code: number) => void): CommandModule {
  return {
    command: 'request <method> <path> [body]',
    describe: 'Makes an HTTP request to the Envoy admin API',
    builder: (yargs) =>
      yargs
        .positional('method', { type: 'string', describe: 'HTTP method, e.g. GET or POST' })
        .positional('path', { type: 'string', describe: 'admin path, e.g. config_dump or /stats?usedonly' })
        .positional('body', { type: 'string', describe: 'request body' })
        .option('debug-port', {
          type: 'number',
          default: 15000,
          describe: 'Set the port to make a local request to. The default points to the Envoy admin API.',
        }),
    handler: async (argv) => {
      const port = Number(argv['debug-port']);
      if (!allowedRequestPorts.includes(port)) {
        throw new ConfigError(
          '--debug-port',
          `debug port ${argv['debug-port']} is not in allowed list [${allowedRequestPorts.join(' ')}]`,
        );
      }
      // Loaded here, so that the other commands do not pay for it at start-up.
      const { EnvoyAdminClient } = await import('../proxy/admin-client.ts');
      const client = new EnvoyAdminClient({ host: 'localhost', port, timeoutMilliseconds: 60_000 });
      try {
        const { status, body } = await client.send(
          String(argv.method).toUpperCase(),
          `/${String(argv.path).replace(/^\//, '')}`,
          argv.body === undefined ? {} : { body: String(argv.body) },
        );
        if (status > 399 && status !== 404) {
          context.stderr.write(`Error: received unsuccessful status code ${status}: ${body}\n`);
          setExitCode(ExitCode.startupError);
          return;
        }
        context.stdout.write(`${body}\n`);
        setExitCode(ExitCode.ok);
      } catch (error) {
        context.stderr.write(`Error: ${error instanceof Error ? error.message : String(error)}\n`);
        setExitCode(ExitCode.startupError);
      } finally {
        client.close();
      }
    },
  };
}
