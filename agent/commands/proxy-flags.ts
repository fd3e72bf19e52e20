import type { Argv } from 'yargs';
import { defaultProxyFlags, type NodeType, type ProxyFlags } from '../config/agent-config.ts';
import { ConfigError } from '../config/errors.ts';
import { type AgentLogLevel, parseAgentOutputLevels } from '../config/log-levels.ts';

/**
 * The flags of Istio's `pilot-agent proxy` (shared by `bootstrap`, which takes the same inputs). Values stay
 * strings where Istio's are numbers so that a bad one is reported by the configuration loader with its name.
 */
export function withProxyFlags<T>(yargs: Argv<T>) {
  return withLoggingFlags(yargs)
    .positional('type', {
      describe: 'Node type',
      type: 'string',
      default: defaultProxyFlags.nodeType,
    })
    .option('domain', {
      type: 'string',
      default: '',
      describe: 'DNS domain suffix (default <POD_NAMESPACE>.svc.cluster.local)',
    })
    .option('serviceCluster', {
      type: 'string',
      default: '',
      describe: 'Service cluster (deprecated; default ProxyConfig.serviceCluster)',
    })
    .option('proxyLogLevel', {
      type: 'string',
      default: defaultProxyFlags.proxyLogLevel,
      describe:
        "Envoy's log level (trace, debug, info, warning, error, critical, off); entries with ':' are component levels",
    })
    .option('proxyComponentLogLevel', {
      type: 'string',
      default: '',
      describe: 'Envoy component log levels, e.g. misc:error,upstream:debug',
    })
    .option('concurrency', {
      type: 'string',
      default: defaultProxyFlags.concurrency,
      describe: 'Envoy worker threads; overrides ProxyConfig.concurrency when non-zero',
    })
    .option('meshConfig', {
      type: 'string',
      default: defaultProxyFlags.meshConfig,
      describe: 'Mesh config file (its defaultConfig is a ProxyConfig layer)',
    })
    .option('templateFile', {
      type: 'string',
      default: '',
      describe: 'Go template bootstrap file (not supported: use ISTIO_BOOTSTRAP_OVERRIDE)',
    })
    .option('outlierLogPath', { type: 'string', default: '', describe: 'Outlier detection log path' })
    .option('stsPort', {
      type: 'string',
      default: defaultProxyFlags.stsPort,
      describe: 'STS server port (0: off)',
    })
    .option('tokenManagerPlugin', {
      type: 'string',
      default: '',
      describe: 'Token provider plugin (accepted for compatibility)',
    })
    .option('profiling', { type: 'boolean', describe: 'Accepted for compatibility' });
}

/** Turns parsed arguments into {@link ProxyFlags}; the node type is checked here. */
export function proxyFlagsFromArguments(argv: Record<string, unknown>): ProxyFlags {
  const nodeType = String(argv.type ?? defaultProxyFlags.nodeType);
  if (nodeType !== 'sidecar' && nodeType !== 'router') {
    throw new ConfigError(
      'proxy type',
      `${JSON.stringify(nodeType)} is not supported (expected sidecar or router)`,
    );
  }
  const text = (name: string, fallback: string) => {
    const value = argv[name];
    // A flag given twice arrives as an array; the last one wins, as with Go's pflag.
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    return last === undefined ? fallback : String(last);
  };
  return {
    nodeType: nodeType as NodeType,
    domain: text('domain', ''),
    serviceCluster: text('serviceCluster', ''),
    proxyLogLevel: text('proxyLogLevel', defaultProxyFlags.proxyLogLevel),
    proxyComponentLogLevel: text('proxyComponentLogLevel', ''),
    concurrency: text('concurrency', defaultProxyFlags.concurrency),
    meshConfig: text('meshConfig', defaultProxyFlags.meshConfig),
    templateFile: text('templateFile', ''),
    outlierLogPath: text('outlierLogPath', ''),
    stsPort: text('stsPort', defaultProxyFlags.stsPort),
    tokenManagerPlugin: text('tokenManagerPlugin', ''),
    logOutputLevel: text('log_output_level', defaultProxyFlags.logOutputLevel),
    logAsJson: argv.log_as_json === true,
  };
}

/** Istio's logging flags, which every `pilot-agent` command takes. */
export function withLoggingFlags<T>(yargs: Argv<T>) {
  return yargs
    .option('log_output_level', {
      type: 'string',
      default: defaultProxyFlags.logOutputLevel,
      describe: "The agent's log levels per scope, scope:level,…",
    })
    .option('log_as_json', { type: 'boolean', default: false, describe: 'Write JSON log lines' })
    .option('log_target', {
      type: 'string',
      describe: 'Accepted for compatibility; the agent logs to stdout',
    })
    .option('log_caller', { type: 'string', describe: 'Accepted for compatibility' })
    .option('log_stacktrace_level', { type: 'string', describe: 'Accepted for compatibility' });
}

/** The agent log levels and format from the logging flags. */
export function loggingFromArguments(argv: Record<string, unknown>): {
  levels: Readonly<Record<string, AgentLogLevel>>;
  asJson: boolean;
} {
  const value = argv.log_output_level;
  const text = String(
    (Array.isArray(value) ? value[value.length - 1] : value) ?? defaultProxyFlags.logOutputLevel,
  );
  return { levels: parseAgentOutputLevels('--log_output_level', text), asJson: argv.log_as_json === true };
}
