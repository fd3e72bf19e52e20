import { availableParallelism } from 'node:os';
import { defaultLogFormat, isComponentName, type LogLevel, parseLogLevel } from './log.ts';
import { envoyVersion, hotRestartVersion } from './version.ts';

/**
 * Envoy's command line (source/server/options_impl.cc), parsed the way TCLAP does it: `--flag value` (a
 * space, never `=`), each flag at most once except `--stats-tag`, `--` ends parsing, and any other word is
 * "Couldn't find match for argument".
 */

type ValueType = 'string' | 'uint32' | 'uint64';

interface FlagSpec {
  readonly name: string;
  readonly short?: string;
  readonly kind: 'value' | 'switch' | 'multi';
  readonly type?: ValueType;
  readonly help: string;
}

const flagSpecs: readonly FlagSpec[] = [
  {
    name: 'base-id',
    kind: 'value',
    type: 'uint32',
    help: 'base ID so that multiple envoys can run on the same host if needed',
  },
  { name: 'use-dynamic-base-id', kind: 'switch', help: 'the server chooses a base ID dynamically' },
  { name: 'base-id-path', kind: 'value', type: 'string', help: 'path to which the base ID is written' },
  { name: 'concurrency', kind: 'value', type: 'uint32', help: '# of worker threads to run' },
  { name: 'config-path', short: 'c', kind: 'value', type: 'string', help: 'Path to configuration file' },
  {
    name: 'config-yaml',
    kind: 'value',
    type: 'string',
    help: 'Inline YAML configuration, merges with the contents of --config-path',
  },
  {
    name: 'allow-unknown-fields',
    kind: 'switch',
    help: 'allow unknown fields in static configuration (DEPRECATED)',
  },
  {
    name: 'allow-unknown-static-fields',
    kind: 'switch',
    help: 'allow unknown fields in static configuration',
  },
  {
    name: 'reject-unknown-dynamic-fields',
    kind: 'switch',
    help: 'reject unknown fields in dynamic configuration',
  },
  {
    name: 'ignore-unknown-dynamic-fields',
    kind: 'switch',
    help: 'ignore unknown fields in dynamic configuration',
  },
  {
    name: 'skip-deprecated-logs',
    kind: 'switch',
    help: 'skips the logging of deprecated field warnings during Protobuf message validation',
  },
  { name: 'admin-address-path', kind: 'value', type: 'string', help: 'Admin address path' },
  {
    name: 'local-address-ip-version',
    kind: 'value',
    type: 'string',
    help: 'The local IP address version (v4 or v6).',
  },
  {
    name: 'log-level',
    short: 'l',
    kind: 'value',
    type: 'string',
    help: 'Log levels: [trace][debug][info][warning|warn][error][critical][off]',
  },
  {
    name: 'component-log-level',
    kind: 'value',
    type: 'string',
    help: 'Comma separated list of component log levels. For example upstream:debug,config:trace',
  },
  { name: 'log-format', kind: 'value', type: 'string', help: 'Log message format in spdlog syntax' },
  {
    name: 'log-format-escaped',
    kind: 'switch',
    help: 'Escape c-style escape sequences in the application logs',
  },
  {
    name: 'enable-fine-grain-logging',
    kind: 'switch',
    help: 'Logger mode: enable file level log control (Fine-Grain Logger) or not',
  },
  { name: 'log-path', kind: 'value', type: 'string', help: 'Path to logfile' },
  { name: 'restart-epoch', kind: 'value', type: 'uint32', help: 'hot restart epoch #' },
  { name: 'hot-restart-version', kind: 'switch', help: 'hot restart compatibility version' },
  { name: 'service-cluster', kind: 'value', type: 'string', help: 'Cluster name' },
  { name: 'service-node', kind: 'value', type: 'string', help: 'Node name' },
  { name: 'service-zone', kind: 'value', type: 'string', help: 'Zone name' },
  {
    name: 'file-flush-interval-msec',
    kind: 'value',
    type: 'uint32',
    help: 'Interval for log flushing in msec',
  },
  {
    name: 'file-flush-min-size-kb',
    kind: 'value',
    type: 'uint32',
    help: 'Minimum size of log buffer in KB before flushing',
  },
  {
    name: 'drain-time-s',
    kind: 'value',
    type: 'uint32',
    help: 'Hot restart and LDS removal drain time in seconds',
  },
  {
    name: 'drain-strategy',
    kind: 'value',
    type: 'string',
    help: "Hot restart drain sequence behaviour, one of 'gradual' (default) or 'immediate'.",
  },
  {
    name: 'parent-shutdown-time-s',
    kind: 'value',
    type: 'uint32',
    help: 'Hot restart parent shutdown time in seconds',
  },
  {
    name: 'mode',
    kind: 'value',
    type: 'string',
    help: "One of 'serve' (default; validate configs and then serve traffic normally) or 'validate' (validate configs and exit).",
  },
  { name: 'disable-hot-restart', kind: 'switch', help: 'Disable hot restart functionality' },
  {
    name: 'skip-hot-restart-on-no-parent',
    kind: 'switch',
    help: 'When hot restarting, by default Envoy will fail if the parent process is not found; with this flag it starts without hot restart',
  },
  {
    name: 'skip-hot-restart-parent-stats',
    kind: 'switch',
    help: 'When hot restarting, by default the child process copies stats from the parent process',
  },
  { name: 'enable-mutex-tracing', kind: 'switch', help: 'Enable mutex contention tracing functionality' },
  { name: 'cpuset-threads', kind: 'switch', help: 'Get the default # of worker threads from cpuset size' },
  {
    name: 'disable-extensions',
    kind: 'value',
    type: 'string',
    help: 'Comma-separated list of extensions to disable',
  },
  { name: 'socket-path', kind: 'value', type: 'string', help: 'Path to hot restart socket file' },
  { name: 'socket-mode', kind: 'value', type: 'string', help: 'Socket file permission' },
  { name: 'enable-core-dump', kind: 'switch', help: 'Enable core dumps' },
  {
    name: 'stats-tag',
    kind: 'multi',
    type: 'string',
    help: 'This flag provides a universal tag for all stats generated by Envoy. The format is tag:value.',
  },
  { name: 'version', kind: 'switch', help: 'Displays version information and exits.' },
  { name: 'help', short: 'h', kind: 'switch', help: 'Displays usage information and exits.' },
];

export type Mode = 'serve' | 'validate' | 'init_only';
export type DrainStrategy = 'gradual' | 'immediate';

/** The parsed options, with Envoy's defaults applied. */
export interface EnvoyOptions {
  readonly baseId: number;
  readonly useDynamicBaseId: boolean;
  readonly baseIdPath: string;
  readonly concurrency: number;
  readonly configPath: string;
  readonly configYaml: string;
  readonly allowUnknownStaticFields: boolean;
  readonly rejectUnknownDynamicFields: boolean;
  readonly ignoreUnknownDynamicFields: boolean;
  readonly adminAddressPath: string;
  readonly localAddressIpVersion: 'v4' | 'v6';
  readonly logLevel: LogLevel;
  readonly componentLogLevel: string;
  readonly componentLogLevels: ReadonlyArray<readonly [string, LogLevel]>;
  readonly logFormat: string;
  readonly logFormatEscaped: boolean;
  readonly enableFineGrainLogging: boolean;
  readonly logPath: string;
  readonly restartEpoch: number;
  readonly serviceCluster: string;
  readonly serviceNode: string;
  readonly serviceZone: string;
  readonly fileFlushIntervalMilliseconds: number;
  readonly fileFlushMinSizeKb: number;
  readonly drainTimeSeconds: number;
  readonly drainStrategy: DrainStrategy;
  readonly parentShutdownTimeSeconds: number;
  readonly mode: Mode;
  readonly disableHotRestart: boolean;
  readonly skipHotRestartOnNoParent: boolean;
  readonly skipHotRestartParentStats: boolean;
  readonly enableMutexTracing: boolean;
  readonly cpusetThreads: boolean;
  readonly disabledExtensions: readonly string[];
  readonly socketPath: string;
  readonly socketMode: number;
  readonly enableCoreDump: boolean;
  readonly statsTags: ReadonlyArray<readonly [string, string]>;
  readonly skipDeprecatedLogs: boolean;
  /** Warnings Envoy logs once logging is up (deprecated flags). */
  readonly warnings: readonly string[];
}

/** What the command line asks for: run with options, or print something and exit 0. */
export type ParsedCommandLine =
  | { readonly kind: 'run'; readonly options: EnvoyOptions }
  | { readonly kind: 'exit'; readonly stdout: string; readonly stderr: string };

/**
 * A malformed command line: `output` is what Envoy writes to stderr before exiting 1 (TCLAP's parse error
 * block, then the exception's message).
 */
export class MalformedArgvError extends Error {
  readonly output: string;
  constructor(message: string, output?: string) {
    super(message);
    this.name = 'MalformedArgvError';
    this.output = output ?? `${message}\n`;
  }
}

const argumentId = (spec: FlagSpec) => (spec.short ? `-${spec.short} (--${spec.name})` : `(--${spec.name})`);

function briefUsage(): string {
  const parts = flagSpecs
    .filter((spec) => spec.name !== 'version' && spec.name !== 'help')
    .map((spec) => {
      const flag = spec.short ? `-${spec.short}` : `--${spec.name}`;
      if (spec.kind === 'switch') return `[${flag}]`;
      const value = `[${flag} <${spec.type === 'string' ? 'string' : spec.type}>]`;
      return spec.kind === 'multi' ? `${value} ...` : value;
    });
  parts.push('[--]', '[--version]', '[-h]');
  const lines: string[] = [];
  let line = '   envoy ';
  for (const part of parts) {
    if (line.length + part.length + 1 > 78) {
      lines.push(line);
      line = '         ';
    }
    line += ` ${part}`;
  }
  lines.push(line);
  return lines.join('\n');
}

function parseError(argumentIdText: string, error: string): MalformedArgvError {
  const output =
    `PARSE ERROR: ${argumentIdText}\n             ${error}\n\n` +
    `Brief USAGE: \n${briefUsage()}\n\n` +
    'For complete USAGE and HELP type: \n   envoy --help\n\n' +
    `${argumentIdText} -- ${error}\n`;
  return new MalformedArgvError(`${argumentIdText} -- ${error}`, output);
}

function usage(): string {
  const lines = ['', 'USAGE: ', '', briefUsage(), '', '', 'Where: ', ''];
  for (const spec of flagSpecs) {
    const flag = spec.short
      ? `-${spec.short} <${spec.type}>,  --${spec.name} <${spec.type}>`
      : `--${spec.name}`;
    lines.push(`   ${spec.kind === 'switch' ? flag.replace(/ <.*>/, '') : flag}`, `     ${spec.help}`, '');
  }
  lines.push('', '   envoy', '');
  return `${lines.join('\n')}\n`;
}

function readValue(spec: FlagSpec, text: string): string | number {
  if (spec.type === 'string') return text;
  const maximum = spec.type === 'uint32' ? 2 ** 32 - 1 : Number.MAX_SAFE_INTEGER;
  if (!/^\+?\d+$/.test(text.trim()) || Number(text) > maximum) {
    throw parseError(`Argument: ${argumentId(spec)}`, `Couldn't read argument value from string '${text}'`);
  }
  return Number(text);
}

function malformed(message: string): MalformedArgvError {
  return new MalformedArgvError(message);
}

/** Parses Envoy's argv (without the program name). Throws MalformedArgvError where Envoy exits 1. */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const values = new Map<string, string | number | boolean | string[]>();
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] ?? '';
    if (argument === '--') break;
    const spec = flagSpecs.find(
      (candidate) =>
        argument === `--${candidate.name}` || (candidate.short && argument === `-${candidate.short}`),
    );
    if (!spec) throw parseError(`Argument: ${argument}`, "Couldn't find match for argument");
    if (spec.kind !== 'multi' && values.has(spec.name)) {
      throw parseError(`Argument: ${argumentId(spec)}`, 'Argument already set!');
    }
    if (spec.kind === 'switch') {
      values.set(spec.name, true);
      continue;
    }
    const next = argv[index + 1];
    if (next === undefined)
      throw parseError(`Argument: ${argumentId(spec)}`, 'Missing a value for this argument!');
    index++;
    const value = readValue(spec, next);
    if (spec.kind === 'multi') {
      const list = (values.get(spec.name) as string[] | undefined) ?? [];
      list.push(String(value));
      values.set(spec.name, list);
    } else {
      values.set(spec.name, value);
    }
  }

  const string = (name: string, fallback: string) => (values.get(name) as string | undefined) ?? fallback;
  const number = (name: string, fallback: number) => (values.get(name) as number | undefined) ?? fallback;
  const flag = (name: string) => values.get(name) === true;

  if (flag('help')) return { kind: 'exit', stdout: usage(), stderr: '' };
  if (flag('version')) return { kind: 'exit', stdout: `\nenvoy  version: ${envoyVersion}\n\n`, stderr: '' };

  const warnings: string[] = [];
  let logLevel: LogLevel = 2;
  if (values.has('log-level')) {
    const parsed = parseLogLevel(string('log-level', 'info'));
    if (parsed === undefined)
      throw malformed(`error: invalid log level specified '${string('log-level', '')}'`);
    logLevel = parsed;
  }

  const componentLogLevel = string('component-log-level', '');
  const componentLogLevels: Array<readonly [string, LogLevel]> = [];
  if (componentLogLevel !== '') {
    for (const entry of componentLogLevel.split(',')) {
      const parts = entry.split(':');
      if (parts.length !== 2)
        throw malformed(`error: component log level not correctly specified '${entry}'`);
      const [component = '', levelText = ''] = parts;
      const level = parseLogLevel(levelText);
      if (level === undefined) throw malformed(`error: invalid log level specified '${levelText}'`);
      if (!isComponentName(component)) throw malformed(`error: invalid component specified '${component}'`);
      componentLogLevels.push([component, level]);
    }
  }

  const mode = string('mode', 'serve');
  if (mode !== 'serve' && mode !== 'validate' && mode !== 'init_only') {
    throw malformed(`error: unknown mode '${mode}'`);
  }
  const ipVersion = string('local-address-ip-version', 'v4');
  if (ipVersion !== 'v4' && ipVersion !== 'v6')
    throw malformed(`error: unknown IP address version '${ipVersion}'`);

  const restartEpoch = number('restart-epoch', 0);
  const useDynamicBaseId = flag('use-dynamic-base-id');
  if (useDynamicBaseId && restartEpoch > 0) {
    throw malformed(`error: cannot use --restart-epoch=${restartEpoch} with --use-dynamic-base-id`);
  }

  const socketPath = string('socket-path', '@envoy_domain_socket');
  let socketMode = 0;
  if (!socketPath.startsWith('@')) {
    const modeText = string('socket-mode', '600');
    if (!/^[0-7]+$/.test(modeText)) throw malformed(`error: invalid socket-mode '${modeText}'`);
    socketMode = Number.parseInt(modeText, 8);
  }

  const drainStrategy = string('drain-strategy', 'gradual');
  if (drainStrategy !== 'gradual' && drainStrategy !== 'immediate') {
    throw malformed(`error: unknown drain-strategy '${drainStrategy}'`);
  }

  if (flag('hot-restart-version')) {
    return { kind: 'exit', stdout: '', stderr: flag('disable-hot-restart') ? 'disabled' : hotRestartVersion };
  }

  const statsTags: Array<readonly [string, string]> = [];
  for (const pair of (values.get('stats-tag') as string[] | undefined) ?? []) {
    const separator = pair.indexOf(':');
    if (separator === -1) throw malformed(`error: misformatted stats-tag '${pair}'`);
    const name = pair.slice(0, separator);
    const value = pair.slice(separator + 1);
    if (!/^[a-zA-Z0-9_]+$/.test(name)) {
      throw malformed(`error: misformatted stats-tag '${pair}' contains invalid char in '${name}'`);
    }
    if (value.includes('.')) {
      throw malformed(`error: misformatted stats-tag '${pair}' contains invalid char in '${value}'`);
    }
    statsTags.push([name, value]);
  }

  if (flag('allow-unknown-fields')) {
    warnings.push('--allow-unknown-fields is deprecated, use --allow-unknown-static-fields instead.');
  }

  const disableExtensions = string('disable-extensions', '');
  return {
    kind: 'run',
    options: {
      baseId: number('base-id', 0),
      useDynamicBaseId,
      baseIdPath: string('base-id-path', ''),
      concurrency: Math.max(1, number('concurrency', availableParallelism())),
      configPath: string('config-path', ''),
      configYaml: string('config-yaml', ''),
      allowUnknownStaticFields: flag('allow-unknown-static-fields') || flag('allow-unknown-fields'),
      rejectUnknownDynamicFields: flag('reject-unknown-dynamic-fields'),
      ignoreUnknownDynamicFields: flag('ignore-unknown-dynamic-fields'),
      adminAddressPath: string('admin-address-path', ''),
      localAddressIpVersion: ipVersion,
      logLevel,
      componentLogLevel,
      componentLogLevels,
      logFormat: string('log-format', defaultLogFormat),
      logFormatEscaped: flag('log-format-escaped'),
      enableFineGrainLogging: flag('enable-fine-grain-logging'),
      logPath: string('log-path', ''),
      restartEpoch,
      serviceCluster: string('service-cluster', ''),
      serviceNode: string('service-node', ''),
      serviceZone: string('service-zone', ''),
      fileFlushIntervalMilliseconds: number('file-flush-interval-msec', 10_000),
      fileFlushMinSizeKb: number('file-flush-min-size-kb', 64),
      drainTimeSeconds: number('drain-time-s', 600),
      drainStrategy,
      parentShutdownTimeSeconds: number('parent-shutdown-time-s', 900),
      mode,
      disableHotRestart: flag('disable-hot-restart'),
      skipHotRestartOnNoParent: flag('skip-hot-restart-on-no-parent'),
      skipHotRestartParentStats: flag('skip-hot-restart-parent-stats'),
      enableMutexTracing: flag('enable-mutex-tracing'),
      cpusetThreads: flag('cpuset-threads'),
      disabledExtensions: disableExtensions === '' ? [] : disableExtensions.split(','),
      socketPath,
      socketMode,
      enableCoreDump: flag('enable-core-dump'),
      statsTags,
      skipDeprecatedLogs: flag('skip-deprecated-logs'),
      warnings,
    },
  };
}
