import test from 'ava';
import { runPilotAgent } from '../helpers/cli.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';

test('a missing POD_NAMESPACE stops the proxy at start-up with exit code 255', async (t) => {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const result = await runPilotAgent(['proxy', 'sidecar'], { cwd: root.directory });
  t.is(result.exitCode, 255);
  t.regex(result.stderr, /^Error: POD_NAMESPACE: is not set/m);
});
