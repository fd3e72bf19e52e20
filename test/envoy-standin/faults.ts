/**
 * Environment knobs that make the stand-in misbehave (or measure) on purpose, for tests and benchmarks.
 * Documented in README.md next to this file. Read once at start-up by main.ts; every other part receives
 * the parsed values.
 */
export interface Faults {
  /** ENVOY_STANDIN_CRASH_AFTER_MS: exit abruptly this long after start. */
  readonly crashAfterMilliseconds: number | undefined;
  /** ENVOY_STANDIN_CRASH_EXIT_CODE: the exit code (a number) or a signal name (SIGABRT, SIGSEGV, …). */
  readonly crashExit: number | NodeJS.Signals;
  /** ENVOY_STANDIN_INITIALIZING_MS: stay INITIALIZING this long before LIVE ("forever" never goes LIVE). */
  readonly initializingMilliseconds: number;
  /** ENVOY_STANDIN_REJECT_BOOTSTRAP: refuse the bootstrap with this message (exit 1). */
  readonly rejectBootstrap: string | undefined;
  /** ENVOY_STANDIN_IGNORE_SIGTERM: log SIGTERM and keep running. */
  readonly ignoreSigterm: boolean;
  /** ENVOY_STANDIN_ADMIN_DELAY_MS: delay each admin response. */
  readonly adminDelayMilliseconds: number;
  /** ENVOY_STANDIN_ADMIN_DELAY_PATHS: comma-separated path prefixes the delay applies to (all when unset). */
  readonly adminDelayPaths: readonly string[];
  /** ENVOY_STANDIN_EXTRA_PROMETHEUS_SERIES: synthetic series added to /stats/prometheus. */
  readonly extraPrometheusSeries: number;
}

/** Settings for observation rather than faults. */
export interface Observation {
  /** ENVOY_STANDIN_ADMIN_REQUEST_LOG: append one JSON line per admin request to this file. */
  readonly adminRequestLog: string | undefined;
  /** ENVOY_STANDIN_EVENT_LOG: append one JSON line per lifecycle event (started, live, draining, exit…). */
  readonly eventLog: string | undefined;
  /** ENVOY_STANDIN_HOT_RESTART_RETRY_MS: pause between the 10 attempts to reach a missing parent (1000). */
  readonly hotRestartRetryMilliseconds: number;
  /** ENVOY_STANDIN_PARENT_POLL_MS: how often the parent process is checked for death (100). */
  readonly parentPollMilliseconds: number;
}

export class FaultConfigurationError extends Error {
  constructor(variable: string, value: string, expected: string) {
    super(`${variable}=${JSON.stringify(value)}: expected ${expected}`);
    this.name = 'FaultConfigurationError';
  }
}

type Environment = Readonly<Record<string, string | undefined>>;

function integer(environment: Environment, variable: string, fallback: number): number {
  const value = environment[variable];
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value)) throw new FaultConfigurationError(variable, value, 'a non-negative integer');
  return Number(value);
}

const noFaults: Faults = {
  crashAfterMilliseconds: undefined,
  crashExit: 1,
  initializingMilliseconds: 0,
  rejectBootstrap: undefined,
  ignoreSigterm: false,
  adminDelayMilliseconds: 0,
  adminDelayPaths: [],
  extraPrometheusSeries: 0,
};

/**
 * Reads the fault knobs. ENVOY_STANDIN_FAULT_EPOCHS (comma-separated restart epochs) limits them to those
 * epochs, so a test can break only the new epoch of a hot restart.
 */
export function readFaults(environment: Environment, restartEpoch: number): Faults {
  const epochs = environment.ENVOY_STANDIN_FAULT_EPOCHS;
  if (epochs !== undefined && epochs !== '') {
    const list = epochs.split(',').map((entry) => entry.trim());
    if (list.some((entry) => !/^\d+$/.test(entry))) {
      throw new FaultConfigurationError(
        'ENVOY_STANDIN_FAULT_EPOCHS',
        epochs,
        'comma-separated epoch numbers',
      );
    }
    if (!list.map(Number).includes(restartEpoch)) return noFaults;
  }
  const crashAfter = environment.ENVOY_STANDIN_CRASH_AFTER_MS;
  const crashExitText = environment.ENVOY_STANDIN_CRASH_EXIT_CODE ?? '';
  let crashExit: number | NodeJS.Signals = 1;
  if (/^\d+$/.test(crashExitText)) crashExit = Number(crashExitText);
  else if (/^SIG[A-Z0-9]+$/.test(crashExitText)) crashExit = crashExitText as NodeJS.Signals;
  else if (crashExitText !== '') {
    throw new FaultConfigurationError(
      'ENVOY_STANDIN_CRASH_EXIT_CODE',
      crashExitText,
      'an exit code or a signal name',
    );
  }
  const initializing = environment.ENVOY_STANDIN_INITIALIZING_MS;
  const ignore = environment.ENVOY_STANDIN_IGNORE_SIGTERM ?? '';
  if (ignore !== '' && !['1', 'true', '0', 'false'].includes(ignore)) {
    throw new FaultConfigurationError('ENVOY_STANDIN_IGNORE_SIGTERM', ignore, '1/true or 0/false');
  }
  const paths = environment.ENVOY_STANDIN_ADMIN_DELAY_PATHS ?? '';
  return {
    crashAfterMilliseconds:
      crashAfter === undefined || crashAfter === ''
        ? undefined
        : integer(environment, 'ENVOY_STANDIN_CRASH_AFTER_MS', 0),
    crashExit,
    initializingMilliseconds:
      initializing === 'forever'
        ? Number.POSITIVE_INFINITY
        : integer(environment, 'ENVOY_STANDIN_INITIALIZING_MS', 0),
    rejectBootstrap: environment.ENVOY_STANDIN_REJECT_BOOTSTRAP || undefined,
    ignoreSigterm: ignore === '1' || ignore === 'true',
    adminDelayMilliseconds: integer(environment, 'ENVOY_STANDIN_ADMIN_DELAY_MS', 0),
    adminDelayPaths: paths === '' ? [] : paths.split(',').map((entry) => entry.trim()),
    extraPrometheusSeries: integer(environment, 'ENVOY_STANDIN_EXTRA_PROMETHEUS_SERIES', 0),
  };
}

export function readObservation(environment: Environment): Observation {
  return {
    adminRequestLog: environment.ENVOY_STANDIN_ADMIN_REQUEST_LOG || undefined,
    eventLog: environment.ENVOY_STANDIN_EVENT_LOG || undefined,
    hotRestartRetryMilliseconds: integer(environment, 'ENVOY_STANDIN_HOT_RESTART_RETRY_MS', 1000),
    parentPollMilliseconds: Math.max(10, integer(environment, 'ENVOY_STANDIN_PARENT_POLL_MS', 100)),
  };
}
