import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import test from 'ava';
import { startAgent } from '../helpers/agent-process.ts';
import { startControlPlane } from '../helpers/control-plane.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';
import { waitFor } from '../helpers/wait-for.ts';
import {
  epochPid,
  fastDrainProxyConfig,
  isRunning,
  readBootstrap,
  serverInfo,
  startAgentWithEnvoy,
  updatePodInfo,
  waitForLiveEpoch,
} from './agent-envoy.ts';

test('the agent starts Envoy, which becomes LIVE at epoch 0 with the generated bootstrap', async (t) => {
  const { agent, adminPort, root } = await startAgentWithEnvoy(t);
  await waitForLiveEpoch(adminPort, 0);
  await agent.waitForOutput('the LIVE log line', /\tenvoy\tEnvoy epoch 0 is LIVE\n/);
  const bootstrap = await readBootstrap(root);
  t.like(bootstrap.node.metadata, { NAMESPACE: 'default', LABELS: { app: 'productpage', version: 'v1' } });
  t.regex(
    agent.output(),
    /starting Envoy epoch 0 \(initial start\): .*--restart-epoch 0 --use-dynamic-base-id --base-id-path /,
  );
});

test("a kubelet-style swap of the pod's labels hot-restarts Envoy: the new epoch serves, the old one leaves", async (t) => {
  const { agent, adminPort, root } = await startAgentWithEnvoy(t);
  await waitForLiveEpoch(adminPort, 0);
  const parentPid = await epochPid(agent, 0);
  await updatePodInfo(root, { labels: 'app="productpage"\nversion="v2"\n', annotations: '' });
  await waitForLiveEpoch(adminPort, 1);
  t.like((await readBootstrap(root)).node.metadata, { LABELS: { app: 'productpage', version: 'v2' } });
  const baseId = (await readFile(root.resolve('etc/istio/proxy/envoy-base-id'), 'utf8')).trim();
  t.regex(
    agent.output(),
    new RegExp(`starting Envoy epoch 1 \\(inputs changed\\): .*--restart-epoch 1 --base-id ${baseId} `),
  );
  await agent.waitForOutput(
    'the drained parent to exit',
    /Envoy epoch 0 exited \(exit code 0\): drained parent/,
  );
  t.false(await isRunning(parentPid));
  t.is((await serverInfo(adminPort)).epoch, 1);
});

test('a swap that changes nothing Envoy sees restarts nothing', async (t) => {
  const { agent, adminPort, root } = await startAgentWithEnvoy(t);
  await waitForLiveEpoch(adminPort, 0);
  await updatePodInfo(root, { labels: 'app="productpage"\nversion="v1"\n', annotations: '' });
  await agent.waitForOutput('the no-restart decision', /no restart\n/);
  t.notRegex(agent.output(), /starting Envoy epoch 1/);
  t.is((await serverInfo(adminPort)).epoch, 0);
});

test('a changed sidecar.istio.io/logLevel annotation is applied live through the admin API, without a new epoch', async (t) => {
  const { agent, adminPort, root } = await startAgentWithEnvoy(t);
  await waitForLiveEpoch(adminPort, 0);
  await updatePodInfo(root, {
    labels: 'app="productpage"\nversion="v1"\n',
    annotations: 'sidecar.istio.io/logLevel="debug"\nsidecar.istio.io/componentLogLevel="upstream:trace"\n',
  });
  await agent.waitForOutput('the live log level', /applied Envoy log levels live: debug,upstream:trace\n/);
  t.notRegex(agent.output(), /starting Envoy epoch 1/);
  t.is((await serverInfo(adminPort)).epoch, 0);
  const levels = await (await fetch(`http://127.0.0.1:${adminPort}/logging`, { method: 'POST' })).text();
  t.regex(levels, /upstream: trace/);
  t.regex(levels, /admin: debug/);
});

test('a concurrency change in the proxy.istio.io/config annotation hot-restarts Envoy with the new --concurrency', async (t) => {
  const { agent, adminPort, root } = await startAgentWithEnvoy(t);
  await waitForLiveEpoch(adminPort, 0);
  t.notRegex(agent.output(), /--concurrency/);
  await updatePodInfo(root, {
    labels: 'app="productpage"\nversion="v1"\n',
    annotations: 'proxy.istio.io/config="concurrency: 3\\n"\n',
  });
  await waitForLiveEpoch(adminPort, 1);
  t.regex(agent.output(), /starting Envoy epoch 1 \(inputs changed\): .*--concurrency 3/);
});

test('a new epoch that fails leaves its parent serving, and the restart is retried until it succeeds', async (t) => {
  const marker = `${tmpdir()}/standin-fault-${process.pid}-${Date.now()}`;
  t.teardown(() => rm(marker, { force: true }));
  const { agent, adminPort, root } = await startAgentWithEnvoy(t, {
    // Only the first process of epoch 1 fails; its retry behaves.
    environment: {
      ENVOY_STANDIN_FAULT_EPOCHS: '1',
      ENVOY_STANDIN_FAULT_ONCE: marker,
      ENVOY_STANDIN_CRASH_AFTER_MS: '0',
      ENVOY_STANDIN_CRASH_EXIT_CODE: '1',
    },
  });
  await waitForLiveEpoch(adminPort, 0);
  await updatePodInfo(root, { labels: 'app="productpage"\nversion="v2"\n', annotations: '' });
  await agent.waitForOutput(
    'the failure of epoch 1',
    /new Envoy epoch 1 failed \(exit code 1\) while epoch 0 keeps serving; bootstrap .*envoy-rev\.json; retrying in 200 ms/,
  );
  // The parent never stopped serving while its child failed; the retry is epoch 1 again, whose parent is 0.
  t.deepEqual(await serverInfo(adminPort), { state: 'LIVE', epoch: 0 });
  await waitForLiveEpoch(adminPort, 1);
  t.is(agent.matches(/starting Envoy epoch 1 /g).length, 2);
  t.like((await readBootstrap(root)).node.metadata, { LABELS: { version: 'v2' } });
});

test('an Envoy that keeps crashing spends the restart budget and the agent exits non-zero', async (t) => {
  const { agent } = await startAgentWithEnvoy(t, {
    environment: {
      ENVOY_STANDIN_CRASH_AFTER_MS: '0',
      ENVOY_STANDIN_CRASH_EXIT_CODE: 'SIGSEGV',
      ENVOY_RESTART_BUDGET: '3',
      ENVOY_RESTART_INITIAL_BACKOFF: '20ms',
    },
  });
  const exit = await agent.exited;
  t.is(exit.exitCode, 2, agent.output());
  t.is(
    agent
      .matches(/retrying in (\d+) ms/g)
      .map((match) => Number(match[1]))
      .join(','),
    '20,40,80',
  );
  t.regex(agent.output(), /restart budget exhausted after 3 retries/);
  t.regex(
    agent.output(),
    /starting Envoy epoch 0 \(the serving epoch died, cold\)|starting Envoy epoch \d+ \(the serving epoch died/,
  );
});

test('SIGTERM drains the inbound listeners, waits terminationDrainDuration, then stops Envoy and exits 0', async (t) => {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const controlPlane = await startControlPlane(t, root);
  const adminLog = root.resolve('admin-requests.jsonl');
  const eventLog = root.resolve('envoy-events.jsonl');
  const agent = await startAgent(
    t,
    root,
    {
      PILOT_CERT_PROVIDER: 'none',
      ENVOY_STANDIN_ADMIN_REQUEST_LOG: adminLog,
      ENVOY_STANDIN_EVENT_LOG: eventLog,
    },
    { proxyConfig: { ...controlPlane.proxyConfig, ...fastDrainProxyConfig, terminationDrainDuration: '1s' } },
  );
  await waitForLiveEpoch(agent.ports.proxyAdmin, 0);
  const signalledAt = Date.now();
  const exit = await agent.stop('SIGTERM');
  t.is(exit.exitCode, 0, agent.output());
  const requests = (await readFile(adminLog, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  const drain = requests.find(
    (request) => request.method === 'POST' && request.path.startsWith('/drain_listeners'),
  );
  t.truthy(drain, JSON.stringify(requests));
  t.is(drain.path, '/drain_listeners?inboundonly&graceful');
  const events = (await readFile(eventLog, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  const exitEvent = events.find((event) => event.event === 'exit');
  t.truthy(exitEvent, JSON.stringify(events));
  const drainedAt = Date.parse(drain.time);
  t.true(drainedAt >= signalledAt - 5, 'the drain starts after the signal');
  t.true(
    Date.parse(exitEvent.time) - drainedAt >= 1000,
    'Envoy is stopped only after terminationDrainDuration',
  );
  const order = [
    'received SIGTERM',
    'Envoy is draining its inbound listeners',
    'waiting 1000 ms',
    'Envoy epoch 0 exited',
    'pilot-agent stopped',
  ];
  const positions = order.map((text) => agent.output().indexOf(text));
  t.deepEqual(
    positions.toSorted((a, b) => a - b),
    positions,
    agent.output(),
  );
  t.false(positions.includes(-1));
});

test('no Envoy is left behind when the agent exits, nor when it is killed with SIGKILL', async (t) => {
  const first = await startAgentWithEnvoy(t);
  const second = await startAgentWithEnvoy(t);
  await waitForLiveEpoch(first.adminPort, 0);
  await waitForLiveEpoch(second.adminPort, 0);
  const firstEnvoy = await epochPid(first.agent, 0);
  const secondEnvoy = await epochPid(second.agent, 0);

  t.is((await first.agent.stop('SIGTERM')).exitCode, 0);
  t.false(await isRunning(firstEnvoy));

  await second.agent.stop('SIGKILL');
  // Envoy notices its parent died (Envoy by PR_SET_PDEATHSIG, the stand-in by polling) and exits.
  await waitFor('the orphaned Envoy to exit', async () => !(await isRunning(secondEnvoy)));
  t.pass();
});

test('two agents side by side run their own Envoys with their own base ids and hot restarts', async (t) => {
  const first = await startAgentWithEnvoy(t);
  const second = await startAgentWithEnvoy(t);
  await waitForLiveEpoch(first.adminPort, 0);
  await waitForLiveEpoch(second.adminPort, 0);
  const baseIds = await Promise.all(
    [first, second].map(async ({ root }) =>
      (await readFile(root.resolve('etc/istio/proxy/envoy-base-id'), 'utf8')).trim(),
    ),
  );
  t.not(baseIds[0], baseIds[1]);
  await updatePodInfo(first.root, { labels: 'app="productpage"\nversion="v9"\n', annotations: '' });
  await waitForLiveEpoch(first.adminPort, 1);
  t.deepEqual(await serverInfo(second.adminPort), { state: 'LIVE', epoch: 0 });
});
