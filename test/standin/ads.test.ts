import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import test, { type ExecutionContext } from 'ava';
import { type AdsRequestRecord, AdsService, adsTypeUrls } from '../istiod/ads-service.ts';
import {
  adminGet,
  baseBootstrap,
  freePort,
  readJsonLines,
  startStandin,
  staticCluster,
  statValue,
  type TestRoot,
  temporaryRoot,
  waitFor,
  waitForLive,
  writeBootstrap,
} from './harness.ts';

/** An ADS server on a Unix socket, like the agent's XDS proxy socket. */
async function startAdsServer(t: ExecutionContext, socketPath: string, service: AdsService): Promise<Server> {
  await mkdir(path.dirname(socketPath), { recursive: true });
  const server = new Server();
  service.addTo(server);
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(error) : resolve(port),
    ),
  );
  t.teardown(() => server.forceShutdown());
  return server;
}

/** Istio's dynamic_resources and xds-grpc cluster, with the relative pipe path Istio uses. */
async function adsBootstrap(
  root: TestRoot,
  adminPort: number,
  apiType: 'GRPC' | 'DELTA_GRPC',
  initialFetchTimeout = '0s',
): Promise<string> {
  const bootstrap = baseBootstrap(adminPort);
  bootstrap.static_resources = {
    listeners: [],
    clusters: [staticCluster('xds-grpc', { pipe: { path: './etc/istio/proxy/XDS' } }, true)],
  };
  bootstrap.dynamic_resources = {
    lds_config: { ads: {}, initial_fetch_timeout: initialFetchTimeout, resource_api_version: 'V3' },
    cds_config: { ads: {}, initial_fetch_timeout: initialFetchTimeout, resource_api_version: 'V3' },
    ads_config: {
      api_type: apiType,
      set_node_on_first_message_only: true,
      transport_api_version: 'V3',
      grpc_services: [
        {
          envoy_grpc: { cluster_name: 'xds-grpc' },
          initial_metadata: [{ key: 'x-standin-test', value: 'yes' }],
        },
      ],
    },
  };
  return writeBootstrap(root, bootstrap, 'etc/istio/proxy/envoy-rev.json');
}

const cluster = (name: string) => ({
  name,
  resource: { '@type': adsTypeUrls.cluster, name, type: 'EDS', connect_timeout: { seconds: 10 } },
});
const listener = (name: string, port: number) => ({
  name,
  resource: {
    '@type': adsTypeUrls.listener,
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
  },
});

const describe = (request: AdsRequestRecord) =>
  `${request.typeUrl.replace(/^.*\./, '')} ${request.kind}${request.protocol === 'sotw' ? ` ${request.versionInfo}` : ''}`;

for (const apiType of ['GRPC', 'DELTA_GRPC'] as const) {
  test(`ADS ${apiType}: CDS then LDS, ACKed, then LIVE with workers started`, async (t) => {
    const root = await temporaryRoot(t);
    const adminPort = await freePort();
    const service = new AdsService({
      resources: {
        [adsTypeUrls.cluster]: [cluster('outbound|80||reviews.default.svc.cluster.local')],
        [adsTypeUrls.listener]: [listener('virtualInbound', 15006)],
      },
    });
    service.holdResponses(adsTypeUrls.listener);
    await startAdsServer(t, root.resolve('etc/istio/proxy/XDS'), service);
    const file = await adsBootstrap(root, adminPort, apiType);
    const events = root.resolve('events.jsonl');
    startStandin(t, ['-c', file, '--disable-hot-restart'], {
      cwd: root.directory,
      environment: { ENVOY_STANDIN_EVENT_LOG: events },
    });

    // LDS is held: the cluster manager is done, the init manager is not.
    await service.waitForRequest((request) => request.typeUrl === adsTypeUrls.listener);
    await waitFor(
      'INITIALIZING',
      async () => (await adminGet(adminPort, '/ready')).body === 'INITIALIZING\n',
    );
    t.is((await adminGet(adminPort, '/ready')).status, 503);
    t.is(await statValue(adminPort, 'server.state'), 3);
    t.is(await statValue(adminPort, 'listener_manager.workers_started'), 0);
    service.releaseResponses(adsTypeUrls.listener);
    await waitForLive(adminPort);
    await service.waitForRequest(
      (request) => request.typeUrl === adsTypeUrls.listener && request.kind === 'ack',
    );

    const [stream] = service.streams;
    t.is(stream?.protocol, apiType === 'GRPC' ? 'sotw' : 'delta');
    t.deepEqual(service.nodeIds, ['sidecar~10.1.2.3~app-1.default~default.svc.cluster.local']);
    t.deepEqual(stream?.metadata['x-standin-test'], ['yes']);
    t.is(stream?.node?.user_agent_name, 'envoy');
    const version = apiType === 'GRPC' ? '' : '';
    t.deepEqual(
      service.requests.map(describe),
      apiType === 'GRPC'
        ? [`Cluster request ${version}`, 'Cluster ack 1', `Listener request ${version}`, 'Listener ack 1']
        : ['Cluster request', 'Cluster ack', 'Listener request', 'Listener ack'],
    );
    t.truthy(service.requests[0]?.node, 'the first request carries the node');
    t.is(service.requests[1]?.node, undefined, 'set_node_on_first_message_only');

    const counters = await adminGet(
      adminPort,
      '/stats?usedonly&filter=^(cluster_manager\\.cds|listener_manager\\.lds)\\.(update_success|update_rejected)$',
    );
    t.is(counters.body, 'cluster_manager.cds.update_success: 1\nlistener_manager.lds.update_success: 1\n');
    t.is(await statValue(adminPort, 'listener_manager.workers_started'), 1);
    t.is(await statValue(adminPort, 'cluster_manager.active_clusters'), 2);
    t.is(await statValue(adminPort, 'control_plane.connected_state'), 1);
    t.regex((await adminGet(adminPort, '/listeners')).body, /^virtualInbound::0\.0\.0\.0:15006$/m);
    const states = readJsonLines(events)
      .filter((entry) => entry.event === 'state')
      .map((entry) => entry.state);
    t.deepEqual(states, ['INITIALIZING', 'LIVE']);

    // A push of a new version is applied and ACKed.
    service.setResources(adsTypeUrls.cluster, [cluster('a'), cluster('b')]);
    await waitFor(
      'the second CDS update',
      async () => (await statValue(adminPort, 'cluster_manager.cds.update_success')) === 2,
    );
    t.is(await statValue(adminPort, 'cluster_manager.active_clusters'), 3);
  });

  test(`ADS ${apiType}: a dropped stream is re-opened and every type re-requested`, async (t) => {
    const root = await temporaryRoot(t);
    const adminPort = await freePort();
    const service = new AdsService({ resources: { [adsTypeUrls.cluster]: [cluster('c1')] } });
    await startAdsServer(t, root.resolve('etc/istio/proxy/XDS'), service);
    startStandin(t, ['-c', await adsBootstrap(root, adminPort, apiType), '--disable-hot-restart'], {
      cwd: root.directory,
    });
    await waitForLive(adminPort);
    await service.waitForRequest(
      (request) => request.typeUrl === adsTypeUrls.listener && request.kind === 'ack',
    );

    t.is(service.dropStreams(), 1);
    await waitFor(
      'a second stream',
      () => service.streams.length === 2 && (service.streams[1]?.requests.length ?? 0) >= 2,
    );
    const [cds, lds] = service.streams[1]?.requests ?? [];
    t.is(cds?.typeUrl, adsTypeUrls.cluster);
    t.is(lds?.typeUrl, adsTypeUrls.listener);
    t.is(cds?.kind, 'request');
    if (apiType === 'GRPC') t.is(cds?.versionInfo, '1', 'SotW re-requests with the last accepted version');
    else
      t.deepEqual(cds?.initialResourceVersions, { c1: '1' }, 'Delta re-requests with the versions it holds');
    t.truthy(cds?.node, 'the node goes on the first request of every stream');
    t.is(await statValue(adminPort, 'cluster_manager.cds.update_failure'), 1);
    t.is((await adminGet(adminPort, '/ready')).status, 200, 'a lost control plane does not change readiness');
  });
}

test('ADS: a rejected response is NACKed, counted as update_rejected, and still completes initialization', async (t) => {
  const root = await temporaryRoot(t);
  const adminPort = await freePort();
  const service = new AdsService({ resources: { [adsTypeUrls.cluster]: [cluster('')] } });
  await startAdsServer(t, root.resolve('etc/istio/proxy/XDS'), service);
  startStandin(t, ['-c', await adsBootstrap(root, adminPort, 'GRPC'), '--disable-hot-restart'], {
    cwd: root.directory,
  });
  await waitForLive(adminPort);
  const nack = await service.waitForRequest((request) => request.kind === 'nack');
  t.is(nack.typeUrl, adsTypeUrls.cluster);
  t.is(nack.versionInfo, '', 'a NACK carries the last accepted version');
  t.is(nack.errorDetail?.code, 13);
  t.regex(nack.errorDetail?.message ?? '', /ClusterValidationError\.Name/);
  const counters = await adminGet(
    adminPort,
    '/stats?usedonly&filter=^(cluster_manager\\.cds|listener_manager\\.lds)\\.(update_success|update_rejected)$',
  );
  t.is(counters.body, 'cluster_manager.cds.update_rejected: 1\nlistener_manager.lds.update_success: 1\n');

  service.setResources(adsTypeUrls.cluster, [cluster('fixed')]);
  await waitFor(
    'the fixed CDS update',
    async () => (await statValue(adminPort, 'cluster_manager.cds.update_success')) === 1,
  );
});

test('ADS: PRE_INITIALIZING while the control plane is away; initial_fetch_timeout lets Envoy go LIVE', async (t) => {
  const root = await temporaryRoot(t);
  const adminPort = await freePort();
  startStandin(
    t,
    ['-c', await adsBootstrap(root, adminPort, 'DELTA_GRPC', '0.5s'), '--disable-hot-restart'],
    {
      cwd: root.directory,
    },
  );
  const first = await waitFor('the admin port', () => adminGet(adminPort, '/ready'));
  t.deepEqual([first.status, first.body], [503, 'PRE_INITIALIZING\n']);
  await waitForLive(adminPort);
  t.is(await statValue(adminPort, 'cluster_manager.cds.init_fetch_timeout'), 1);
  t.is(await statValue(adminPort, 'listener_manager.lds.init_fetch_timeout'), 1);
  t.is(await statValue(adminPort, 'cluster_manager.cds.update_success', true), undefined);
});
