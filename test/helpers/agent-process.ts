import { samplePodIdentityEnvironment } from '../fixtures/sample-pod.ts';
import { type AgentPorts, type AgentRootOptions, prepareAgentRoot } from './agent-root.ts';
import { startPilotAgent } from './cli.ts';
import type { Lifetime } from './lifetime.ts';
import type { TemporaryRoot } from './temporary-root.ts';
import { StopWaiting, waitFor } from './wait-for.ts';

export interface AgentProcessOptions extends AgentRootOptions {
  /** Arguments after `pilot-agent` (default `proxy sidecar`). */
  readonly args?: readonly string[];
  /** Another entry point than `agent/main.ts`, e.g. the built `dist/agent/main.js`. */
  readonly entryPoint?: string;
}

export interface AgentExit {
  readonly exitCode?: number | undefined;
  readonly signal?: string | undefined;
}

/**
 * The real `pilot-agent proxy sidecar` in `root`, with the Envoy stand-in as its Envoy and free ports, its
 * output captured; stopped with SIGTERM after the test if it still runs.
 */
export async function startAgent(
  t: Lifetime,
  root: TemporaryRoot,
  environment: Record<string, string>,
  options: AgentProcessOptions = {},
) {
  const prepared = await prepareAgentRoot(root, options);
  const spawnedAt = performance.now();
  const subprocess = startPilotAgent(options.args ?? ['proxy', 'sidecar'], {
    cwd: root.directory,
    ...(options.entryPoint === undefined ? {} : { entryPoint: options.entryPoint }),
    environment: {
      ...samplePodIdentityEnvironment,
      ...prepared.environment,
      ...environment,
    },
  });
  let output = '';
  subprocess.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  let exit: AgentExit | undefined;
  const exited: Promise<AgentExit> = subprocess.then((result) => {
    exit = { exitCode: result.exitCode, signal: result.signal };
    return exit;
  });
  let stopped = false;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!stopped) {
      stopped = true;
      subprocess.kill(signal);
    }
    return exited;
  };
  t.teardown(async () => {
    await stop();
    // A failed test shows what the agent said, which is where the reason usually is.
    if (!t.passed) t.log(`agent output:\n${output.split('\n').slice(-80).join('\n')}`);
  });
  const ports: AgentPorts = prepared.ports;
  return {
    subprocess,
    pid: subprocess.pid ?? 0,
    /** `performance.now()` just before the process was spawned (benchmarks time start-up from it). */
    spawnedAt,
    ports,
    exited,
    hasExited: () => exit !== undefined,
    output: () => output,
    /** Resolves with the first match of `pattern` in the output so far or to come; fails early if the agent exits. */
    waitForOutput: (description: string, pattern: RegExp, timeoutMilliseconds?: number) =>
      waitFor(
        description,
        () => {
          const match = pattern.exec(output);
          if (match) return match;
          if (exit) throw new StopWaiting(`the agent exited (${exit.exitCode ?? exit.signal}):\n${output}`);
          return undefined;
        },
        timeoutMilliseconds === undefined ? {} : { timeoutMilliseconds },
      ),
    /** Every match of a global pattern in the output so far. */
    matches: (pattern: RegExp) => [...output.matchAll(pattern)],
    stop,
  };
}

export type RunningAgent = Awaited<ReturnType<typeof startAgent>>;
