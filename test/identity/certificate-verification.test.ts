import test from 'ava';
import {
  InvalidCertificateChainError,
  verifyIssuedChain,
} from '../../agent/identity/certificate-verification.ts';
import { generateKeyAndCsr } from '../../agent/identity/key-and-csr.ts';
import { TestCertificateAuthority } from '../istiod/certificate-authority.ts';

const spiffeId = 'spiffe://cluster.local/ns/default/sa/httpbin';

async function issue(ttlSeconds = 3600, uriOverride?: string) {
  const ca = await TestCertificateAuthority.create();
  const request = await generateKeyAndCsr({ kind: 'ECDSA', curve: 'P256' }, spiffeId, false);
  const leaf = await ca.signCsr(request.csrPem, ttlSeconds, uriOverride);
  return { ca, request, leaf };
}

test('a good chain yields the served chain, the root and the leaf facts', async (t) => {
  const { ca, request, leaf } = await issue();
  const verified = verifyIssuedChain([leaf, ca.rootCertPem], request.privateKey, spiffeId, Date.now());
  t.is(verified.certificateChainPem, leaf + ca.rootCertPem);
  t.is(verified.rootCertPem, ca.rootCertPem);
  t.deepEqual(verified.leaf.uris, [spiffeId]);
  t.true(verified.leaf.notAfter.getTime() > Date.now() + 3500_000);
  t.regex(verified.leaf.serialNumber, /^[0-9A-F]+$/);
});

test('a chain of one certificate is refused', async (t) => {
  const { request, leaf } = await issue();
  t.throws(() => verifyIssuedChain([leaf], request.privateKey, spiffeId, Date.now()), {
    instanceOf: InvalidCertificateChainError,
    message: 'the CA returned 1 certificate (expected the leaf and at least its root)',
  });
});

test('garbage is refused, naming the element', async (t) => {
  const { ca, request } = await issue();
  t.throws(() => verifyIssuedChain(['garbage', ca.rootCertPem], request.privateKey, spiffeId, Date.now()), {
    message: 'element 1 of the returned chain is not a PEM certificate',
  });
  const bogusPem = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
  t.throws(() => verifyIssuedChain([bogusPem, ca.rootCertPem], request.privateKey, spiffeId, Date.now()), {
    message: /^certificate 1 of 2 cannot be parsed/,
  });
});

test('a leaf for another identity is refused', async (t) => {
  const { ca, request, leaf } = await issue(3600, 'spiffe://cluster.local/ns/other/sa/impostor');
  t.throws(() => verifyIssuedChain([leaf, ca.rootCertPem], request.privateKey, spiffeId, Date.now()), {
    message: `the leaf certificate is for spiffe://cluster.local/ns/other/sa/impostor, not the requested ${spiffeId}`,
  });
});

test('a leaf for another key is refused', async (t) => {
  const { ca, leaf } = await issue();
  const otherKey = await generateKeyAndCsr({ kind: 'ECDSA', curve: 'P256' }, spiffeId, false);
  t.throws(() => verifyIssuedChain([leaf, ca.rootCertPem], otherKey.privateKey, spiffeId, Date.now()), {
    message: 'the leaf certificate does not certify the key the CSR was made with',
  });
});

test('a leaf not signed by the returned root is refused', async (t) => {
  const { request, leaf } = await issue();
  const otherCa = await TestCertificateAuthority.create();
  t.throws(() => verifyIssuedChain([leaf, otherCa.rootCertPem], request.privateKey, spiffeId, Date.now()), {
    message: 'certificate 1 of the chain is not signed by certificate 2',
  });
});

test('a leaf whose issuer is not a CA is refused', async (t) => {
  const { ca, request, leaf } = await issue();
  const notCa = (await ca.issueWorkloadCertificate('spiffe://cluster.local/ns/x/sa/y', 3600)).leafPem;
  t.throws(() => verifyIssuedChain([leaf, notCa], request.privateKey, spiffeId, Date.now()), {
    message: 'certificate 2 of the chain is not a CA certificate',
  });
});

test('an already expired leaf is refused', async (t) => {
  const { ca, request, leaf } = await issue(60);
  t.throws(
    () => verifyIssuedChain([leaf, ca.rootCertPem], request.privateKey, spiffeId, Date.now() + 120_000),
    {
      message: /^the leaf certificate expired at /,
    },
  );
});
