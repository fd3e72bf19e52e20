import { readFile } from 'node:fs/promises';
import test from 'ava';
import {
  adminGet,
  baseBootstrap,
  freePort,
  httpListener,
  httpRequest,
  readJsonLines,
  startStandin,
  statValue,
  type TestRoot,
  temporaryRoot,
  uniqueBaseId,
  waitFor,
  waitForLive,
  writeBootstrap,
} from './harness.ts';

async function hotRestartSetup(root: TestRoot, name = 'envoy-rev.json') {
  const [adminPort, listenerPort] = [await freePort(), await freePort()];
  const bootstrap = baseBootstrap(adminPort);
  bootstrap.static_resources = {
    clusters: [],
    listeners: [
      httpListener(
        'inbound',
        listenerPort,
        [{ prefix: '/', directResponse: { status: 200, body: 'served' } }],
        {
          statPrefix: 'inbound',
        },
      ),
    ],
  };
  return { adminPort, listenerPort, file: await writeBootstrap(root, bootstrap, name) };
}

const serverInfo = async (adminPort: number) =>
  JSON.parse((await adminGet(adminPort, '/server_info')).body) as {
    uptime_current_epoch: string;
    uptime_all_epochs: string;
    hot_restart_version: string;
    command_line_options: { restart_epoch: number; base_id: string };
  };

test('hot restart 0 → 1: the port is served throughout, the parent exits 0 after --parent-shutdown-time-s', async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, listenerPort, file } = await hotRestartSetup(root);
  const baseId = uniqueBaseId();
  const events = root.resolve('events.jsonl');
  const environment = { ENVOY_STANDIN_EVENT_LOG: events };
  const args = (epoch: number) => [
    '-c',
    file,
    '--base-id',
    String(baseId),
    '--restart-epoch',
    String(epoch),
    '--parent-shutdown-time-s',
    '2',
    '--drain-time-s',
    '1',
  ];

  const parent = startStandin(t, args(0), { environment });
  await waitForLive(adminPort);
  t.is((await serverInfo(adminPort)).hot_restart_version, '11.104');
  for (let index = 0; index < 5; index++) await httpRequest({ port: listenerPort }, 'GET', '/');

  // A request loop on fresh connections runs across the whole hand-over.
  let stop = false;
  const failures: string[] = [];
  let served = 0;
  const loop = (async () => {
    while (!stop) {
      try {
        const result = await httpRequest({ port: listenerPort }, 'GET', '/');
        if (result.status === 200) served++;
        else failures.push(`status ${result.status}`);
      } catch (error) {
        failures.push((error as NodeJS.ErrnoException).code ?? String(error));
      }
    }
  })();

  const child = startStandin(t, args(1), { environment });
  await waitFor(
    'epoch 1 on the admin port',
    async () => (await serverInfo(adminPort)).command_line_options.restart_epoch === 1,
  );
  await waitForLive(adminPort);
  const parentExit = await parent.exited;
  stop = true;
  await loop;

  t.deepEqual(parentExit, { exitCode: 0, signal: undefined });
  // No request may be refused: some process listens on the port at every moment. A connection the kernel
  // had already queued on the parent's socket when the parent stopped listening is reset instead
  // (SO_REUSEPORT without net.ipv4.tcp_migrate_req); that window is a fraction of a millisecond, so at most
  // one such reset is tolerated. Real Envoy passes the socket itself and has no window (see README.md).
  const refusedOrBroken = failures.filter((failure) => failure !== 'ECONNRESET');
  t.deepEqual(refusedOrBroken, [], `${failures.length} failed requests out of ${served + failures.length}`);
  t.true(failures.length <= 1, `${failures.length} connections were reset during the hand-over`);
  t.true(served > 10, `only ${served} requests were served during the hand-over`);

  const entries = readJsonLines(events);
  const handOver = entries.find((entry) => entry.epoch === 1 && entry.event === 'parent_drain_requested');
  const parentGone = entries.find((entry) => entry.epoch === 0 && entry.event === 'exit');
  t.truthy(handOver && parentGone);
  const waited = Date.parse(String(parentGone?.time)) - Date.parse(String(handOver?.time));
  t.true(waited >= 1950 && waited < 6000, `the parent left ${waited} ms after the hand-over`);
  t.true(entries.some((entry) => entry.epoch === 0 && entry.event === 'terminated_by_child'));

  const info = await serverInfo(adminPort);
  t.is(info.command_line_options.base_id, String(baseId));
  t.true(Number.parseInt(info.uptime_all_epochs, 10) >= Number.parseInt(info.uptime_current_epoch, 10));
  t.is(await statValue(adminPort, 'server.hot_restart_epoch'), 1);
  t.true(
    ((await statValue(adminPort, 'http.inbound.downstream_rq_total')) ?? 0) >= 5,
    "the child's counters include the parent's",
  );
  child.kill('SIGTERM');
  t.is((await child.exited).exitCode, 0);
});

test('at most three processes: starting epoch 2 terminates epoch 0', async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, file } = await hotRestartSetup(root);
  const baseId = uniqueBaseId();
  const args = (epoch: number, shutdown: number) => [
    '-c',
    file,
    '--base-id',
    String(baseId),
    '--restart-epoch',
    String(epoch),
    '--parent-shutdown-time-s',
    String(shutdown),
  ];
  const epoch0 = startStandin(t, args(0, 60));
  await waitForLive(adminPort);
  startStandin(t, args(1, 60));
  await waitFor(
    'epoch 1',
    async () => (await serverInfo(adminPort)).command_line_options.restart_epoch === 1,
  );
  await waitForLive(adminPort);
  t.is(
    await Promise.race([epoch0.exited, new Promise((resolve) => setTimeout(resolve, 300, 'running'))]),
    'running',
  );

  const epoch2 = startStandin(t, args(2, 60));
  t.deepEqual(await epoch0.exited, { exitCode: 0, signal: undefined });
  await epoch0.waitForLog(/shutting down due to child request/);
  await waitFor(
    'epoch 2',
    async () => (await serverInfo(adminPort)).command_line_options.restart_epoch === 2,
  );
  await waitForLive(adminPort);
  epoch2.kill('SIGTERM');
  t.is((await epoch2.exited).exitCode, 0);
});

test("a base id already in use exits 1 with Envoy's message", async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, file } = await hotRestartSetup(root);
  const baseId = uniqueBaseId();
  startStandin(t, ['-c', file, '--base-id', String(baseId)]);
  await waitForLive(adminPort);
  const second = startStandin(t, ['-c', file, '--base-id', String(baseId)]);
  t.deepEqual(await second.exited, { exitCode: 1, signal: undefined });
  t.deepEqual(second.logs, [
    `unable to bind domain socket with base_id=${baseId * 10}, id=0, errno=98 (see --base-id option)`,
  ]);
});

test('a child without a parent retries, then aborts; --skip-hot-restart-on-no-parent starts cold', async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, file } = await hotRestartSetup(root);
  const orphan = startStandin(t, ['-c', file, '--base-id', String(uniqueBaseId()), '--restart-epoch', '1'], {
    environment: { ENVOY_STANDIN_HOT_RESTART_RETRY_MS: '20' },
  });
  t.deepEqual(await orphan.exited, { exitCode: undefined, signal: 'SIGABRT' });
  t.is(
    orphan.logs.filter((line) =>
      /\[error\]\[main\] .*hot restart sendmsg\(\) connection refused, retrying/.test(line),
    ).length,
    10,
  );
  t.true(
    orphan.logs.some((line) =>
      /\[critical\]\[assert\] .*assert failure: false\. Details: hot restart sendmsg\(\) failed: returned -1, errno 111/.test(
        line,
      ),
    ),
  );

  const cold = startStandin(t, [
    '-c',
    file,
    '--base-id',
    String(uniqueBaseId()),
    '--restart-epoch',
    '1',
    '--skip-hot-restart-on-no-parent',
  ]);
  await cold.waitForLog(
    /\[warning\]\[main\] .*hot restart sendmsg\(\) connection refused, falling back to regular restart/,
  );
  await waitForLive(adminPort);
  t.is((await serverInfo(adminPort)).command_line_options.restart_epoch, 1);
});

test('--use-dynamic-base-id picks a free base id and writes it to --base-id-path', async (t) => {
  const root = await temporaryRoot(t);
  const first = await hotRestartSetup(root);
  const second = await hotRestartSetup(root, 'second.json');
  const [firstPath, secondPath] = [root.resolve('base-id-1'), root.resolve('base-id-2')];
  startStandin(t, ['-c', first.file, '--use-dynamic-base-id', '--base-id-path', firstPath]);
  startStandin(t, ['-c', second.file, '--use-dynamic-base-id', '--base-id-path', secondPath]);
  await Promise.all([waitForLive(first.adminPort), waitForLive(second.adminPort)]);
  const [firstId, secondId] = await Promise.all([readFile(firstPath, 'utf8'), readFile(secondPath, 'utf8')]);
  t.regex(firstId, /^\d+$/);
  t.regex(secondId, /^\d+$/);
  t.not(firstId, secondId);
  t.is((await serverInfo(first.adminPort)).command_line_options.base_id, firstId);
});

test('a child of a parent still initializing exits 1', async (t) => {
  const root = await temporaryRoot(t);
  const { adminPort, file } = await hotRestartSetup(root);
  const baseId = String(uniqueBaseId());
  startStandin(t, ['-c', file, '--base-id', baseId], {
    environment: { ENVOY_STANDIN_INITIALIZING_MS: 'forever', ENVOY_STANDIN_FAULT_EPOCHS: '0' },
  });
  await waitFor('INITIALIZING', async () => (await adminGet(adminPort, '/ready')).body === 'INITIALIZING\n');
  const child = startStandin(t, ['-c', file, '--base-id', baseId, '--restart-epoch', '1']);
  t.deepEqual(await child.exited, { exitCode: 1, signal: undefined });
  t.true(child.logs.includes('previous envoy process is still initializing'));
  t.is((await adminGet(adminPort, '/ready')).body, 'INITIALIZING\n', 'the parent is untouched');
});
