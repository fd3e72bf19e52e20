import { createInterface } from 'node:readline';
import { execa } from 'execa';
import type { Logger } from '../log.ts';

export interface EnvoyExit {
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
}

export interface EnvoyProcess {
  readonly epoch: number;
  readonly pid: number;
  readonly startedAt: number;
  /** Resolves when the process exited (never rejects; a failed spawn is an exit with code 127). */
  readonly exited: Promise<EnvoyExit>;
  hasExited(): boolean;
  /** Signals the process group, so helpers Envoy may fork go too. */
  signal(signal: NodeJS.Signals): void;
}

export interface LaunchOptions {
  readonly binaryPath: string;
  readonly args: readonly string[];
  readonly epoch: number;
  readonly workingDirectory: string;
  readonly environment: NodeJS.ProcessEnv;
  readonly logger: Logger;
  /** Where Envoy's own output goes, line by line (the agent's stdout/stderr by default). */
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
  readonly now?: () => number;
}

const liveProcesses = new Set<EnvoyProcess>();
let exitHookInstalled = false;

/**
 * Starts one Envoy epoch in its own process group, passing its output through line by line (so lines
 * of overlapping epochs never interleave mid-line). Every launched process is signalled when the agent
 * exits; a SIGKILLed agent relies on Envoy's parent-death signal, as Istio does.
 */
export function launchEnvoy(options: LaunchOptions): EnvoyProcess {
  installExitHook();
  const subprocess = execa(options.binaryPath, [...options.args], {
    cwd: options.workingDirectory,
    env: options.environment,
    extendEnv: false,
    detached: true,
    stdin: 'ignore',
    buffer: false,
    reject: false,
    stripFinalNewline: false,
  });
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  if (subprocess.stdout)
    createInterface({ input: subprocess.stdout, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) =>
      stdout.write(`${line}\n`),
    );
  if (subprocess.stderr)
    createInterface({ input: subprocess.stderr, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) =>
      stderr.write(`${line}\n`),
    );

  let exited = false;
  const pid = subprocess.pid ?? -1;
  const exit = subprocess.then((result) => {
    exited = true;
    if (result.failed && result.exitCode === undefined && result.signal === undefined) {
      options.logger.error(
        `failed to start Envoy epoch ${options.epoch} (${options.binaryPath}): ${result.originalMessage ?? result.shortMessage}`,
      );
      return { exitCode: 127, signal: undefined };
    }
    return { exitCode: result.exitCode, signal: result.signal };
  });
  const envoy: EnvoyProcess = {
    epoch: options.epoch,
    pid,
    startedAt: (options.now ?? Date.now)(),
    exited: exit,
    hasExited: () => exited,
    signal(signal) {
      if (exited || pid <= 0) return;
      try {
        process.kill(-pid, signal);
      } catch {
        // The group is already gone.
      }
    },
  };
  liveProcesses.add(envoy);
  void exit.then(() => liveProcesses.delete(envoy));
  return envoy;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const envoy of liveProcesses) envoy.signal('SIGKILL');
  });
}
