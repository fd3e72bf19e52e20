import yargs from 'yargs';

/** The ports the demo binds, each free-picked unless given. */
export interface DemoPorts {
  /** Envoy's admin (ProxyConfig `proxyAdminPort`, Istio's 15000). */
  readonly proxyAdmin?: number;
  /** The agent's status server (ProxyConfig `statusPort`, Istio's 15020). */
  readonly status?: number;
  /** Envoy's readiness listener (`ENVOY_STATUS_PORT`, Istio's 15021). */
  readonly envoyStatus?: number;
  /** Envoy's Prometheus listener (`ENVOY_PROMETHEUS_PORT`, Istio's 15090). */
  readonly envoyPrometheus?: number;
  /** The test istiod (CA + ADS over TLS, Istio's 15012). */
  readonly istiod?: number;
  /** The sample application. */
  readonly app?: number;
}

export interface DemoOptions {
  readonly ports: DemoPorts;
  /** Keep the temporary root after exit. */
  readonly keep: boolean;
}

export type DemoCommandLine =
  | { readonly kind: 'run'; readonly options: DemoOptions }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'error'; readonly message: string; readonly help: string };

const portFlags = {
  'admin-port': { key: 'proxyAdmin', describe: "Envoy's admin port (Istio: 15000)" },
  'status-port': {
    key: 'status',
    describe: "the agent's status port: readiness, merged metrics (Istio: 15020)",
  },
  'envoy-status-port': { key: 'envoyStatus', describe: "Envoy's readiness listener (Istio: 15021)" },
  'envoy-prometheus-port': { key: 'envoyPrometheus', describe: "Envoy's Prometheus listener (Istio: 15090)" },
  'istiod-port': { key: 'istiod', describe: 'the test istiod, CA and ADS over TLS (Istio: 15012)' },
  'app-port': { key: 'app', describe: 'the sample application' },
} as const satisfies Record<string, { key: keyof DemoPorts; describe: string }>;

type PortFlag = keyof typeof portFlags;

function parser(argv: readonly string[]) {
  let parsing = yargs([...argv])
    .scriptName('npm run demo --')
    .usage(
      [
        'Runs the agent end to end in a temporary pod root: a test istiod (CA + ADS), a sample application,',
        'and `pilot-agent proxy sidecar` with the Envoy stand-in, then prints where to look and waits.',
        'Ctrl-C stops everything and removes the root. Ports are free-picked unless given.',
        '',
        'Example: npm run demo -- --status-port 15020 --envoy-status-port 15021',
      ].join('\n'),
    )
    .option('keep', { type: 'boolean', default: false, describe: 'keep the temporary root after exit' })
    .strict()
    .help(false)
    .version(false)
    .option('help', { alias: 'h', type: 'boolean', describe: 'show this help' })
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new Error(message);
    })
    .wrap(110);
  for (const [flag, { describe }] of Object.entries(portFlags))
    parsing = parsing.option(flag, { type: 'string', describe, requiresArg: true });
  return parsing.epilogue('Exit codes: 0 after Ctrl-C/SIGTERM, 1 when a part failed, 2 for bad flags.');
}

/** Parses and validates the demo's flags (never exits the process). */
export async function parseDemoCommandLine(argv: readonly string[]): Promise<DemoCommandLine> {
  const help = await parser([]).getHelp();
  let values: Record<string, unknown>;
  try {
    values = (await parser(argv).parseAsync()) as Record<string, unknown>;
  } catch (error) {
    return { kind: 'error', message: (error as Error).message, help };
  }
  if (values.help === true) return { kind: 'help', text: help };
  const ports: Record<string, number> = {};
  const flagOfPort = new Map<number, string>();
  for (const [flag, { key }] of Object.entries(portFlags) as [PortFlag, (typeof portFlags)[PortFlag]][]) {
    const raw = values[flag];
    if (raw === undefined) continue;
    const text = String(raw);
    const port = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      return { kind: 'error', message: `--${flag}: ${JSON.stringify(text)} is not a port (1-65535)`, help };
    const other = flagOfPort.get(port);
    if (other !== undefined)
      return { kind: 'error', message: `--${flag}: port ${port} is already given to --${other}`, help };
    flagOfPort.set(port, flag);
    ports[key] = port;
  }
  return { kind: 'run', options: { ports: ports as DemoPorts, keep: values.keep === true } };
}

/** The flag that sets a port, for error messages. */
export function portFlagOf(key: keyof DemoPorts): string {
  const entry = Object.entries(portFlags).find(([, value]) => value.key === key);
  return `--${entry?.[0] ?? key}`;
}
