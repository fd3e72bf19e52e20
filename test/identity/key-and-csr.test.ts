import { writeFile } from 'node:fs/promises';
import test from 'ava';
import { execa } from 'execa';
import { generateKeyAndCsr } from '../../agent/identity/key-and-csr.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';
import { TestCertificateAuthority } from '../istiod/certificate-authority.ts';

const spiffeId = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';

const cases = [
  {
    algorithm: { kind: 'RSA', size: 2048 } as const,
    keyAlgorithm: 'rsa',
    detail: '2048',
    pem: 'RSA PRIVATE KEY',
  },
  {
    algorithm: { kind: 'RSA', size: 3072 } as const,
    keyAlgorithm: 'rsa',
    detail: '3072',
    pem: 'RSA PRIVATE KEY',
  },
  {
    algorithm: { kind: 'ECDSA', curve: 'P256' } as const,
    keyAlgorithm: 'ec',
    detail: 'prime256v1',
    pem: 'EC PRIVATE KEY',
  },
  {
    algorithm: { kind: 'ECDSA', curve: 'P384' } as const,
    keyAlgorithm: 'ec',
    detail: 'secp384r1',
    pem: 'EC PRIVATE KEY',
  },
];

for (const { algorithm, keyAlgorithm, detail, pem } of cases) {
  const name = algorithm.kind === 'RSA' ? `RSA ${algorithm.size}` : `ECDSA ${algorithm.curve}`;
  test(`${name}: the CSR has an empty subject, a critical SAN with the SPIFFE URI, and openssl accepts it`, async (t) => {
    const ca = await TestCertificateAuthority.create();
    const { csrPem, privateKeyPem } = await generateKeyAndCsr(algorithm, spiffeId, false);
    const contents = await ca.inspectCsr(csrPem);
    t.deepEqual(contents.uris, [spiffeId]);
    t.true(contents.sanCritical);
    t.is(contents.subject, '');
    t.is(contents.keyAlgorithm, keyAlgorithm);
    t.is(contents.keyDetail, detail);
    t.true(privateKeyPem.startsWith(`-----BEGIN ${pem}-----`));

    const root = await createTemporaryRoot();
    t.teardown(() => root.remove());
    const csrFile = root.resolve('request.csr');
    await writeFile(csrFile, csrPem);
    const verified = await execa('openssl', ['req', '-in', csrFile, '-noout', '-verify', '-text'], {
      reject: false,
      all: true,
    });
    t.is(verified.exitCode, 0, verified.all);
    t.regex(
      verified.all,
      /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/reviews/,
    );
  });
}

test('PKCS8_KEY writes the key as PKCS#8', async (t) => {
  const { privateKeyPem } = await generateKeyAndCsr({ kind: 'ECDSA', curve: 'P256' }, spiffeId, true);
  t.true(privateKeyPem.startsWith('-----BEGIN PRIVATE KEY-----'));
});

test('every CSR comes with a new key', async (t) => {
  const first = await generateKeyAndCsr({ kind: 'ECDSA', curve: 'P256' }, spiffeId, false);
  const second = await generateKeyAndCsr({ kind: 'ECDSA', curve: 'P256' }, spiffeId, false);
  t.not(first.privateKeyPem, second.privateKeyPem);
});
