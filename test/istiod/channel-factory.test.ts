import { rm } from 'node:fs/promises';
import {
  type Client,
  type ClientDuplexStream,
  makeGenericClientConstructor,
  type ServerDuplexStream,
  type ServiceDefinition,
  status,
} from '@grpc/grpc-js';
import test from 'ava';
import { buildAgentConfig, defaultProxyFlags } from '../../agent/config/agent-config.ts';
import {
  caChannelSettings,
  createIstiodChannelFactory,
  type IstiodChannelSettings,
  xdsChannelSettings,
} from '../../agent/istiod/channel-factory.ts';
import { istiodServerName, parseIstiodAddress } from '../../agent/istiod/server-name.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';
import { TestIstiod } from './test-istiod.ts';

test('the TLS server name is the host, localhost means istiod.istio-system.svc, ISTIOD_SAN overrides', (t) => {
  t.is(istiodServerName(parseIstiodAddress('CA_ADDR', 'localhost:15012')), 'istiod.istio-system.svc');
  t.is(
    istiodServerName(parseIstiodAddress('CA_ADDR', 'istiod-canary.istio-system.svc:15012')),
    'istiod-canary.istio-system.svc',
  );
  t.is(istiodServerName(parseIstiodAddress('CA_ADDR', 'localhost:15012'), 'istiod.custom'), 'istiod.custom');
  t.deepEqual(parseIstiodAddress('CA_ADDR', '[::1]:15012'), { host: '::1', port: 15012 });
  t.throws(() => parseIstiodAddress('CA_ADDR', 'istiod.istio-system.svc'), {
    message: /^CA_ADDR: "istiod.istio-system.svc" is not a host:port address/,
  });
});

test('settings come from the configuration: CA_ADDR with CA_HEADER_*, the discovery address with XDS_HEADER_*', (t) => {
  const config = buildAgentConfig({
    environment: {
      POD_NAMESPACE: 'default',
      CA_ADDR: 'istiod-ca.istio-system.svc:15012',
      CA_HEADER_X_CA: 'ca-value',
      XDS_HEADER_X_XDS: 'xds-value',
      ISTIO_META_CLUSTER_ID: 'east',
      ISTIOD_SAN: 'istiod.custom',
    },
    flags: defaultProxyFlags,
    workingDirectory: '/pod',
    readFile: () => undefined,
  });
  t.like(caChannelSettings(config), {
    address: 'istiod-ca.istio-system.svc:15012',
    rootCertFile: '/pod/var/run/secrets/istio/root-cert.pem',
    tokenFile: '/pod/var/run/secrets/tokens/istio-token',
    clusterId: 'east',
    istiodSan: 'istiod.custom',
  });
  t.deepEqual(caChannelSettings(config).headers, { X_CA: 'ca-value' });
  t.is(xdsChannelSettings(config).address, 'istiod.istio-system.svc:15012');
  t.deepEqual(xdsChannelSettings(config).headers, { X_XDS: 'xds-value' });
});

/** A bidirectional service answering each message with the headers its stream was opened with. */
const headerEchoDefinition: ServiceDefinition = {
  Watch: {
    path: '/test.HeaderEcho/Watch',
    requestStream: true,
    responseStream: true,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (value: Buffer) => value,
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (value: Buffer) => value,
  },
};

async function setUp(t: import('ava').ExecutionContext, servingNames: string[] = []) {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const istiod = await TestIstiod.start({ rootCertFile: root.resolve('root-cert.pem'), servingNames });
  t.teardown(() => istiod.stop());
  istiod.addService(headerEchoDefinition, {
    Watch: (call: ServerDuplexStream<Buffer, Buffer>) => {
      const headers = call.metadata.getMap();
      call.on('data', () => call.write(Buffer.from(JSON.stringify(headers))));
      call.on('end', () => call.end());
    },
  });
  const settings: IstiodChannelSettings = {
    address: istiod.address,
    addressSource: 'discoveryAddress',
    rootCertFile: root.resolve('root-cert.pem'),
    tokenFile: root.resolve('token'),
    clusterId: 'Kubernetes',
    headers: { 'x-xds-extra': 'yes' },
  };
  return { root, istiod, settings };
}

type HeaderEchoClient = Client & { Watch(): ClientDuplexStream<Buffer, Buffer> };
const HeaderEcho = makeGenericClientConstructor(headerEchoDefinition, 'HeaderEcho');

function roundTrip(stream: ClientDuplexStream<Buffer, Buffer>): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    stream.once('data', (data: Buffer) => resolve(JSON.parse(data.toString())));
    stream.once('error', reject);
    stream.write(Buffer.from('ping'));
  });
}

test('a stream carries the bearer token read when it opens, ClusterID and the extra headers', async (t) => {
  const { root, settings } = await setUp(t);
  const factory = await createIstiodChannelFactory(settings);
  t.is(factory.serverName, 'istiod.istio-system.svc');
  const client = factory.createClient(HeaderEcho) as unknown as HeaderEchoClient;
  t.teardown(() => client.close());

  const withoutToken = client.Watch();
  const first = await roundTrip(withoutToken);
  withoutToken.end();
  t.is(first.authorization, undefined, 'no token file, no authorization header');
  t.is(first.clusterid, 'Kubernetes');
  t.is(first['x-xds-extra'], 'yes');

  await root.write('token', '  token-one\n');
  const second = client.Watch();
  t.is((await roundTrip(second)).authorization, 'Bearer token-one');
  await root.write('token', 'token-two');
  const third = client.Watch();
  t.is((await roundTrip(third)).authorization, 'Bearer token-two', 'the token is re-read for each call');
  second.end();
  third.end();
});

test('ISTIOD_SAN names the certificate to expect; a name the certificate lacks fails the TLS handshake', async (t) => {
  const { settings } = await setUp(t, ['istiod.mesh.example']);
  const good = await createIstiodChannelFactory({ ...settings, istiodSan: 'istiod.mesh.example' });
  const goodClient = good.createClient(HeaderEcho) as unknown as HeaderEchoClient;
  t.teardown(() => goodClient.close());
  const stream = goodClient.Watch();
  t.is((await roundTrip(stream)).clusterid, 'Kubernetes');
  stream.end();

  const bad = await createIstiodChannelFactory({ ...settings, istiodSan: 'impostor.example' });
  const badClient = bad.createClient(HeaderEcho) as unknown as HeaderEchoClient;
  t.teardown(() => badClient.close());
  const error = await t.throwsAsync(roundTrip(badClient.Watch()));
  t.is((error as unknown as { code: number }).code, status.UNAVAILABLE);
});

test('a missing root certificate file is reported with its path', async (t) => {
  const { root, settings } = await setUp(t);
  await rm(root.resolve('root-cert.pem'));
  await t.throwsAsync(createIstiodChannelFactory(settings), {
    message: `istiod root certificate ${root.resolve('root-cert.pem')} cannot be read (ENOENT)`,
  });
  await root.write('root-cert.pem', 'not a certificate');
  await t.throwsAsync(createIstiodChannelFactory(settings), { message: /holds no PEM certificate/ });
});
