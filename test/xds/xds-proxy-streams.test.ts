import { existsSync } from 'node:fs';
import { lstat, mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import path from 'node:path';
import {
  type ClientDuplexStream,
  credentials,
  type ServerDuplexStream,
  type StatusObject,
  status,
} from '@grpc/grpc-js';
import test from 'ava';
import { execa } from 'execa';
import { Registry } from 'prom-client';
import { createLogging } from '../../agent/log.ts';
import { OpaqueAdsClient } from '../../agent/xds/opaque-ads.ts';
import { type UpstreamFailure, XdsProxy } from '../../agent/xds/xds-proxy.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { freePort } from '../helpers/ports.ts';
import type { TemporaryRoot } from '../helpers/temporary-root.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { adsTypeUrls } from '../istiod/ads-service.ts';
import { TestCertificateAuthority } from '../istiod/certificate-authority.ts';
import { AdsTestClient } from './ads-test-client.ts';
import {
  configFor,
  nodeId,
  podRoot,
  startIstiodWithAds,
  startIstiodWithRawAds,
  startProxy,
} from './xds-fixture.ts';

/** The root the agent trusts, written before any istiod is up. */
async function writeIstiodRoot(root: TemporaryRoot): Promise<TestCertificateAuthority> {
  const certificateAuthority = await TestCertificateAuthority.create();
  await root.write('var/run/secrets/istio/root-cert.pem', certificateAuthority.rootCertPem);
  return certificateAuthority;
}

const cdsRequest = { node: { id: nodeId }, type_url: adsTypeUrls.cluster, resource_names: [] };

test('Envoy going away cancels the upstream stream, counted as an Envoy cancellation', async (t) => {
  const root = await podRoot(t);
  const { istiod, ads } = await startIstiodWithAds(t, root);
  const config = await configFor(root, istiod.address);
  const { proxy, metric } = await startProxy(t, config);
  const envoy = new AdsTestClient(t, config.paths.xdsSocket);
  envoy.send(cdsRequest);
  const [response] = await envoy.waitForResponses(1);
  t.like(response, { type_url: adsTypeUrls.cluster, version_info: '1' });
  t.is(ads.streams[0]?.nodeId, nodeId);
  t.true(ads.streams[0]?.open);
  t.like(proxy.status, { envoyStreams: 1, istiodStreams: 1, upstreamConnected: true });

  envoy.close();
  await waitFor('istiod to see its stream cancelled', () => ads.streams[0]?.open === false);
  await waitFor('the proxy to forget the stream', () => proxy.status.envoyStreams === 0);
  t.is(await metric('istio_agent_envoy_connection_terminations', { type: 'cancelled' }), 1);
  t.is(await metric('istio_agent_istiod_connection_terminations'), 0);
  t.is(await metric('istio_agent_xds_proxy_requests'), 1);
  t.is(await metric('istio_agent_xds_proxy_responses'), 1);
  t.false(proxy.status.upstreamConnected);
});

test('messages pass as opaque bytes both ways: nothing is decoded or re-encoded', async (t) => {
  const root = await podRoot(t);
  // Not valid protobuf: a proxy that decoded messages could not forward these.
  const request = Buffer.from([0xff, 0xff, 0xff, 0x07, 0x00, 0x01, 0x02]);
  const response = Buffer.from([0x0a, 0xff, 0x01, 0x99, 0x00]);
  const received: Buffer[] = [];
  const istiod = await startIstiodWithRawAds(t, root, {
    DeltaAggregatedResources: (call: ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (message: Buffer) => {
        received.push(message);
        call.write(response);
      });
    },
  });
  const config = await configFor(root, istiod.address);
  await startProxy(t, config);
  const client = new OpaqueAdsClient(`unix:${config.paths.xdsSocket}`, credentials.createInsecure());
  t.teardown(() => client.close());
  const stream: ClientDuplexStream<Buffer, Buffer> = client.DeltaAggregatedResources();
  t.teardown(() => stream.cancel());
  stream.on('error', () => {});
  const answers: Buffer[] = [];
  stream.on('data', (message: Buffer) => answers.push(message));
  stream.write(request);
  stream.write(Buffer.alloc(0));
  await waitFor('two answers', () => answers.length === 2);
  t.deepEqual(received, [request, Buffer.alloc(0)]);
  t.deepEqual(answers, [response, response]);
});

test('istiod unreachable: Envoy gets UNAVAILABLE, the failure is counted, and the next attempt waits for the backoff', async (t) => {
  const root = await podRoot(t);
  const istiodPort = await freePort();
  const certificateAuthority = await writeIstiodRoot(root);
  const config = await configFor(root, `localhost:${istiodPort}`);
  const clock = new ManualClock();
  const { proxy, metric, lines } = await startProxy(t, config, { clock, random: () => 0.5 });
  const failures: UpstreamFailure[] = [];
  proxy.on('istiod-connection-failed', (_stream, failure) => failures.push(failure));

  const first = new AdsTestClient(t, config.paths.xdsSocket);
  first.send(cdsRequest);
  const closed = await first.closed();
  t.is(closed.code, status.UNAVAILABLE);
  t.regex(closed.details, new RegExp(`^cannot reach istiod at localhost:${istiodPort}: .*ECONNREFUSED`));
  t.is(await metric('istio_agent_istiod_connection_failures'), 1);
  t.is(failures[0]?.retryInMilliseconds, 500);
  t.true(lines.some((line) => line.includes(`failed to connect to upstream localhost:${istiodPort}`)));
  t.like(proxy.status, { consecutiveFailures: 1, upstreamConnected: false });

  // istiod comes up; a new Envoy stream still waits out the backoff before dialling it.
  const { istiod, ads } = await startIstiodWithAds(t, root, { port: istiodPort, certificateAuthority });
  const second = new AdsTestClient(t, config.paths.xdsSocket);
  second.send(cdsRequest);
  await waitFor('the second stream to wait for the backoff', () => clock.pendingDelays.includes(500));
  t.is(istiod.serviceCalls.length, 0, 'istiod not dialled during the backoff');
  clock.advance(500);
  await second.waitForResponses(1);
  t.deepEqual(ads.nodeIds, [nodeId]);
  t.like(proxy.status, { consecutiveFailures: 0, upstreamConnected: true });
  t.is(await metric('istio_agent_istiod_connection_failures'), 1);
});

test('an istiod that accepts connections but never completes the handshake times out into UNAVAILABLE', async (t) => {
  const root = await podRoot(t);
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const port = (silent.address() as { port: number }).port;
  await writeIstiodRoot(root);
  const config = await configFor(root, `localhost:${port}`);
  const { metric } = await startProxy(t, config, { connectTimeoutMilliseconds: 300 });
  const envoy = new AdsTestClient(t, config.paths.xdsSocket);
  envoy.send(cdsRequest);
  const closed = await envoy.closed();
  t.is(closed.code, status.UNAVAILABLE);
  t.regex(closed.details, new RegExp(`no connection to istiod at localhost:${port} within 300 ms`));
  t.is(await metric('istio_agent_istiod_connection_failures'), 1);
});

test('a stale socket left by an earlier agent is replaced; anything else at the path is an error naming it', async (t) => {
  const root = await podRoot(t);
  const { istiod } = await startIstiodWithAds(t, root);
  const config = await configFor(root, istiod.address);
  const socketPath = config.paths.xdsSocket;
  await mkdir(path.dirname(socketPath), { recursive: true });
  // A process that dies while listening leaves its socket file behind.
  await execa(process.execPath, [
    '-e',
    "require('node:net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))",
    socketPath,
  ]).catch(() => {});
  t.true((await lstat(socketPath)).isSocket());
  const { proxy } = await startProxy(t, config);
  const envoy = new AdsTestClient(t, socketPath);
  envoy.send(cdsRequest);
  await envoy.waitForResponses(1);
  t.is(((await lstat(socketPath)).mode & 0o777).toString(8), '666');
  await proxy.stop();
  t.false(existsSync(socketPath), 'the socket is removed on stop');

  await writeFile(socketPath, 'not a socket');
  const blocked = new XdsProxy({
    config,
    logging: createLogging({ levels: {}, asJson: false, destination: { write: () => {} } }),
    registry: new Registry(),
  });
  await t.throwsAsync(blocked.start(), {
    message: `XDS proxy socket path ${socketPath} exists and is not a socket`,
  });
});

for (const ending of ['OK', 'RESOURCE_EXHAUSTED'] as const) {
  test(`istiod ending its stream with ${ending} ends Envoy's with the same status, after the responses in order`, async (t) => {
    const root = await podRoot(t);
    const istiod = await startIstiodWithRawAds(t, root, {
      StreamAggregatedResources: (call: ServerDuplexStream<Buffer, Buffer>) => {
        call.once('data', () => {
          for (let index = 0; index < 50; index += 1) call.write(Buffer.from([0x22, 1, index]));
          if (ending === 'OK') call.end();
          else call.emit('error', { code: status.RESOURCE_EXHAUSTED, details: 'istiod is overloaded' });
        });
      },
    });
    const config = await configFor(root, istiod.address);
    const { metric, proxy } = await startProxy(t, config);
    const client = new OpaqueAdsClient(`unix:${config.paths.xdsSocket}`, credentials.createInsecure());
    t.teardown(() => client.close());
    const stream = client.StreamAggregatedResources();
    const answers: number[] = [];
    stream.on('data', (message: Buffer) => answers.push(message[2] ?? -1));
    stream.on('error', () => {});
    const finalStatus = new Promise<StatusObject>((resolve) => stream.on('status', resolve));
    // grpc-js reports an error status as soon as it arrives; messages before it are read until 'end'.
    const ended = new Promise<void>((resolve) => stream.on('end', resolve));
    stream.write(Buffer.from([0x22, 0]));
    const [received] = await Promise.all([finalStatus, ended]);
    const sent = Array.from({ length: 50 }, (_, index) => index);
    if (ending === 'OK') {
      t.is(received.code, status.OK);
      t.deepEqual(answers, sent, 'every response, in order, before the end');
      t.is(await metric('istio_agent_istiod_connection_terminations', { type: 'cancelled' }), 1);
      t.is(await metric('istio_agent_xds_proxy_responses'), 50);
    } else {
      t.is(received.code, status.RESOURCE_EXHAUSTED);
      t.is(received.details, 'istiod is overloaded');
      // gRPC drops messages still unread when an error status arrives (Envoy re-subscribes anyway).
      t.deepEqual(answers, sent.slice(0, answers.length), 'the responses delivered are in order');
      t.is(await metric('istio_agent_istiod_connection_terminations', { type: 'error' }), 1);
    }
    await waitFor('the stream to be forgotten', () => proxy.status.envoyStreams === 0);
    t.is(await metric('istio_agent_envoy_connection_terminations'), 0);
  });
}

test('istiod’s certificate is verified on the XDS path: a root that did not sign it fails the connection', async (t) => {
  const root = await podRoot(t);
  const { istiod, ads } = await startIstiodWithAds(t, root);
  // The agent trusts another CA than the one that issued istiod's serving certificate.
  await writeIstiodRoot(root);
  const config = await configFor(root, istiod.address);
  const { metric } = await startProxy(t, config);
  const envoy = new AdsTestClient(t, config.paths.xdsSocket);
  envoy.send(cdsRequest);
  const closed = await envoy.closed();
  t.is(closed.code, status.UNAVAILABLE);
  t.regex(closed.details, /certificate/i);
  t.is(await metric('istio_agent_istiod_connection_failures'), 1);
  t.is(istiod.serviceCalls.length, 0);
  t.is(ads.streams.length, 0);
});

test('stop() ends Envoy’s streams with UNAVAILABLE, cancels istiod’s and removes the socket', async (t) => {
  const root = await podRoot(t);
  const { istiod, ads } = await startIstiodWithAds(t, root);
  const config = await configFor(root, istiod.address);
  const { proxy } = await startProxy(t, config);
  const envoy = new AdsTestClient(t, config.paths.xdsSocket, 'DeltaAggregatedResources');
  envoy.send({ node: { id: nodeId }, type_url: adsTypeUrls.cluster });
  await envoy.waitForResponses(1);
  t.is(ads.streams[0]?.protocol, 'delta');
  await proxy.stop();
  const closed = await envoy.closed();
  t.is(closed.code, status.UNAVAILABLE);
  t.is(closed.details, 'the agent is shutting down');
  await waitFor('istiod to see its stream end', () => ads.streams[0]?.open === false);
  t.false(existsSync(config.paths.xdsSocket));
  t.false(proxy.status.listening);
});
