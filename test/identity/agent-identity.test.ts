import { createPublicKey, X509Certificate } from 'node:crypto';
import { access, readFile, stat } from 'node:fs/promises';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { certificateFacts } from '../../agent/identity/certificate-verification.ts';
import { splitPemBlocks } from '../../agent/identity/pem.ts';
import { startAgent } from '../helpers/agent-process.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { TestCertificateAuthority } from '../istiod/certificate-authority.ts';
import { TestIstiod } from '../istiod/test-istiod.ts';
import {
  configIn,
  istioToken,
  podRoot,
  sdsClient,
  spiffeId,
  writeMountedCertificates,
} from './identity-fixture.ts';
import type { ReceivedResponse } from './sds-client.ts';

type Root = Awaited<ReturnType<typeof podRoot>>;

async function startIstiod(
  t: ExecutionContext,
  root: Root,
  options: { port?: number; ca?: TestCertificateAuthority } = {},
) {
  const acceptedToken = await root.write('accepted-token', istioToken);
  const istiod = await TestIstiod.start({
    rootCertFile: root.resolve('var/run/secrets/istio/root-cert.pem'),
    tokenFile: acceptedToken,
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.ca !== undefined ? { certificateAuthority: options.ca } : {}),
  });
  t.teardown(() => istiod.stop());
  return istiod;
}

/** Base64 lines of every PEM private key in `pem`: none of them may ever show up in a log. */
function keyLines(pem: string): string[] {
  return pem.split('\n').filter((line) => line.length > 20 && !line.startsWith('-----'));
}

async function openssl(t: ExecutionContext, args: string[]) {
  const result = await execa('openssl', args, { reject: false, all: true });
  t.is(result.exitCode, 0, `openssl ${args.join(' ')}: ${result.all}`);
  return result.all;
}

for (const algorithm of ['RSA', 'ECDSA'] as const) {
  test(`${algorithm}: pilot-agent proxy gets its certificate from istiod over TLS, serves it over SDS, rotates it and writes OUTPUT_CERTS`, async (t) => {
    const root = await podRoot(t);
    const istiod = await startIstiod(t, root);
    const environment = {
      CA_ADDR: istiod.address,
      // Rotation about 3 s after issue (expiry − 0.95 × 60 s), while each certificate stays valid for a minute.
      SECRET_TTL: '60s',
      SECRET_GRACE_PERIOD_RATIO: '0.95',
      OUTPUT_CERTS: root.resolve('output'),
      ISTIO_META_CLUSTER_ID: 'east-cluster',
      ...(algorithm === 'ECDSA' ? { ECC_SIGNATURE_ALGORITHM: 'ECDSA' } : {}),
    };
    const agent = await startAgent(t, root, environment);
    const held = await agent.waitForOutput(
      'the first certificate',
      /first certificate held for (\S+) \(serial (\w+), expires (\S+), from istiod\)/,
    );
    t.is(held[1], spiffeId);

    const config = configIn(root, environment);
    const workload = sdsClient(t, config);
    workload.request(['default']);
    const trust = sdsClient(t, config);
    trust.request(['ROOTCA']);
    const first = await workload.waitForResponse();
    const firstSecret = first.secrets[0]!;
    const firstLeaf = certificateFacts(firstSecret.certificateChainPem as string);
    t.is(firstLeaf.serialNumber, held[2] as string);
    t.deepEqual(firstLeaf.uris, [spiffeId]);
    t.true(
      (firstSecret.privateKeyPem ?? '').startsWith(
        algorithm === 'RSA' ? '-----BEGIN RSA PRIVATE KEY-----' : '-----BEGIN EC PRIVATE KEY-----',
      ),
    );
    t.is((await trust.waitForResponse()).secrets[0]?.trustedCaPem, istiod.ca.rootCertPem);
    const [request] = istiod.certificateRequests;
    t.like(request, {
      clusterId: 'east-cluster',
      authorization: `Bearer ${istioToken}`,
      validitySeconds: 60,
      csrSanCritical: true,
    });
    t.is(request?.csrKeyAlgorithm, algorithm === 'RSA' ? 'rsa' : 'ec');

    // openssl agrees: the leaf verifies against the root, and the key is the leaf's.
    const output = root.resolve('output');
    // The three files are written one after the other: wait for all of them.
    await waitFor('OUTPUT_CERTS', async () => {
      const key = await readFile(`${output}/key.pem`, 'utf8').catch(() => '');
      const chain = await readFile(`${output}/cert-chain.pem`, 'utf8').catch(() => '');
      const rootCert = await readFile(`${output}/root-cert.pem`, 'utf8').catch(() => '');
      return key === firstSecret.privateKeyPem && chain !== '' && rootCert !== '' ? true : undefined;
    });
    // key.pem and cert-chain.pem are each replaced atomically but one after the other, so a rotation may
    // fall between two reads: take a snapshot in which both belong together (a lasting mismatch times out).
    const snapshot = await waitFor('a key and chain of the same certificate in OUTPUT_CERTS', async () => {
      const chain = await readFile(`${output}/cert-chain.pem`, 'utf8');
      const key = await readFile(`${output}/key.pem`, 'utf8');
      const [leaf] = splitPemBlocks(chain);
      const leafPublicKey = new X509Certificate(leaf as string).publicKey.export({
        type: 'spki',
        format: 'pem',
      });
      const keyPublicKey = createPublicKey(key).export({ type: 'spki', format: 'pem' });
      return leafPublicKey === keyPublicKey ? { chain, key, leaf: leaf as string } : undefined;
    });
    await root.write('leaf.pem', snapshot.leaf);
    await root.write('chain.pem', snapshot.chain);
    await root.write('key.pem', snapshot.key);
    t.regex(
      await openssl(t, ['verify', '-CAfile', `${output}/root-cert.pem`, root.resolve('leaf.pem')]),
      /leaf\.pem: OK/,
    );
    t.regex(
      await openssl(t, [
        'verify',
        '-CAfile',
        `${output}/root-cert.pem`,
        '-untrusted',
        root.resolve('chain.pem'),
        root.resolve('leaf.pem'),
      ]),
      /: OK/,
    );
    const leafKey = await openssl(t, ['x509', '-in', root.resolve('leaf.pem'), '-noout', '-pubkey']);
    const privateKeyPublic = await openssl(t, ['pkey', '-in', root.resolve('key.pem'), '-pubout']);
    t.is(leafKey.trim(), privateKeyPublic.trim());
    t.is(await readFile(`${output}/root-cert.pem`, 'utf8'), istiod.ca.rootCertPem);
    t.is((await stat(`${output}/key.pem`)).mode & 0o777, 0o600);

    // Rotation: a second version of `default` with a new serial.
    workload.request(['default'], first);
    const second: ReceivedResponse = await workload.waitForResponse(() => true, 1);
    const secondLeaf = certificateFacts(second.secrets[0]?.certificateChainPem as string);
    t.not(secondLeaf.serialNumber, firstLeaf.serialNumber);
    t.not(second.versionInfo, first.versionInfo);
    t.true(secondLeaf.notAfter > firstLeaf.notAfter);
    await agent.waitForOutput('the rotation log line', /workload certificate rotated: serial \w+ → \w+/);

    const exited = await agent.stop();
    t.is(exited.exitCode, 0);
    await t.throwsAsync(access(config.paths.sdsSocket), undefined, 'the SDS socket is removed on shutdown');
    const log = agent.output();
    t.false(log.includes('PRIVATE KEY'), 'no private key in the logs');
    for (const line of [
      ...keyLines(firstSecret.privateKeyPem ?? ''),
      ...keyLines(second.secrets[0]?.privateKeyPem ?? ''),
    ]) {
      t.false(log.includes(line), 'no line of a private key in the logs');
    }
    t.false(log.includes(istioToken), 'no token in the logs');
  });
}

test('with istiod down at start, the agent keeps trying and gets its certificate once istiod is up', async (t) => {
  const root = await podRoot(t);
  const ca = await TestCertificateAuthority.create();
  await root.write('var/run/secrets/istio/root-cert.pem', ca.rootCertPem);
  const port = await freePort();
  const environment = { CA_ADDR: `localhost:${port}`, ECC_SIGNATURE_ALGORITHM: 'ECDSA' };
  const agent = await startAgent(t, root, environment);
  await agent.waitForOutput(
    'a failed first attempt',
    /no workload certificate yet: CreateCertificate to localhost:\d+ \(TLS server name istiod\.istio-system\.svc\) failed after 5 attempts: UNAVAILABLE/,
  );
  t.false(agent.output().includes('first certificate held'));
  const istiod = await startIstiod(t, root, { port, ca });
  await agent.waitForOutput(
    'the first certificate',
    /first certificate held for spiffe:\/\/cluster\.local\/ns\/default\/sa\/productpage/,
  );
  const workload = sdsClient(t, configIn(root, environment));
  workload.request(['default']);
  const response = await workload.waitForResponse();
  t.deepEqual(certificateFacts(response.secrets[0]?.certificateChainPem as string).uris, [spiffeId]);
  t.is(istiod.certificateRequests.at(-1)?.outcome, 'OK');
});

test('a token istiod does not accept is reported clearly, and a corrected token file is picked up', async (t) => {
  const root = await podRoot(t);
  const istiod = await startIstiod(t, root);
  await root.write('var/run/secrets/tokens/istio-token', 'expired-token');
  const agent = await startAgent(t, root, { CA_ADDR: istiod.address, ECC_SIGNATURE_ALGORITHM: 'ECDSA' });
  await agent.waitForOutput(
    'the rejected token',
    new RegExp(
      `no workload certificate yet: .*failed after 1 attempt: UNAUTHENTICATED: authenticate failure: the token is not valid \\(istiod rejected the caller; the bearer token comes from ${root.resolve('var/run/secrets/tokens/istio-token').replaceAll('.', '\\.')}\\)`,
    ),
  );
  t.is(istiod.certificateRequests[0]?.outcome, 'UNAUTHENTICATED');
  t.false(agent.output().includes('expired-token'));
  await root.write('var/run/secrets/tokens/istio-token', istioToken);
  await agent.waitForOutput('the first certificate', /first certificate held/);
});

test('file-mounted certificates are served by the real agent and a change is pushed', async (t) => {
  const root = await podRoot(t);
  const ca = await TestCertificateAuthority.create();
  const first = await ca.issueWorkloadCertificate(spiffeId, 3600);
  await writeMountedCertificates(root, ca.rootCertPem, first);
  const environment = { CA_ADDR: 'localhost:1', FILE_DEBOUNCE_DURATION: '10ms' };
  const agent = await startAgent(t, root, environment);
  await agent.waitForOutput('the mounted certificate', /first certificate held for .* from files\)/);
  const workload = sdsClient(t, configIn(root, environment));
  workload.request(['default']);
  t.is((await workload.waitForResponse()).secrets[0]?.certificateChainPem, first.certificateChainPem);
  const second = await ca.issueWorkloadCertificate(spiffeId, 3600);
  await root.write('etc/certs/key.pem', second.privateKeyPem);
  await root.write('etc/certs/cert-chain.pem', second.certificateChainPem);
  const pushed = await workload.waitForResponse(
    (response) => response.secrets[0]?.certificateChainPem === second.certificateChainPem,
  );
  t.is(pushed.secrets[0]?.privateKeyPem, second.privateKeyPem);
  t.false(agent.output().includes('PRIVATE KEY'));
});

test('PILOT_CERT_PROVIDER=none runs no SDS server and asks no CA', async (t) => {
  const root = await podRoot(t);
  const environment = { PILOT_CERT_PROVIDER: 'none' };
  const agent = await startAgent(t, root, environment);
  await agent.waitForOutput('the notice', /PILOT_CERT_PROVIDER=none: no workload certificate is requested/);
  await t.throwsAsync(access(configIn(root, environment).paths.sdsSocket));
  t.is((await agent.stop()).exitCode, 0);
});
