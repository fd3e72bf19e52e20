import { status } from '@grpc/grpc-js';
import test from 'ava';
import { Registry } from 'prom-client';
import type { Clock } from '../../agent/clock.ts';
import { CaClient, CertificateRequestError } from '../../agent/identity/ca-client.ts';
import { generateKeyAndCsr } from '../../agent/identity/key-and-csr.ts';
import { registerIdentityMetrics } from '../../agent/identity/metrics.ts';
import { createIstiodChannelFactory } from '../../agent/istiod/channel-factory.ts';
import { captureLogging } from '../helpers/captured-logging.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';
import { TestIstiod } from '../istiod/test-istiod.ts';

const spiffeId = 'spiffe://cluster.local/ns/default/sa/ratings';

/** Real time for `now`, but backoff waits end at once; the requested delays are recorded. */
function instantClock(): Clock & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    now: () => Date.now(),
    setTimer(callback, delayMilliseconds) {
      delays.push(delayMilliseconds);
      const handle = setImmediate(callback);
      return { cancel: () => clearImmediate(handle) };
    },
  };
}

async function setUp(
  t: import('ava').ExecutionContext,
  extra: { certSigner?: string; headers?: Record<string, string> } = {},
) {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const tokenFile = await root.write('var/run/secrets/tokens/istio-token', 'the-token');
  const istiod = await TestIstiod.start({ rootCertFile: root.resolve('root-cert.pem'), tokenFile });
  t.teardown(() => istiod.stop());
  const registry = new Registry();
  const metrics = registerIdentityMetrics(registry, () => new Map());
  const clock = instantClock();
  const { logging, lines } = captureLogging();
  const client = new CaClient({
    openChannel: () =>
      createIstiodChannelFactory({
        address: istiod.address,
        addressSource: 'CA_ADDR',
        rootCertFile: root.resolve('root-cert.pem'),
        tokenFile,
        clusterId: 'Kubernetes',
        headers: extra.headers ?? {},
      }),
    clock,
    random: () => 0.5,
    logger: logging.scope('ca'),
    metrics,
    tokenFile,
    ...(extra.certSigner !== undefined ? { certSigner: extra.certSigner } : {}),
  });
  t.teardown(() => client.close());
  const csr = async () => (await generateKeyAndCsr({ kind: 'ECDSA', curve: 'P256' }, spiffeId, false)).csrPem;
  const metric = async (name: string) =>
    (await registry.getSingleMetric(name)?.get())?.values.find((value) => value.labels.request_type === 'csr')
      ?.value ?? 0;
  return { root, istiod, client, clock, csr, metric, lines };
}

test('sends the CSR with validity_duration, CertSigner, ClusterID, CA_HEADER_* headers and the token', async (t) => {
  const { istiod, client, csr, metric } = await setUp(t, {
    certSigner: 'clusterissuer',
    headers: { 'x-tenant': 'blue' },
  });
  const chain = await client.createCertificate(await csr(), 3600);
  t.is(chain.length, 2);
  const [recorded] = istiod.certificateRequests;
  t.like(recorded, {
    validitySeconds: 3600,
    certSigner: 'clusterissuer',
    clusterId: 'Kubernetes',
    authorization: 'Bearer the-token',
    csrUris: [spiffeId],
  });
  t.is(recorded?.headers['x-tenant'], 'blue');
  t.is(await metric('istio_agent_num_outgoing_requests'), 1);
  t.is(await metric('istio_agent_num_failed_outgoing_requests'), 0);
  t.is(await metric('istio_agent_num_outgoing_retries'), 0);
  t.true((await metric('istio_agent_outgoing_latency')) > 0);
});

test('retries UNAVAILABLE with exponential backoff from 100 ms and succeeds', async (t) => {
  const { istiod, client, clock, csr, metric } = await setUp(t);
  istiod.setCaFaults({ failFirst: 3 });
  const chain = await client.createCertificate(await csr(), 3600);
  t.is(chain.length, 2);
  t.deepEqual(clock.delays, [100, 200, 400]);
  t.is(istiod.certificateRequests.length, 4);
  t.is(await metric('istio_agent_num_outgoing_retries'), 3);
  t.is(await metric('istio_agent_num_outgoing_requests'), 1);
  t.is(await metric('istio_agent_num_failed_outgoing_requests'), 0);
});

test('gives up after five attempts with an error naming the target and the code', async (t) => {
  const { istiod, client, csr, metric } = await setUp(t);
  istiod.setCaFaults({ failFirst: 100 });
  const error = await t.throwsAsync(client.createCertificate(await csr(), 3600), {
    instanceOf: CertificateRequestError,
  });
  t.is(error?.code, status.UNAVAILABLE);
  t.regex(
    error?.message ?? '',
    /^CreateCertificate to localhost:\d+ \(TLS server name istiod\.istio-system\.svc\) failed after 5 attempts: UNAVAILABLE: injected fault: CA unavailable/,
  );
  t.is(istiod.certificateRequests.length, 5);
  t.is(await metric('istio_agent_num_outgoing_retries'), 4);
  t.is(await metric('istio_agent_num_failed_outgoing_requests'), 1);
});

test('does not retry PERMISSION_DENIED, and says where the token came from', async (t) => {
  const { root, istiod, client, csr } = await setUp(t);
  istiod.setCaFaults({ reject: { code: status.PERMISSION_DENIED, message: 'not allowed' } });
  const error = await t.throwsAsync(client.createCertificate(await csr(), 3600), {
    instanceOf: CertificateRequestError,
  });
  t.is(error?.code, status.PERMISSION_DENIED);
  t.true(
    error?.message.endsWith(
      `failed after 1 attempt: PERMISSION_DENIED: not allowed (istiod rejected the caller; the bearer token comes from ${root.resolve('var/run/secrets/tokens/istio-token')})`,
    ),
    error?.message,
  );
  t.is(istiod.certificateRequests.length, 1);
});

test('the retry log lines and errors never carry the CSR or the token', async (t) => {
  const { istiod, client, csr, lines } = await setUp(t);
  istiod.setCaFaults({ failFirst: 2 });
  const request = await csr();
  await client.createCertificate(request, 3600);
  const output = lines.join('');
  t.regex(output, /retrying in 100 ms/);
  t.false(output.includes('the-token'));
  t.false(output.includes('CERTIFICATE REQUEST'));
});
