import test from 'ava';
import { execa } from 'execa';
import { FaultConfigurationError, readFaults } from '../envoy-standin/faults.ts';
import {
  adminGet,
  baseBootstrap,
  freePort,
  httpListener,
  httpRequest,
  processGone,
  standinExecutable,
  startStandin,
  type TestRoot,
  temporaryRoot,
  waitFor,
  waitForLive,
  writeBootstrap,
} from './harness.ts';

async function setup(root: TestRoot) {
  const [adminPort, listenerPort] = [await freePort(), await freePort()];
  const bootstrap = baseBootstrap(adminPort);
  bootstrap.static_resources = {
    clusters: [],
    listeners: [
      httpListener('inbound', listenerPort, [{ prefix: '/', directResponse: { status: 200, body: 'ok' } }]),
    ],
  };
  return { adminPort, listenerPort, file: await writeBootstrap(root, bootstrap) };
}

test('SIGHUP is logged and eaten; SIGINT shuts down cleanly with exit 0', async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, file } = await setup(root);
  const envoy = startStandin(t, ['-c', file, '--disable-hot-restart']);
  await waitForLive(adminPort);
  envoy.kill('SIGHUP');
  await envoy.waitForLog(
    /\[warning\]\[main\] .*caught and eating SIGHUP\. See documentation for how to hot restart\./,
  );
  t.is((await adminGet(adminPort, '/ready')).status, 200);
  envoy.kill('SIGINT');
  t.deepEqual(await envoy.exited, { exitCode: 0, signal: undefined });
  t.true(envoy.logs.some((line) => /caught SIGINT/.test(line)));
  t.true(envoy.logs.some((line) => /\[info\]\[main\] .*exiting$/.test(line)));
});

test('SIGTERM while still initializing exits 0', async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, listenerPort, file } = await setup(root);
  const envoy = startStandin(t, ['-c', file, '--disable-hot-restart'], {
    environment: { ENVOY_STANDIN_INITIALIZING_MS: 'forever' },
  });
  const ready = await waitFor('the admin port', () => adminGet(adminPort, '/ready'));
  t.deepEqual([ready.status, ready.body], [503, 'INITIALIZING\n']);
  const refused = await httpRequest({ port: listenerPort }, 'GET', '/').then(
    () => 'served',
    (error: NodeJS.ErrnoException) => error.code,
  );
  t.is(refused, 'ECONNREFUSED', 'listeners are bound only when workers start');
  envoy.kill('SIGTERM');
  t.deepEqual(await envoy.exited, { exitCode: 0, signal: undefined });
  t.true(envoy.logs.some((line) => /\[warning\]\[main\] .*caught SIGTERM$/.test(line)));
});

test('ENVOY_STANDIN_INITIALIZING_MS holds INITIALIZING, then the stand-in goes LIVE and serves', async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, listenerPort, file } = await setup(root);
  startStandin(t, ['-c', file, '--disable-hot-restart'], {
    environment: { ENVOY_STANDIN_INITIALIZING_MS: '1500' },
  });
  const first = await waitFor('the admin port', () => adminGet(adminPort, '/ready'));
  t.is(first.body, 'INITIALIZING\n');
  await waitForLive(adminPort);
  t.is((await httpRequest({ port: listenerPort }, 'GET', '/')).body, 'ok');
});

test('the stand-in exits when its parent process dies (Envoy: PR_SET_PDEATHSIG)', async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, file } = await setup(root);
  // A shell stands in for the agent: it starts Envoy in the background and reports its pid.
  const supervisor = execa(
    '/bin/sh',
    ['-c', '"$0" "$@" 2>/dev/null & echo $!; wait', standinExecutable, '-c', file, '--disable-hot-restart'],
    {
      reject: false,
      buffer: false,
    },
  );
  t.teardown(() => {
    supervisor.kill('SIGKILL');
  });
  const pid = await new Promise<number>((resolve) =>
    supervisor.stdout?.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))),
  );
  t.teardown(() => {
    if (!processGone(pid)) process.kill(pid, 'SIGKILL');
  });
  await waitForLive(adminPort);
  supervisor.kill('SIGKILL');
  await waitFor('the orphaned stand-in to exit', () => processGone(pid));
  t.true(processGone(pid));
});

test('ENVOY_STANDIN_CRASH_AFTER_MS crashes with the given exit code or signal', async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, file } = await setup(root);
  const withCode = startStandin(t, ['-c', file, '--disable-hot-restart'], {
    environment: { ENVOY_STANDIN_CRASH_AFTER_MS: '200', ENVOY_STANDIN_CRASH_EXIT_CODE: '3' },
  });
  t.deepEqual(await withCode.exited, { exitCode: 3, signal: undefined });
  const withSignal = startStandin(t, ['-c', file, '--disable-hot-restart'], {
    environment: { ENVOY_STANDIN_CRASH_AFTER_MS: '1500', ENVOY_STANDIN_CRASH_EXIT_CODE: 'SIGSEGV' },
  });
  await waitForLive(adminPort);
  t.deepEqual(await withSignal.exited, { exitCode: undefined, signal: 'SIGSEGV' });
});

test('ENVOY_STANDIN_REJECT_BOOTSTRAP refuses the bootstrap; a bad knob value exits 1 naming it', async (t) => {
  const root = await temporaryRoot(t);
  const { file } = await setup(root);
  const rejected = startStandin(t, ['-c', file, '--disable-hot-restart'], {
    environment: { ENVOY_STANDIN_REJECT_BOOTSTRAP: 'listener 0.0.0.0_15006: bad filter chain' },
  });
  t.deepEqual(await rejected.exited, { exitCode: 1, signal: undefined });
  t.true(
    rejected.logs.some((line) =>
      /\[critical\]\[main\] .*error initializing configuration '.*': listener 0\.0\.0\.0_15006: bad filter chain$/.test(
        line,
      ),
    ),
  );
  const badKnob = startStandin(t, ['-c', file, '--disable-hot-restart'], {
    environment: { ENVOY_STANDIN_ADMIN_DELAY_MS: 'soon' },
  });
  t.is((await badKnob.exited).exitCode, 1);
  t.true(
    badKnob.logs.some((line) =>
      line.includes('ENVOY_STANDIN_ADMIN_DELAY_MS="soon": expected a non-negative integer'),
    ),
  );
});

test('ENVOY_STANDIN_IGNORE_SIGTERM keeps running on SIGTERM', async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, file } = await setup(root);
  const envoy = startStandin(t, ['-c', file, '--disable-hot-restart'], {
    environment: { ENVOY_STANDIN_IGNORE_SIGTERM: '1' },
  });
  await waitForLive(adminPort);
  envoy.kill('SIGTERM');
  await envoy.waitForLog(/caught SIGTERM \(ignored: ENVOY_STANDIN_IGNORE_SIGTERM\)/);
  t.is((await adminGet(adminPort, '/ready')).status, 200);
  envoy.kill('SIGINT');
  t.is((await envoy.exited).exitCode, 0);
});

test('ENVOY_STANDIN_ADMIN_DELAY_MS slows the chosen admin paths only', async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, file } = await setup(root);
  startStandin(t, ['-c', file, '--disable-hot-restart'], {
    environment: { ENVOY_STANDIN_ADMIN_DELAY_MS: '700', ENVOY_STANDIN_ADMIN_DELAY_PATHS: '/ready' },
  });
  await waitFor('the admin port', () => adminGet(adminPort, '/stats?filter=^server\\.state$'));
  const order: string[] = [];
  const started = performance.now();
  const ready = adminGet(adminPort, '/ready').then(() => {
    order.push('ready');
    return performance.now() - started;
  });
  await adminGet(adminPort, '/stats?filter=^server\\.state$').then(() => order.push('stats'));
  t.true((await ready) >= 700);
  t.deepEqual(order, ['stats', 'ready']);
});

test('fault knobs are parsed strictly and can be limited to some restart epochs', (t) => {
  t.is(readFaults({ ENVOY_STANDIN_CRASH_AFTER_MS: '10' }, 0).crashAfterMilliseconds, 10);
  t.is(
    readFaults({ ENVOY_STANDIN_CRASH_AFTER_MS: '10', ENVOY_STANDIN_FAULT_EPOCHS: '1,2' }, 0)
      .crashAfterMilliseconds,
    undefined,
  );
  t.is(
    readFaults({ ENVOY_STANDIN_CRASH_AFTER_MS: '10', ENVOY_STANDIN_FAULT_EPOCHS: '1,2' }, 2)
      .crashAfterMilliseconds,
    10,
  );
  t.is(
    readFaults({ ENVOY_STANDIN_INITIALIZING_MS: 'forever' }, 0).initializingMilliseconds,
    Number.POSITIVE_INFINITY,
  );
  t.deepEqual(readFaults({ ENVOY_STANDIN_ADMIN_DELAY_PATHS: '/ready, /stats' }, 0).adminDelayPaths, [
    '/ready',
    '/stats',
  ]);
  t.throws(() => readFaults({ ENVOY_STANDIN_CRASH_EXIT_CODE: 'boom' }, 0), {
    instanceOf: FaultConfigurationError,
  });
  t.throws(() => readFaults({ ENVOY_STANDIN_FAULT_EPOCHS: 'one' }, 0), {
    instanceOf: FaultConfigurationError,
  });
});
