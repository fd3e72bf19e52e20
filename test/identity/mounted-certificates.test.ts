import { rename, writeFile } from 'node:fs/promises';
import test from 'ava';
import { certificateFacts } from '../../agent/identity/certificate-verification.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { TestCertificateAuthority } from '../istiod/certificate-authority.ts';
import {
  configIn,
  driveUntil,
  podRoot,
  sdsClient,
  spiffeId,
  startIdentity,
  writeMountedCertificates,
} from './identity-fixture.ts';

test('file-mounted certificates are served without a CA call, and a change is pushed', async (t) => {
  const root = await podRoot(t);
  const ca = await TestCertificateAuthority.create();
  const first = await ca.issueWorkloadCertificate(spiffeId, 3600);
  await writeMountedCertificates(root, ca.rootCertPem, first);
  // No istiod listens at CA_ADDR: any CA call would fail.
  const config = configIn(root, { CA_ADDR: 'localhost:1' });
  const clock = new ManualClock();
  const { identity, registry, lines } = startIdentity(t, config, clock);
  await identity.start();
  t.is(identity.mode, 'files');
  const secret = await identity.firstCertificate();
  t.is(secret.source, 'files');
  t.is(secret.certificateChainPem, first.certificateChainPem);

  const workload = sdsClient(t, config);
  workload.request(['default']);
  const served = await workload.waitForResponse();
  t.is(served.secrets[0]?.privateKeyPem, first.privateKeyPem);
  const trust = sdsClient(t, config);
  trust.request(['ROOTCA']);
  t.is((await trust.waitForResponse()).secrets[0]?.trustedCaPem, ca.rootCertPem);

  // A Secret update: new files renamed into place, as an atomic writer would.
  const second = await ca.issueWorkloadCertificate(spiffeId, 3600);
  await writeFile(root.resolve('etc/certs/.key.tmp'), second.privateKeyPem);
  await writeFile(root.resolve('etc/certs/.chain.tmp'), second.certificateChainPem);
  await rename(root.resolve('etc/certs/.key.tmp'), root.resolve('etc/certs/key.pem'));
  await rename(root.resolve('etc/certs/.chain.tmp'), root.resolve('etc/certs/cert-chain.pem'));
  const pushed = await driveUntil(clock, 'the changed files to be pushed', () => workload.responses[1]);
  t.is(pushed.secrets[0]?.certificateChainPem, second.certificateChainPem);
  t.is(
    certificateFacts(pushed.secrets[0]?.certificateChainPem as string).serialNumber,
    certificateFacts(second.leafPem).serialNumber,
  );

  // A broken key: reported, counted, and the last good files stay served.
  await writeFile(root.resolve('etc/certs/key.pem'), 'not a key');
  const failures = async () =>
    (await registry.getSingleMetric('istio_agent_num_file_secret_failures_total')?.get())?.values[0]?.value ??
    0;
  let failed = 0;
  await driveUntil(clock, 'the broken key to be reported', () => {
    void failures().then((value) => {
      failed = value;
    });
    return failed === 1;
  });
  t.is(identity.store.secret?.certificateChainPem, second.certificateChainPem);
  t.regex(lines.join(''), /key\.pem holds no readable private key; keeping the certificates served so far/);
  t.false(lines.join('').includes('not a key'));
  t.is(workload.responses.length, 2);
});

test('FILE_MOUNTED_CERTS=true waits for the files instead of asking the CA', async (t) => {
  const root = await podRoot(t);
  const config = configIn(root, { CA_ADDR: 'localhost:1', FILE_MOUNTED_CERTS: 'true' });
  const clock = new ManualClock();
  const { identity } = startIdentity(t, config, clock);
  await identity.start();
  t.is(identity.mode, 'files');
  t.false(identity.ready);
  const ca = await TestCertificateAuthority.create();
  const issued = await ca.issueWorkloadCertificate(spiffeId, 3600);
  await writeMountedCertificates(root, ca.rootCertPem, issued);
  await driveUntil(clock, 'the mounted certificate', () => identity.ready);
  t.is(identity.store.secret?.certificateChainPem, issued.certificateChainPem);
});
