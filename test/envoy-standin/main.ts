import { writeFileSync, writeSync } from 'node:fs';
import { checkBootstrap } from './bootstrap-check.ts';
import { ConfigurationError, loadBootstrap } from './bootstrap-load.ts';
import { FaultConfigurationError, readFaults, readObservation } from './faults.ts';
import { type EnvoyOptions, MalformedArgvError, parseCommandLine } from './flags.ts';
import { DomainSocketInUseError, HotRestart, HotRestartAssertError } from './hot-restart.ts';
import { type ComponentLogger, LogRegistry } from './log.ts';
import { EnvoyServer } from './server.ts';
import { hotRestartVersion } from './version.ts';

/**
 * The Envoy stand-in's entry point (run by the `envoy` launcher next to this file). Envoy's process-level
 * behaviour lives here: exit codes, the order of start-up steps, signals, the parent-death signal and the
 * crash fault. Only this module reads process.env and process.argv.
 */

const source = 'test/envoy-standin/main.ts';
const stderr = (text: string) => writeSync(2, text);

function exit(code: number): never {
  process.exit(code);
}

/** Envoy's RELEASE_ASSERT: log, then abort (SIGABRT; 134 when run from a shell). */
function abort(logs: LogRegistry, message: string): never {
  logs.logger('assert', source).critical(`assert failure: false. Details: ${message}`);
  process.kill(process.pid, 'SIGABRT');
  // The signal is delivered asynchronously; keep the process from doing anything else meanwhile.
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
}

function loadAndCheck(options: EnvoyOptions, rejectBootstrap: string | undefined) {
  try {
    const json = loadBootstrap({ configPath: options.configPath, configYaml: options.configYaml });
    if (rejectBootstrap !== undefined) return { valid: false as const, message: rejectBootstrap };
    return checkBootstrap(json, {
      allowUnknownStaticFields: options.allowUnknownStaticFields,
      serviceNode: options.serviceNode,
      serviceCluster: options.serviceCluster,
    });
  } catch (error) {
    if (error instanceof ConfigurationError) return { valid: false as const, message: error.message };
    throw error;
  }
}

/** Binds the hot restart sockets, choosing a free base id with --use-dynamic-base-id. */
async function bindHotRestart(options: EnvoyOptions, log: ComponentLogger, retryInterval: number) {
  const bind = (baseId: number) =>
    HotRestart.bind({
      baseId,
      epoch: options.restartEpoch,
      socketPath: options.socketPath,
      log,
      retryIntervalMilliseconds: retryInterval,
    });
  if (!options.useDynamicBaseId) return { hotRestart: await bind(options.baseId), baseId: options.baseId };
  for (;;) {
    const baseId = Math.floor(Math.random() * 0x0fffffff);
    try {
      return { hotRestart: await bind(baseId), baseId };
    } catch (error) {
      if (!(error instanceof DomainSocketInUseError)) throw error;
    }
  }
}

async function main(argv: readonly string[], environment: NodeJS.ProcessEnv): Promise<void> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    if (error instanceof MalformedArgvError) {
      stderr(error.output);
      exit(1);
    }
    throw error;
  }
  if (parsed.kind === 'exit') {
    if (parsed.stdout) writeSync(1, parsed.stdout);
    if (parsed.stderr) stderr(parsed.stderr);
    exit(0);
  }
  const options = parsed.options;

  let faults: ReturnType<typeof readFaults>;
  let observation: ReturnType<typeof readObservation>;
  try {
    faults = readFaults(environment, options.restartEpoch);
    observation = readObservation(environment);
  } catch (error) {
    if (error instanceof FaultConfigurationError) {
      stderr(`envoy stand-in: ${error.message}\n`);
      exit(1);
    }
    throw error;
  }

  const logs = new LogRegistry({
    level: options.logLevel,
    componentLevels: options.componentLogLevels,
    format: options.logFormat,
    escape: options.logFormatEscaped,
  });
  const log = logs.logger('main', source);
  for (const warning of options.warnings) log.warn(warning);

  if (options.mode === 'validate') {
    const result = loadAndCheck(options, faults.rejectBootstrap);
    if (!result.valid) {
      log.critical(`error initializing configuration '${options.configPath}': ${result.message}`);
      exit(1);
    }
    writeSync(1, `configuration '${options.configPath}' OK\n`);
    exit(0);
  }

  let server: EnvoyServer | undefined;
  const shutdown = (reason: string) => {
    if (server) void server.shutdown(reason);
    else exit(0);
  };
  process.on('SIGTERM', () => {
    if (faults.ignoreSigterm) {
      log.warn('caught SIGTERM (ignored: ENVOY_STANDIN_IGNORE_SIGTERM)');
      return;
    }
    log.warn('caught SIGTERM');
    shutdown('SIGTERM');
  });
  process.on('SIGINT', () => {
    log.warn('caught SIGINT');
    shutdown('SIGINT');
  });
  process.on('SIGHUP', () => log.warn('caught and eating SIGHUP. See documentation for how to hot restart.'));
  process.on('SIGUSR1', () => log.info('caught SIGUSR1. Reopening access logs.'));

  // Envoy sets PR_SET_PDEATHSIG=SIGTERM; Node cannot, so the parent pid is polled instead.
  const parentPid = process.ppid;
  setInterval(() => {
    if (process.ppid !== parentPid) {
      log.warn(`parent process ${parentPid} exited; delivering the death signal (SIGTERM)`);
      process.kill(process.pid, 'SIGTERM');
    }
  }, observation.parentPollMilliseconds).unref();

  if (faults.crashAfterMilliseconds !== undefined) {
    setTimeout(() => {
      log.critical(`ENVOY_STANDIN_CRASH_AFTER_MS: crashing with ${faults.crashExit}`);
      if (typeof faults.crashExit === 'number') exit(faults.crashExit);
      process.kill(process.pid, faults.crashExit);
    }, faults.crashAfterMilliseconds);
  }

  let hotRestart: HotRestart | undefined;
  let baseId = options.baseId;
  if (!options.disableHotRestart) {
    try {
      ({ hotRestart, baseId } = await bindHotRestart(
        options,
        logs.logger('main', 'test/envoy-standin/hot-restart.ts'),
        observation.hotRestartRetryMilliseconds,
      ));
    } catch (error) {
      stderr(`${(error as Error).message}\n`);
      exit(1);
    }
    if (options.baseIdPath !== '') {
      try {
        writeFileSync(options.baseIdPath, String(baseId));
      } catch {
        log.critical(`cannot open base id output file ${options.baseIdPath} for writing.`);
      }
    }
    if (options.restartEpoch > 0) {
      let connected: boolean;
      try {
        connected = await hotRestart.connectToParent(options.skipHotRestartOnNoParent);
      } catch (error) {
        if (error instanceof HotRestartAssertError) abort(logs, error.message);
        throw error;
      }
      if (!connected) {
        log.warn('hot restart sendmsg() connection refused, falling back to regular restart');
      } else if (await hotRestart.parentInitializing()) {
        stderr('previous envoy process is still initializing\n');
        exit(1);
      }
    }
  }

  log.info(
    `initializing epoch ${options.restartEpoch} (base id=${baseId}, hot restart version=${
      options.disableHotRestart ? 'disabled' : hotRestartVersion
    })`,
  );
  const result = loadAndCheck(options, faults.rejectBootstrap);
  if (!result.valid) {
    log.critical(`error initializing configuration '${options.configPath}': ${result.message}`);
    stderr(`${result.message}\n`);
    exit(1);
  }
  for (const field of result.unknownFields) {
    log.warn(`Unknown field: ${field} (allowed by --allow-unknown-static-fields)`);
  }

  server = new EnvoyServer({
    options,
    bootstrap: result.bootstrap,
    unknownStaticFields: result.unknownFields.length,
    faults,
    observation,
    logs,
    hotRestart,
    baseId,
    exit,
  });
  try {
    await server.start();
  } catch (error) {
    log.critical(`error initializing configuration '${options.configPath}': ${(error as Error).message}`);
    stderr(`${(error as Error).message}\n`);
    exit(1);
  }
}

await main(process.argv.slice(2), process.env);
