import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { CommandModule } from 'yargs';
import { ExitCode } from '../exit-codes.ts';
import { applyCapture, CaptureError, dryRunInput, removeCapture } from '../iptables/applier.ts';
import { MissingProgramError, runCommand } from '../iptables/command-runner.ts';
import {
  type CaptureOptions,
  captureFlagDefinitions,
  parseCaptureOptions,
  variableOf,
} from '../iptables/options.ts';
import { createLogging, type Logging } from '../log.ts';
import type { CommandContext } from './context.ts';
import { loggingFromArguments, withLoggingFlags } from './proxy-flags.ts';

/**
 * `pilot-agent istio-iptables`: the init container's traffic capture, with Istio's flags, e.g.
 * `istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021,15020`.
 */
export function istioIptablesCommand(
  context: CommandContext,
  setExitCode: (code: number) => void,
): CommandModule {
  return {
    command: 'istio-iptables',
    describe: "Set up the pod's traffic capture (init container)",
    builder: (yargs) => {
      for (const definition of captureFlagDefinitions) {
        const variables = [variableOf(definition), definition.fallbackVariable].filter(
          (name) => name !== undefined,
        );
        const environment = definition.flagOnly ? '' : ` [${variables.map((name) => `$${name}`).join(', ')}]`;
        yargs.option(definition.name, {
          type: definition.type,
          describe: `${definition.description}${environment}`,
          ...(definition.short === undefined ? {} : { alias: definition.short }),
        });
      }
      return withLoggingFlags(yargs).example(
        `$0 istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021,15020`,
        "the init container's arguments in an injected pod",
      );
    },
    handler: async (argv) => {
      const options = parseCaptureOptions({
        flags: givenFlags(argv),
        environment: context.environment,
        lookupUserId: userIdFromPasswd,
        localAddresses: podAddresses,
      });
      // In a dry run stdout carries the rules alone; log lines go to stderr.
      const logging = createLogging({
        ...loggingFromArguments(argv),
        ...(options.dryRun ? { destination: { write: (line: string) => context.stderr.write(line) } } : {}),
      });
      const log = logging.scope('default');
      for (const flag of context.unknownFlags) log.warn(`unknown flag ${flag} ignored`);
      for (const warning of options.warnings) log.warn(warning);
      try {
        await run(options, context, logging);
      } catch (error) {
        if (error instanceof CaptureError || error instanceof MissingProgramError) {
          context.stderr.write(`Error: ${error.message}\n`);
          setExitCode(ExitCode.startupError);
          return;
        }
        throw error;
      }
    },
  };
}

async function run(options: CaptureOptions, context: CommandContext, logging: Logging): Promise<void> {
  const log = logging.scope('default');
  if (options.dryRun) {
    context.stdout.write(
      options.cleanup ? '# --cleanup: every ISTIO_* chain and jump would be removed\n' : dryRunText(options),
    );
    return;
  }
  if (options.skipRuleApply) {
    log.info('--skip-rule-apply: no rules changed');
    return;
  }
  if (options.cleanup) {
    for (const outcome of await removeCapture(options, runCommand)) {
      const label = familyLabel(outcome.family);
      if (outcome.skipped !== undefined) log.info(`${label} capture not checked: ${outcome.skipped}`);
      else if (outcome.restoreInput === '' && outcome.ipCommands.length === 0)
        log.info(`no ${label} capture to remove`);
      else log.info(`removed the ${label} capture:\n${outcome.restoreInput}${outcome.ipCommands.join('\n')}`);
    }
    return;
  }
  log.info(`Istio iptables configuration: ${describe(options)}`);
  for (const outcome of await applyCapture(options, options.families, runCommand)) {
    const extra = outcome.ipCommands.length === 0 ? '' : `\n${outcome.ipCommands.join('\n')}`;
    log.info(
      `applied the ${familyLabel(outcome.family)} capture with ${outcome.family === 'ipv4' ? 'iptables' : 'ip6tables'}-restore --noflush:\n${outcome.restoreInput}${extra}`,
    );
  }
}

function dryRunText(options: CaptureOptions): string {
  let text = '';
  for (const family of options.families) {
    const { plan, restoreInput } = dryRunInput(options, family);
    text += `# ${family === 'ipv4' ? 'iptables' : 'ip6tables'}-restore --noflush input (${familyLabel(family)})\n`;
    text += restoreInput;
    if (plan.passthroughAddressOnLoopback !== null)
      text += `# ip -6 addr add ${plan.passthroughAddressOnLoopback} dev lo\n`;
    if (plan.routes !== null)
      text += `# ip ${plan.routes.rule.join(' ')}\n# ip ${plan.routes.route.join(' ')}\n`;
  }
  return text;
}

function familyLabel(family: string): string {
  return family === 'ipv4' ? 'IPv4' : 'IPv6';
}

function describe(options: CaptureOptions): string {
  const ports = (list: readonly number[]) => list.join(',');
  const include = options.outboundIpRangesInclude;
  return [
    `ENVOY_PORT=${options.envoyPort}`,
    `INBOUND_CAPTURE_PORT=${options.inboundCapturePort}`,
    `INBOUND_TUNNEL_PORT=${options.inboundTunnelPort}`,
    `PROXY_UID=${options.proxyUids.join(',')}`,
    `PROXY_GID=${options.proxyGids.join(',')}`,
    `INBOUND_INTERCEPTION_MODE=${options.interceptionMode}`,
    `INBOUND_PORTS_INCLUDE=${options.inboundPorts.kind === 'all' ? '*' : ports(options.inboundPorts.ports)}`,
    `INBOUND_PORTS_EXCLUDE=${ports(options.inboundPortsExclude)}`,
    `OUTBOUND_IP_RANGES_INCLUDE=${include.kind === 'all' ? '*' : include.ranges.map((range) => range.text).join(',')}`,
    `OUTBOUND_IP_RANGES_EXCLUDE=${options.outboundIpRangesExclude.map((range) => range.text).join(',')}`,
    `OUTBOUND_PORTS_INCLUDE=${ports(options.outboundPortsInclude)}`,
    `OUTBOUND_PORTS_EXCLUDE=${ports(options.outboundPortsExclude)}`,
    `KUBE_VIRT_INTERFACES=${options.kubeVirtInterfaces.join(',')}`,
    `EXCLUDE_INTERFACES=${options.excludeInterfaces.join(',')}`,
    `IP_FAMILIES=${options.families.join(',')}`,
  ].join(' ');
}

/** Flags given on the command line, by long name; a repeated flag counts with its last value (as pflag). */
function givenFlags(argv: Record<string, unknown>): Record<string, string | boolean | undefined> {
  const flags: Record<string, string | boolean | undefined> = {};
  for (const definition of captureFlagDefinitions) {
    let value = argv[definition.name];
    if (Array.isArray(value)) value = value.at(-1);
    if (typeof value === 'string' || typeof value === 'boolean') flags[definition.name] = value;
  }
  return flags;
}

/** The UID of a user from /etc/passwd (Istio's `user.Lookup(ENVOY_USER)`), if the user exists. */
function userIdFromPasswd(userName: string): string | undefined {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of passwd.split('\n')) {
    const [name, , uid] = line.split(':');
    if (name === userName && uid !== undefined && /^\d+$/.test(uid)) return uid;
  }
  return undefined;
}

/** The pod's addresses as Istio looks at them: neither loopback nor link-local. */
function podAddresses(): string[] {
  const addresses: string[] = [];
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.internal || /^fe[89ab]/i.test(entry.address) || entry.address.startsWith('169.254.'))
        continue;
      addresses.push(entry.address);
    }
  }
  return addresses;
}
