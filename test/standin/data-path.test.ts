import { createServer, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import test from 'ava';
import {
  adminGet,
  baseBootstrap,
  freePort,
  httpListener,
  httpRequest,
  socketAddress,
  startStandin,
  staticCluster,
  statValue,
  temporaryRoot,
  waitFor,
  waitForLive,
  writeBootstrap,
} from './harness.ts';

/** A stand-in for the agent's status server: records requests, answers with a settable status. */
async function fakeAgent(t: import('ava').ExecutionContext, listen: { port: number } | { path: string }) {
  const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  let status = 503;
  const server = createServer((request, response) => {
    seen.push({ url: request.url ?? '', headers: request.headers });
    response.writeHead(status, { 'content-type': 'text/plain', server: 'istio-agent' });
    response.end(status === 200 ? '' : 'Envoy proxy is NOT ready');
  });
  await new Promise<void>((resolve) =>
    'port' in listen ? server.listen(listen.port, '127.0.0.1', resolve) : server.listen(listen.path, resolve),
  );
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    seen,
    setStatus(value: number) {
      status = value;
    },
  };
}

test("Istio's bootstrap listeners proxy to the admin port and to the agent, over TCP and pipes", async (t) => {
  const root = await temporaryRoot(t);
  const [adminPort, prometheusPort, statusPort, agentPort, deadPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const agent = await fakeAgent(t, { port: agentPort });
  const pipe = root.resolve('agent.sock');
  const pipeAgent = await fakeAgent(t, { path: pipe });
  pipeAgent.setStatus(200);

  const bootstrap = baseBootstrap(adminPort);
  bootstrap.static_resources = {
    clusters: [
      staticCluster('prometheus_stats', socketAddress(adminPort)),
      staticCluster('agent', socketAddress(agentPort)),
      staticCluster('agent_pipe', { pipe: { path: pipe } }),
      staticCluster('dead', socketAddress(deadPort)),
    ],
    listeners: [
      httpListener(
        `0.0.0.0_${prometheusPort}`,
        prometheusPort,
        [{ prefix: '/stats/prometheus', cluster: 'prometheus_stats' }],
        {
          statPrefix: 'stats',
        },
      ),
      httpListener(
        `0.0.0.0_${statusPort}`,
        statusPort,
        [
          { prefix: '/healthz/ready', cluster: 'agent' },
          { path: '/pipe', cluster: 'agent_pipe' },
          { prefix: '/dead', cluster: 'dead' },
        ],
        { statPrefix: 'agent' },
      ),
    ],
  };
  const file = await writeBootstrap(root, bootstrap);
  startStandin(t, ['-c', file, '--disable-hot-restart']);
  await waitForLive(adminPort);

  const metrics = await httpRequest({ port: prometheusPort }, 'GET', '/stats/prometheus');
  t.is(metrics.status, 200);
  t.regex(metrics.body, /^envoy_server_state\{\} 0$/m);
  t.is(metrics.headers.server, 'envoy');
  t.regex(String(metrics.headers['x-envoy-upstream-service-time']), /^\d+$/);

  const notReady = await httpRequest({ port: statusPort }, 'GET', '/healthz/ready', {
    host: 'pod.local:15021',
  });
  t.deepEqual([notReady.status, notReady.body], [503, 'Envoy proxy is NOT ready']);
  t.is(notReady.headers.server, 'envoy', 'Envoy overwrites the upstream server header');
  agent.setStatus(200);
  t.is((await httpRequest({ port: statusPort }, 'GET', '/healthz/ready')).status, 200);
  const forwarded = agent.seen[0];
  t.is(forwarded?.url, '/healthz/ready');
  t.is(forwarded?.headers.host, 'pod.local:15021');
  t.is(forwarded?.headers['x-forwarded-proto'], 'http');
  t.regex(String(forwarded?.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  t.is(forwarded?.headers['x-envoy-expected-rq-timeout-ms'], '15000');

  t.is((await httpRequest({ port: statusPort }, 'GET', '/pipe?x=1')).status, 200);
  t.is(pipeAgent.seen[0]?.url, '/pipe?x=1');

  const noRoute = await httpRequest({ port: statusPort }, 'GET', '/elsewhere');
  t.deepEqual([noRoute.status, noRoute.body], [404, '']);
  t.is(await statValue(adminPort, 'http.agent.no_route'), 1);

  const dead = await httpRequest({ port: statusPort }, 'GET', '/dead');
  t.is(dead.status, 503);
  t.regex(
    dead.body,
    /^upstream connect error or disconnect\/reset before headers\. reset reason: remote connection failure/,
  );
  t.is(await statValue(adminPort, 'cluster.dead.upstream_cx_connect_fail'), 1);
  t.is(await statValue(adminPort, 'cluster.agent.upstream_rq_200'), 1);
  t.is(await statValue(adminPort, 'cluster.agent.upstream_rq_503'), 1);
  t.is(await statValue(adminPort, 'http.agent.downstream_rq_5xx'), 2);
});

test('listener.<address>.downstream_cx_active follows open connections', async (t) => {
  const root = await temporaryRoot(t);
  const [adminPort, listenerPort] = [await freePort(), await freePort()];
  const bootstrap = baseBootstrap(adminPort);
  bootstrap.static_resources = {
    clusters: [],
    listeners: [
      httpListener('inbound', listenerPort, [{ prefix: '/', directResponse: { status: 200, body: 'hi' } }]),
    ],
  };
  startStandin(t, ['-c', await writeBootstrap(root, bootstrap), '--disable-hot-restart']);
  await waitForLive(adminPort);
  const stat = `listener.0.0.0.0_${listenerPort}.downstream_cx_active`;
  t.is(await statValue(adminPort, stat), 0);

  const sockets = await Promise.all(
    [1, 2].map(
      () =>
        new Promise<ReturnType<typeof connect>>((resolve) => {
          const socket = connect(listenerPort, '127.0.0.1', () => resolve(socket));
        }),
    ),
  );
  await waitFor('two active connections', async () => (await statValue(adminPort, stat)) === 2);
  const usedOnly = await adminGet(adminPort, '/stats?usedonly&filter=downstream_cx_active$');
  t.regex(
    usedOnly.body,
    new RegExp(`^listener\\.0\\.0\\.0\\.0_${listenerPort}\\.downstream_cx_active: 2$`, 'm'),
  );
  for (const socket of sockets) socket.destroy();
  await waitFor('connections to be gone', async () => (await statValue(adminPort, stat)) === 0);
  t.is(await statValue(adminPort, `listener.0.0.0.0_${listenerPort}.downstream_cx_total`), 2);
});
