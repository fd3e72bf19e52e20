import { X509Certificate } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import test from 'ava';
import {
  type IstioCertificateClient,
  type IstioCertificateResponse,
  istioCertificateService,
} from '../../agent/identity/ca-service.ts';
import { certificateFacts } from '../../agent/identity/certificate-verification.ts';
import { generateKeyAndCsr } from '../../agent/identity/key-and-csr.ts';
import { createIstiodChannelFactory } from '../../agent/istiod/channel-factory.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';
import { TestIstiod } from './test-istiod.ts';

const spiffeId = 'spiffe://cluster.local/ns/default/sa/sleep';

async function startIstiod(t: import('ava').ExecutionContext, token = 'secret-token') {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  // The agent's projected token, and the one istiod accepts (kept apart so a test can make them differ).
  const tokenFile = await root.write('token', `${token}\n`);
  const acceptedTokenFile = await root.write('accepted-token', token);
  const istiod = await TestIstiod.start({
    rootCertFile: root.resolve('root-cert.pem'),
    tokenFile: acceptedTokenFile,
  });
  t.teardown(() => istiod.stop());
  const factory = await createIstiodChannelFactory({
    address: istiod.address,
    addressSource: 'CA_ADDR',
    rootCertFile: istiod.rootCertFile as string,
    tokenFile,
    clusterId: 'Kubernetes',
    headers: {},
  });
  const client = factory.createClient(istioCertificateService()) as unknown as IstioCertificateClient;
  t.teardown(() => client.close());
  const call = async (ttlSeconds = 3600) => {
    const { csrPem } = await generateKeyAndCsr({ kind: 'ECDSA', curve: 'P256' }, spiffeId, false);
    return new Promise<IstioCertificateResponse>((resolve, reject) =>
      client.CreateCertificate(
        { csr: csrPem, validity_duration: String(ttlSeconds), metadata: null },
        { deadline: Date.now() + 10_000 },
        (error, response) => (error ? reject(error) : resolve(response as IstioCertificateResponse)),
      ),
    );
  };
  return { root, istiod, call, tokenFile };
}

test('signs a CSR into [leaf, root] with the CSR SPIFFE URI and the requested TTL, and records the call', async (t) => {
  const { istiod, call } = await startIstiod(t);
  const before = Date.now();
  const response = await call(7200);
  t.is(response.cert_chain.length, 2);
  const leaf = certificateFacts(response.cert_chain[0] as string);
  t.deepEqual(leaf.uris, [spiffeId]);
  const lifetime = leaf.notAfter.getTime() - before;
  t.true(lifetime > 7190_000 && lifetime <= 7201_000, `lifetime ${lifetime} ms`);
  t.is(response.cert_chain[1], istiod.ca.rootCertPem);
  t.true(
    new X509Certificate(response.cert_chain[0] as string).verify(
      new X509Certificate(istiod.ca.rootCertPem).publicKey,
    ),
  );
  const [recorded] = istiod.certificateRequests;
  t.is(recorded?.clusterId, 'Kubernetes');
  t.is(recorded?.authorization, 'Bearer secret-token');
  t.is(recorded?.validitySeconds, 7200);
  t.is(recorded?.outcome, 'OK');
});

test('rejects a wrong bearer token with UNAUTHENTICATED', async (t) => {
  const { root, call } = await startIstiod(t);
  await root.write('token', 'wrong-token');
  const error = await t.throwsAsync(call());
  t.is((error as unknown as { code: number }).code, status.UNAUTHENTICATED);
  await root.write('token', 'secret-token');
  t.is((await call()).cert_chain.length, 2, 'the token file is read again on the next call');
});

test('injects faults: the first N calls UNAVAILABLE, then PERMISSION_DENIED, then broken chains', async (t) => {
  const { istiod, call } = await startIstiod(t);
  istiod.setCaFaults({ failFirst: 2 });
  for (let index = 0; index < 2; index++) {
    const error = await t.throwsAsync(call());
    t.is((error as unknown as { code: number }).code, status.UNAVAILABLE);
  }
  t.is((await call()).cert_chain.length, 2);

  istiod.setCaFaults({ reject: { code: status.PERMISSION_DENIED } });
  const denied = await t.throwsAsync(call());
  t.is((denied as unknown as { code: number }).code, status.PERMISSION_DENIED);

  istiod.setCaFaults({ chain: 'one-element' });
  t.is((await call()).cert_chain.length, 1);
  istiod.setCaFaults({ chain: 'garbage' });
  t.is((await call()).cert_chain[0], 'this is not a certificate');
  istiod.setCaFaults({ chain: 'wrong-san' });
  t.deepEqual(certificateFacts((await call()).cert_chain[0] as string).uris, [
    'spiffe://cluster.local/ns/other/sa/impostor',
  ]);

  istiod.setCaFaults({ delayMilliseconds: 200 });
  const started = Date.now();
  await call();
  t.true(Date.now() - started >= 200);
  t.deepEqual(
    istiod.certificateRequests.map((request) => request.outcome),
    ['UNAVAILABLE', 'UNAVAILABLE', 'OK', 'PERMISSION_DENIED', 'OK', 'OK', 'OK', 'OK'],
  );
});

test('takes extra services next to the CA', async (t) => {
  const { istiod } = await startIstiod(t);
  const { makeGenericClientConstructor, credentials } = await import('@grpc/grpc-js');
  const definition = {
    Echo: {
      path: '/test.Echo/Echo',
      requestStream: false,
      responseStream: false,
      requestSerialize: (value: Buffer) => value,
      requestDeserialize: (value: Buffer) => value,
      responseSerialize: (value: Buffer) => value,
      responseDeserialize: (value: Buffer) => value,
    },
  };
  istiod.addService(definition, {
    Echo: (call: { request: Buffer }, callback: (error: null, value: Buffer) => void) =>
      callback(null, call.request),
  });
  const Echo = makeGenericClientConstructor(definition, 'Echo');
  const client = new Echo(istiod.address, credentials.createSsl(Buffer.from(istiod.ca.rootCertPem)), {
    'grpc.ssl_target_name_override': 'istiod.istio-system.svc',
  });
  t.teardown(() => client.close());
  const echoed = await new Promise<Buffer>((resolve, reject) =>
    (
      client as unknown as {
        Echo: (request: Buffer, callback: (error: Error | null, value: Buffer) => void) => void;
      }
    ).Echo(Buffer.from('ping'), (error: Error | null, value: Buffer) =>
      error ? reject(error) : resolve(value),
    ),
  );
  t.is(echoed.toString(), 'ping');
});
