import { once } from 'node:events';
import { readFile, stat } from 'node:fs/promises';
import { status } from '@grpc/grpc-js';
import test from 'ava';
import { certificateFacts } from '../../agent/identity/certificate-verification.ts';
import type { CertificateFailure } from '../../agent/identity/workload-identity.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { TestCertificateAuthority } from '../istiod/certificate-authority.ts';
import { TestIstiod } from '../istiod/test-istiod.ts';
import {
  configIn,
  driveUntil,
  istioToken,
  podRoot,
  sdsClient,
  spiffeId,
  startIdentity,
} from './identity-fixture.ts';

/** A test istiod whose CA issues on the manual clock, so certificate lifetimes follow the test's time. */
async function istiodFor(
  t: import('ava').ExecutionContext,
  root: Awaited<ReturnType<typeof podRoot>>,
  clock: ManualClock,
) {
  const acceptedToken = await root.write('accepted-token', istioToken);
  const ca = await TestCertificateAuthority.create();
  ca.now = () => clock.now();
  const istiod = await TestIstiod.start({
    rootCertFile: root.resolve('var/run/secrets/istio/root-cert.pem'),
    tokenFile: acceptedToken,
    certificateAuthority: ca,
  });
  t.teardown(() => istiod.stop());
  return istiod;
}

test('serves default and ROOTCA over SDS, rotates at half the lifetime and pushes the new certificate', async (t) => {
  const root = await podRoot(t);
  const clock = new ManualClock();
  const istiod = await istiodFor(t, root, clock);
  const config = configIn(root, {
    CA_ADDR: istiod.address,
    SECRET_TTL: '1h',
    ECC_SIGNATURE_ALGORITHM: 'ECDSA',
  });
  const { identity, registry } = startIdentity(t, config, clock);
  await identity.start();
  const workload = sdsClient(t, config);
  const trust = sdsClient(t, config);
  // Envoy may ask before the certificate exists; the answer comes once it does.
  workload.request(['default']);
  trust.request(['ROOTCA']);
  const [first] = (await once(identity, 'first-certificate')) as [{ serialNumber: string }];

  const firstResponse = await workload.waitForResponse();
  t.is(firstResponse.typeUrl, 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret');
  const [served] = firstResponse.secrets;
  t.is(served?.name, 'default');
  t.is(served?.certificateChainPem, identity.store.secret?.certificateChainPem);
  t.is(served?.privateKeyPem, identity.store.secret?.privateKeyPem);
  t.is(certificateFacts(served?.certificateChainPem as string).serialNumber, first.serialNumber);
  const rootResponse = await trust.waitForResponse();
  t.deepEqual(rootResponse.secrets, [{ name: 'ROOTCA', trustedCaPem: istiod.ca.rootCertPem }]);
  workload.request(['default'], firstResponse);

  const expiry = (await registry.getSingleMetric('istio_agent_cert_expiry_seconds')?.get())?.values;
  t.is(expiry?.length, 1);
  t.is(expiry?.[0]?.labels.resource_name, 'default');
  t.true((expiry?.[0]?.value ?? 0) > 3500 && (expiry?.[0]?.value ?? 0) <= 3600, String(expiry?.[0]?.value));

  // Rotation at notAfter − 0.5 × lifetime (no jitter with random 0.5): about 30 minutes from now.
  const secret = identity.store.secret!;
  const expected = Math.round(
    secret.leaf.notAfter.getTime() - 0.5 * (secret.leaf.notAfter.getTime() - secret.receivedAt) - clock.now(),
  );
  t.deepEqual(clock.pendingDelays, [expected]);
  t.true(expected > 29 * 60_000 && expected <= 30 * 60_000, String(expected));

  const rotated = once(identity, 'rotated');
  clock.advance(expected - 1);
  t.is(identity.store.secret, secret, 'not rotated a millisecond early');
  clock.advance(1);
  const [next, previous] = (await rotated) as [{ serialNumber: string }, { serialNumber: string }];
  t.is(previous.serialNumber, first.serialNumber);
  t.not(next.serialNumber, first.serialNumber);
  const pushed = await workload.waitForResponse(() => true, 1);
  t.is(certificateFacts(pushed.secrets[0]?.certificateChainPem as string).serialNumber, next.serialNumber);
  t.not(pushed.versionInfo, firstResponse.versionInfo);
  t.not(pushed.secrets[0]?.privateKeyPem, served?.privateKeyPem, 'a rotation brings a new key');
  t.is(trust.responses.length, 1, 'the root did not change, so ROOTCA is not pushed again');
  t.is(istiod.certificateRequests.length, 2);
});

test('a failed rotation keeps serving the current certificate and retries with backoff', async (t) => {
  const root = await podRoot(t);
  const clock = new ManualClock();
  const istiod = await istiodFor(t, root, clock);
  const config = configIn(root, {
    CA_ADDR: istiod.address,
    SECRET_TTL: '1h',
    ECC_SIGNATURE_ALGORITHM: 'ECDSA',
  });
  const { identity, lines } = startIdentity(t, config, clock);
  await identity.start();
  const workload = sdsClient(t, config);
  workload.request(['default']);
  await identity.firstCertificate();
  const served = identity.store.secret!;

  istiod.setCaFaults({ reject: { code: status.PERMISSION_DENIED, message: 'denied for the test' } });
  const failures: (CertificateFailure & { expiresAt: Date })[] = [];
  identity.on('rotation-failed', (failure) => failures.push(failure));
  clock.fireNext();
  await waitFor('the first failed rotation', () => failures.length === 1);
  clock.fireNext();
  await waitFor('the second failed rotation', () => failures.length === 2);
  t.deepEqual(
    failures.map((failure) => failure.retryInMilliseconds),
    [500, 1000],
  );
  t.is(failures[0]?.expiresAt.getTime(), served.leaf.notAfter.getTime());
  t.is(identity.store.secret, served, 'the current certificate is still served');
  t.deepEqual(clock.pendingDelays, [1000]);
  t.regex(
    lines.join(''),
    /certificate rotation failed: .*PERMISSION_DENIED: denied for the test.*still serving serial/,
  );

  istiod.setCaFaults({});
  const rotated = once(identity, 'rotated');
  clock.fireNext();
  await rotated;
  t.not(identity.store.secret?.leaf.serialNumber, served.leaf.serialNumber);
  await workload.waitForResponse(() => true, 1);
  // Backoff starts over after a success: the next delay is the regular schedule again.
  t.true((clock.pendingDelays[0] ?? 0) > 29 * 60_000, String(clock.pendingDelays));
});

test('with the CA down at start the first certificate is retried (500 ms doubling) and arrives once it is up', async (t) => {
  const root = await podRoot(t);
  const clock = new ManualClock();
  const ca = await TestCertificateAuthority.create();
  ca.now = () => clock.now();
  await root.write('var/run/secrets/istio/root-cert.pem', ca.rootCertPem);
  const port = await freePort();
  const config = configIn(root, { CA_ADDR: `localhost:${port}`, ECC_SIGNATURE_ALGORITHM: 'ECDSA' });
  const { identity } = startIdentity(t, config, clock);
  const failures: CertificateFailure[] = [];
  identity.on('first-certificate-failed', (failure) => failures.push(failure));
  await identity.start();
  await driveUntil(clock, 'three failed attempts', () => failures.length >= 3);
  t.deepEqual(
    failures.slice(0, 3).map((failure) => failure.retryInMilliseconds),
    [500, 1000, 2000],
  );
  t.regex(failures[0]?.error.message ?? '', /failed after 5 attempts: UNAVAILABLE/);
  t.false(identity.ready);

  const acceptedToken = await root.write('accepted-token', istioToken);
  const istiod = await TestIstiod.start({ port, certificateAuthority: ca, tokenFile: acceptedToken });
  t.teardown(() => istiod.stop());
  await driveUntil(clock, 'the first certificate', () => identity.ready);
  t.deepEqual(identity.store.secret?.leaf.uris, [spiffeId]);
});

test('a garbage chain and a leaf for another identity are never served', async (t) => {
  const root = await podRoot(t);
  const clock = new ManualClock();
  const istiod = await istiodFor(t, root, clock);
  istiod.setCaFaults({ chain: 'garbage' });
  const config = configIn(root, { CA_ADDR: istiod.address, ECC_SIGNATURE_ALGORITHM: 'ECDSA' });
  const { identity, registry } = startIdentity(t, config, clock);
  const failures: CertificateFailure[] = [];
  identity.on('first-certificate-failed', (failure) => failures.push(failure));
  await identity.start();
  await waitFor('the garbage chain to be refused', () => failures.length === 1);
  t.is(
    failures[0]?.error.message,
    "istiod's answer was rejected: element 1 of the returned chain is not a PEM certificate",
  );
  istiod.setCaFaults({ chain: 'wrong-san' });
  clock.fireNext();
  await waitFor('the wrong identity to be refused', () => failures.length === 2);
  t.is(
    failures[1]?.error.message,
    `istiod's answer was rejected: the leaf certificate is for spiffe://cluster.local/ns/other/sa/impostor, not the requested ${spiffeId}`,
  );
  istiod.setCaFaults({ chain: 'one-element' });
  clock.fireNext();
  await waitFor('the lone leaf to be refused', () => failures.length === 3);
  t.regex(failures[2]?.error.message ?? '', /the CA returned 1 certificate/);
  t.is(identity.store.secret, undefined);
  const failed = (await registry.getSingleMetric('istio_agent_num_failed_outgoing_requests')?.get())
    ?.values[0]?.value;
  t.is(failed, 3);

  istiod.setCaFaults({});
  clock.fireNext();
  await identity.firstCertificate();
  t.deepEqual(identity.store.secret?.leaf.uris, [spiffeId]);
});

test('OUTPUT_CERTS gets key.pem (0600), cert-chain.pem and root-cert.pem, rewritten only when they change', async (t) => {
  const root = await podRoot(t);
  const clock = new ManualClock();
  const istiod = await istiodFor(t, root, clock);
  const output = root.resolve('output');
  const config = configIn(root, { CA_ADDR: istiod.address, SECRET_TTL: '1h', OUTPUT_CERTS: output });
  const { identity } = startIdentity(t, config, clock);
  await identity.start();
  await identity.firstCertificate();
  const secret = identity.store.secret!;
  const read = (name: string) => readFile(`${output}/${name}`, 'utf8');
  await waitFor('the output files', async () => (await read('root-cert.pem').catch(() => '')) !== '');
  t.is(await read('key.pem'), secret.privateKeyPem);
  t.true(secret.privateKeyPem.startsWith('-----BEGIN RSA PRIVATE KEY-----'));
  t.is(await read('cert-chain.pem'), secret.certificateChainPem);
  t.is(await read('root-cert.pem'), istiod.ca.rootCertPem);
  t.is((await stat(`${output}/key.pem`)).mode & 0o777, 0o600);
  t.is((await stat(`${output}/cert-chain.pem`)).mode & 0o777, 0o644);
  const rootBefore = await stat(`${output}/root-cert.pem`);

  const rotated = once(identity, 'rotated');
  clock.fireNext();
  await rotated;
  const next = identity.store.secret!;
  // key.pem is written first, then cert-chain.pem (as Istio orders them).
  await waitFor(
    'the rotated key and chain on disk',
    async () =>
      (await read('key.pem')) === next.privateKeyPem &&
      (await read('cert-chain.pem')) === next.certificateChainPem,
  );
  t.is((await stat(`${output}/key.pem`)).mode & 0o777, 0o600);
  const rootAfter = await stat(`${output}/root-cert.pem`);
  t.is(rootAfter.ino, rootBefore.ino, 'root-cert.pem did not change, so it was not rewritten');
});

test('SDS answers FetchSecrets and DeltaSecrets with UNIMPLEMENTED', async (t) => {
  const root = await podRoot(t);
  const config = configIn(root, { CA_ADDR: 'localhost:1', FILE_MOUNTED_CERTS: 'true' });
  const clock = new ManualClock();
  const { identity } = startIdentity(t, config, clock);
  await identity.start();
  const { secretDiscoveryService } = await import('./sds-client.ts');
  const { credentials } = await import('@grpc/grpc-js');
  const Service = secretDiscoveryService();
  const client = new Service(`unix:${config.paths.sdsSocket}`, credentials.createInsecure()) as unknown as {
    FetchSecrets(request: object, callback: (error: { code: number } | null) => void): void;
    DeltaSecrets(): NodeJS.EventEmitter & { write(request: object): void };
    close(): void;
  };
  t.teardown(() => client.close());
  const fetchError = await new Promise<{ code: number } | null>((resolve) =>
    client.FetchSecrets({ resource_names: ['default'] }, resolve),
  );
  t.is(fetchError?.code, status.UNIMPLEMENTED);
  const delta = client.DeltaSecrets();
  delta.write({ resource_names_subscribe: ['default'] });
  const [deltaError] = (await once(delta, 'error')) as [{ code: number }];
  t.is(deltaError.code, status.UNIMPLEMENTED);
});
