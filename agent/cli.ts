import yargs from 'yargs';
import { bootstrapCommand } from './commands/bootstrap.ts';
import type { CommandContext } from './commands/context.ts';
import { istioIptablesCommand } from './commands/istio-iptables.ts';
import { kubeInjectCommand } from './commands/kube-inject.ts';
import { proxyCommand } from './commands/proxy.ts';
import { requestCommand } from './commands/request.ts';
import { versionCommand } from './commands/version.ts';
import { waitCommand } from './commands/wait.ts';
import { ConfigError } from './config/errors.ts';
import { ExitCode } from './exit-codes.ts';
import { createLogging } from './log.ts';

export interface CliEnvironment {
  readonly environment: NodeJS.ProcessEnv;
  readonly workingDirectory: string;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Read by commands that take input from `-` (kube-inject -f -). */
  readonly stdin?: NodeJS.ReadableStream;
}

/**
 * Runs `pilot-agent` with the given arguments and returns the process exit code: 255 for configuration
 * and start-up errors (as Istio's agent), the command's own code otherwise.
 */
export async function runCli(argv: readonly string[], io: CliEnvironment): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const context: CommandContext = {
    ...io,
    unknownFlags: [],
    createLogging: (options) => createLogging(options),
  };
  const parser = yargs([...argv])
    .scriptName('pilot-agent')
    .usage('$0 <command> [flags]\n\nIstio sidecar agent, re-implemented in TypeScript.')
    .parserConfiguration({ 'duplicate-arguments-array': true, 'strip-aliased': true })
    .strict(false)
    .exitProcess(false)
    .showHelpOnFail(false)
    .help()
    .version(false)
    .wrap(Math.min(120, process.stdout.columns ?? 120))
    .middleware(() => {
      // yargs knows the selected command's options only once its builder ran, i.e. here.
      const options = (parser as unknown as { getOptions(): ParserOptions }).getOptions();
      (context.unknownFlags as string[]).push(...findUnknownFlags(argv, options));
    })
    .command(proxyCommand(context, (code) => (exitCode = code)))
    .command(bootstrapCommand(context, (code) => (exitCode = code)))
    .command(waitCommand(context, (code) => (exitCode = code)))
    .command(requestCommand(context, (code) => (exitCode = code)))
    .command(istioIptablesCommand(context, (code) => (exitCode = code)))
    .command(kubeInjectCommand(context))
    .command(versionCommand(context))
    .demandCommand(1, 'a command is required (see --help)')
    .recommendCommands()
    .fail((message, error) => {
      throw error ?? new UsageError(message);
    });
  try {
    await parser.parseAsync();
    return exitCode;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) {
      io.stderr.write(`Error: ${error.message}\n`);
      return ExitCode.startupError;
    }
    io.stderr.write(`Error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return ExitCode.startupError;
  }
}

class UsageError extends Error {}

interface ParserOptions {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
}

/** Flags present on the command line that the parser does not know, in the order given. */
function findUnknownFlags(argv: readonly string[], options: ParserOptions): string[] {
  const known = new Set<string>(['help', 'version']);
  for (const key of Object.keys(options.key)) known.add(key);
  for (const [key, aliases] of Object.entries(options.alias)) {
    known.add(key);
    for (const alias of aliases) known.add(alias);
  }
  const unknown: string[] = [];
  for (const argument of argv) {
    if (argument === '--') break;
    const match = /^--?([^=]+)/.exec(argument);
    if (!match || /^-\d/.test(argument)) continue;
    const name = (match[1] as string).replace(/^no-/, '');
    const camel = name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
    if (!known.has(name) && !known.has(camel)) unknown.push(`--${name}`);
  }
  return unknown;
}
