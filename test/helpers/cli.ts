import { execa } from 'execa';
import { agentEntryPoint } from './paths.ts';

export interface CliRun {
  readonly cwd: string;
  readonly environment?: Record<string, string>;
  /** Replace the environment entirely instead of extending this process's (the default). */
  readonly extendEnvironment?: boolean;
  readonly input?: string;
  /**
   * Its own process group, so that a terminal's Ctrl-C reaches only the caller, which then stops the agent
   * with SIGTERM (execa's exit cleanup does not apply to a detached child; the caller stops it).
   */
  readonly detached?: boolean;
  /** Another entry point than the checkout's TypeScript sources, e.g. the built `dist/agent/main.js`. */
  readonly entryPoint?: string;
}

/** Runs the real `pilot-agent` CLI as a child process (Node 24, type stripping) and resolves when it exits. */
export function runPilotAgent(args: readonly string[], options: CliRun) {
  return execa(process.execPath, [agentEntryPoint, ...args], {
    cwd: options.cwd,
    env: options.environment ?? {},
    extendEnv: options.extendEnvironment ?? false,
    reject: false,
    all: true,
    timeout: 60_000,
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
}

/** Starts `pilot-agent` in the background; the caller stops it (the child also dies with the test process). */
export function startPilotAgent(args: readonly string[], options: CliRun) {
  return execa(process.execPath, [options.entryPoint ?? agentEntryPoint, ...args], {
    cwd: options.cwd,
    env: options.environment ?? {},
    extendEnv: options.extendEnvironment ?? false,
    reject: false,
    all: true,
    buffer: false,
    cleanup: true,
    detached: options.detached ?? false,
    // A graceful shutdown can take seconds on a loaded machine; SIGKILL only as a last resort.
    forceKillAfterDelay: 30_000,
  });
}
