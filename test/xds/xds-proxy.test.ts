import { status } from '@grpc/grpc-js';
import test from 'ava';
import type { StreamClosure } from '../../agent/xds/xds-proxy.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { adsTypeUrls } from '../istiod/ads-service.ts';
import { TestCertificateAuthority } from '../istiod/certificate-authority.ts';
import { startTlsObservingRelay } from './tls-relay.ts';
import {
  bootstrapNodeId,
  clusterId,
  configFor,
  envoyReadiness,
  istioToken,
  liveResources,
  nodeId,
  podRoot,
  startEnvoy,
  startIstiodWithAds,
  startProxy,
  waitForLive,
} from './xds-fixture.ts';

for (const delta of [false, true]) {
  const protocol = delta ? 'Delta' : 'SotW';
  test(`${protocol}: Envoy reaches LIVE through the proxy; istiod sees TLS, the token, ClusterID, XDS_HEADER_* and the node`, async (t) => {
    const root = await podRoot(t);
    const { istiod, ads } = await startIstiodWithAds(t, root, { resources: liveResources(await freePort()) });
    // istiod is reached through a relay that reads the ClientHello on the wire.
    const relay = await startTlsObservingRelay(t, istiod.port);
    const config = await configFor(root, `localhost:${relay.port}`, {
      ISTIO_DELTA_XDS: String(delta),
      XDS_HEADER_x_tenant: 'blue',
      XDS_HEADER_istio_revision: 'canary',
    });
    const { proxy, metric } = await startProxy(t, config);
    const connected: number[] = [];
    proxy.on('istiod-connected', (stream) => connected.push(stream.id));
    await startEnvoy(t, root, config);
    await waitForLive(config);
    await ads.waitForRequest((request) => request.typeUrl === adsTypeUrls.listener && request.kind === 'ack');

    const [stream] = ads.streams;
    t.is(ads.streams.length, 1);
    t.is(stream?.protocol, delta ? 'delta' : 'sotw');
    t.is(stream?.nodeId, nodeId);
    t.is(stream?.nodeId, await bootstrapNodeId(config));
    t.deepEqual(stream?.metadata.authorization, [`Bearer ${istioToken}`]);
    t.deepEqual(stream?.metadata.clusterid, [clusterId]);
    t.deepEqual(stream?.metadata.x_tenant, ['blue']);
    t.deepEqual(stream?.metadata.istio_revision, ['canary']);
    const [call] = istiod.serviceCalls;
    t.is(
      call?.path,
      `/envoy.service.discovery.v3.AggregatedDiscoveryService/${delta ? 'Delta' : 'Stream'}AggregatedResources`,
    );
    t.is(call?.outcome, 'OK');
    t.is(relay.connections.length, 1);
    t.like(relay.connections[0], { tls: true, serverName: 'istiod.istio-system.svc' });
    t.true((relay.connections[0]?.offeredVersions.length ?? 0) > 0);
    t.true(
      relay.connections[0]?.offeredVersions.every(
        (version) => version === 'TLSv1.2' || version === 'TLSv1.3',
      ),
      `offered ${relay.connections[0]?.offeredVersions.join(', ')}`,
    );

    t.deepEqual(connected, [1]);
    t.like(proxy.status, { listening: true, envoyStreams: 1, istiodStreams: 1, upstreamConnected: true });
    // CDS request, CDS ACK, LDS request, LDS ACK went up; CDS and LDS came down.
    await waitFor(
      'the LDS ACK to be counted',
      async () => (await metric('istio_agent_xds_proxy_requests')) >= 4,
    );
    t.is(await metric('istio_agent_xds_proxy_responses'), 2);
    t.is(await metric('istio_agent_istiod_connection_failures'), 0);
  });
}

test('an istiod restart mid-stream is survived: Envoy re-subscribes through the proxy on a new upstream stream', async (t) => {
  const root = await podRoot(t);
  const certificateAuthority = await TestCertificateAuthority.create();
  const resources = liveResources(await freePort());
  const first = await startIstiodWithAds(t, root, { resources, certificateAuthority });
  const config = await configFor(root, first.istiod.address, { ISTIO_DELTA_XDS: 'false' });
  const { proxy, metric } = await startProxy(t, config);
  const closures: StreamClosure[] = [];
  proxy.on('stream-closed', (_stream, closure) => closures.push(closure));
  await startEnvoy(t, root, config);
  await waitForLive(config);
  await first.ads.waitForRequest(
    (request) => request.typeUrl === adsTypeUrls.listener && request.kind === 'ack',
  );
  const requestsBefore = await metric('istio_agent_xds_proxy_requests');
  const responsesBefore = await metric('istio_agent_xds_proxy_responses');
  t.is(await metric('istio_agent_istiod_connection_terminations'), 0);

  await first.istiod.stop();
  const second = await startIstiodWithAds(t, root, {
    resources,
    certificateAuthority,
    port: first.istiod.port,
  });
  await second.ads.waitForRequest(
    (request) => request.typeUrl === adsTypeUrls.listener && request.kind === 'ack',
    30_000,
  );

  t.deepEqual(second.ads.nodeIds, [nodeId], 'the same node subscribed again');
  const [cds] = second.ads.streams[0]?.requests ?? [];
  t.is(cds?.typeUrl, adsTypeUrls.cluster);
  t.is(cds?.versionInfo, '1', 'Envoy re-subscribes with the version it holds');
  t.true((await metric('istio_agent_istiod_connection_terminations')) >= 1);
  t.true((await metric('istio_agent_xds_proxy_requests')) >= requestsBefore + 4);
  t.true((await metric('istio_agent_xds_proxy_responses')) >= responsesBefore + 2);
  t.is(closures[0]?.endedBy, 'istiod', 'the first stream was ended by istiod, and Envoy was told');
  t.is(await metric('istio_agent_envoy_connection_terminations'), 0, 'Envoy never gave up its side');
  await waitFor('the new upstream stream', () => proxy.status.upstreamConnected);
  t.is((await envoyReadiness(config)).body, 'LIVE');
});

test('a wrong token is reported clearly (log line naming the token file, counter) and Envoy does not become LIVE', async (t) => {
  const root = await podRoot(t);
  const { istiod, ads } = await startIstiodWithAds(t, root, { resources: liveResources(await freePort()) });
  await root.write('var/run/secrets/tokens/istio-token', 'a-token-istiod-does-not-accept');
  const config = await configFor(root, istiod.address);
  const { proxy, lines, metric } = await startProxy(t, config);
  const closures: StreamClosure[] = [];
  proxy.on('stream-closed', (_stream, closure) => closures.push(closure));
  await startEnvoy(t, root, config);

  // Envoy is refused, retries after its backoff, and is refused again.
  await waitFor('two refused streams', () => closures.length >= 2, { timeoutMilliseconds: 20_000 });
  const rejection = lines.find((line) => line.includes('rejected the XDS stream'));
  t.truthy(rejection, lines.join(''));
  t.regex(rejection ?? '', /\terror\txdsproxy\t/);
  t.true(rejection?.includes('UNAUTHENTICATED: authenticate failure: the token is not valid'), rejection);
  t.true(rejection?.includes(config.paths.tokenFile), rejection);
  t.true((await metric('istio_agent_istiod_connection_terminations', { type: 'error' })) >= 2);
  t.like(closures[0], { endedBy: 'istiod', code: status.UNAUTHENTICATED, authenticationFailure: true });
  t.like(proxy.status.lastFailure, { code: status.UNAUTHENTICATED, authenticationFailure: true });
  t.deepEqual(
    [...new Set(istiod.serviceCalls.map((call) => call.outcome))],
    ['UNAUTHENTICATED'],
    'nothing reached the ADS service',
  );
  t.is(ads.streams.length, 0);
  const readiness = await envoyReadiness(config);
  t.is(readiness.status, 503);
  t.is(readiness.body, 'PRE_INITIALIZING', 'no CDS ever arrived');

  // The token is read for every stream: once the kubelet writes a good one, Envoy gets through.
  await root.write('var/run/secrets/tokens/istio-token', istioToken);
  await waitForLive(config);
  t.deepEqual(ads.nodeIds, [nodeId]);
});
