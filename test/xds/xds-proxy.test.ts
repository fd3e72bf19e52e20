import test from 'ava';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { adsTypeUrls } from '../istiod/ads-service.ts';
import { startTlsObservingRelay } from './tls-relay.ts';
import {
  bootstrapNodeId,
  clusterId,
  configFor,
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
