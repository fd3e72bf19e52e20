import path from 'node:path';
import type { CommandModule } from 'yargs';
import { generateBootstrap } from '../../bootstrap/generate.ts';
import { ConfigError } from '../config/errors.ts';
import { loadAgentConfig, readConfigFile } from '../config/load.ts';
import { isPlainObject, parseJsonOrYaml } from '../config/structured-text.ts';
import { ExitCode } from '../exit-codes.ts';
import { readBootstrapSources, serialiseBootstrap } from '../proxy/bootstrap-file.ts';
import type { CommandContext } from './context.ts';
import { proxyFlagsFromArguments, withProxyFlags } from './proxy-flags.ts';

/**
 * `pilot-agent bootstrap`: prints the Envoy bootstrap that `proxy` would start Envoy with (same flags and
 * environment), or with `--check FILE` checks a bootstrap file against Envoy's API and names the first
 * invalid field (exit 0 valid, 255 invalid).
 */
export function bootstrapCommand(
  context: CommandContext,
  setExitCode: (code: number) => void,
): CommandModule {
  return {
    command: 'bootstrap [type]',
    describe: 'Print the Envoy bootstrap the proxy command would generate, or check a bootstrap file',
    builder: (yargs) =>
      withProxyFlags(yargs)
        .option('check', {
          type: 'string',
          describe: "Check this bootstrap file (JSON or YAML) against Envoy's v3 API instead of printing one",
        })
        .option('allow-unknown-static-fields', {
          type: 'boolean',
          default: false,
          describe: "With --check: accept unknown fields, as Envoy's flag of the same name",
        })
        .example(
          '$0 bootstrap sidecar --domain ns.svc.cluster.local',
          'print the bootstrap for this environment',
        )
        .example('$0 bootstrap --check ./etc/istio/proxy/envoy-rev.json', 'check a bootstrap file'),
    handler: async (argv) => {
      const check = argv.check;
      if (typeof check === 'string') {
        setExitCode(await checkBootstrapFile(context, check, argv['allow-unknown-static-fields'] === true));
        return;
      }
      const config = loadAgentConfig(proxyFlagsFromArguments(argv), context.environment);
      const generated = await generateBootstrap(config, readBootstrapSources(config));
      for (const warning of generated.warnings) context.stderr.write(`warning: ${warning}\n`);
      context.stdout.write(serialiseBootstrap(generated.bootstrap));
    },
  };
}

async function checkBootstrapFile(
  context: CommandContext,
  file: string,
  allowUnknownFields: boolean,
): Promise<number> {
  const absolute = path.resolve(context.workingDirectory, file);
  const text = readConfigFile(absolute);
  if (text === undefined) throw new ConfigError(absolute, 'does not exist');
  const document = parseJsonOrYaml(absolute, text);
  if (!isPlainObject(document)) {
    context.stderr.write(`${file}: invalid: expected an Envoy bootstrap object (a JSON/YAML mapping)\n`);
    return ExitCode.startupError;
  }
  const { validateBootstrap } = await import('../../bootstrap/validate.ts');
  const result = validateBootstrap(document, { allowUnknownFields });
  if (result.valid) {
    context.stdout.write(`${file}: valid Envoy v3 bootstrap\n`);
    return ExitCode.ok;
  }
  context.stderr.write(`${file}: invalid at ${result.fieldPath || '(top level)'}: ${result.message}\n`);
  return ExitCode.startupError;
}
