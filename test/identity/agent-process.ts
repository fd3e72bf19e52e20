import type { ExecutionContext } from 'ava';
import { prepareAgentRoot } from '../helpers/agent-root.ts';
import { startPilotAgent } from '../helpers/cli.ts';
import type { TemporaryRoot } from '../helpers/temporary-root.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { podNamespace, serviceAccount } from './identity-fixture.ts';

/**
 * The real `pilot-agent proxy sidecar` in `root` (with the Envoy stand-in and free ports), its output
 * captured; stopped (SIGTERM) after the test.
 */
export async function startAgent(
  t: ExecutionContext,
  root: TemporaryRoot,
  environment: Record<string, string>,
) {
  const prepared = await prepareAgentRoot(root);
  const subprocess = startPilotAgent(['proxy', 'sidecar'], {
    cwd: root.directory,
    environment: {
      POD_NAMESPACE: podNamespace,
      SERVICE_ACCOUNT: serviceAccount,
      POD_NAME: 'productpage-v1-abc',
      ...prepared.environment,
      ...environment,
    },
  });
  let output = '';
  subprocess.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  let exit: { exitCode?: number | undefined; signal?: string | undefined } | undefined;
  void subprocess.then((result) => {
    exit = result;
  });
  let stopped = false;
  const stop = async () => {
    if (!stopped) {
      stopped = true;
      subprocess.kill('SIGTERM');
    }
    return subprocess;
  };
  t.teardown(async () => {
    await stop();
  });
  return {
    subprocess,
    output: () => output,
    /** Resolves with the first match of `pattern` in the output so far or to come. */
    waitForOutput: (description: string, pattern: RegExp, timeoutMilliseconds = 20_000) =>
      waitFor(
        description,
        () => {
          if (exit) throw new Error(`the agent exited (${exit.exitCode ?? exit.signal}):\n${output}`);
          return pattern.exec(output) ?? undefined;
        },
        { timeoutMilliseconds },
      ),
    stop,
  };
}
