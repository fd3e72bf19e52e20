import 'reflect-metadata';
import { type KeyObject, X509Certificate } from 'node:crypto';
import { X509Certificate as ParsedCertificate, SubjectAlternativeNameExtension } from '@peculiar/x509';
import { joinPemBlocks, splitPemBlocks } from './pem.ts';

/** What the agent keeps about a certificate; everything but the key, so it is safe to log. */
export interface CertificateFacts {
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The leaf's URI SANs (the SPIFFE identity). */
  readonly uris: readonly string[];
}

/** A chain that passed every check, ready to be served. */
export interface VerifiedChain {
  /** Leaf first, root last, as istiod returned it (Istio serves and writes the whole chain). */
  readonly certificateChainPem: string;
  readonly rootCertPem: string;
  readonly leaf: CertificateFacts;
}

/** A chain that must not be served; the message says which check failed. */
export class InvalidCertificateChainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidCertificateChainError';
  }
}

/**
 * Checks what istiod returned for a CSR: at least two certificates, the leaf certifies `privateKey` and
 * carries `spiffeId`, each certificate is signed by the next, the last one is a CA, and the leaf has not
 * expired at `now`.
 */
export function verifyIssuedChain(
  chain: readonly string[],
  privateKey: KeyObject,
  spiffeId: string,
  now: number,
): VerifiedChain {
  const blocks = parseChainBlocks(chain);
  if (blocks.length < 2) {
    throw new InvalidCertificateChainError(
      `the CA returned ${blocks.length} certificate${blocks.length === 1 ? '' : 's'} (expected the leaf and at least its root)`,
    );
  }
  const certificates = blocks.map((block, index) => parseCertificate(block, index, blocks.length));
  const leaf = certificates[0] as X509Certificate;
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new InvalidCertificateChainError(
      'the leaf certificate does not certify the key the CSR was made with',
    );
  }
  const facts = certificateFacts(leaf);
  if (!facts.uris.includes(spiffeId)) {
    throw new InvalidCertificateChainError(
      `the leaf certificate is for ${facts.uris.length > 0 ? facts.uris.join(', ') : 'no URI'}, not the requested ${spiffeId}`,
    );
  }
  verifySignatures(certificates);
  if (facts.notAfter.getTime() <= now) {
    throw new InvalidCertificateChainError(`the leaf certificate expired at ${facts.notAfter.toISOString()}`);
  }
  return {
    certificateChainPem: joinPemBlocks(blocks),
    rootCertPem: blocks.at(-1) as string,
    leaf: facts,
  };
}

/**
 * Checks a certificate and key mounted from files (`./etc/certs`): the chain parses, the key matches the
 * leaf, and the chain's signatures hold; the root file must hold at least one certificate.
 */
export function verifyMountedCertificates(
  certificateChainPem: string,
  privateKey: KeyObject,
  rootCertPem: string,
): CertificateFacts {
  const blocks = splitPemBlocks(certificateChainPem);
  if (blocks.length === 0)
    throw new InvalidCertificateChainError('the certificate chain holds no PEM certificate');
  const certificates = blocks.map((block, index) => parseCertificate(block, index, blocks.length));
  const leaf = certificates[0] as X509Certificate;
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new InvalidCertificateChainError('the private key does not match the leaf certificate');
  }
  verifySignatures(certificates);
  const roots = splitPemBlocks(rootCertPem);
  if (roots.length === 0)
    throw new InvalidCertificateChainError('the root certificate file holds no PEM certificate');
  for (const [index, block] of roots.entries()) parseCertificate(block, index, roots.length);
  return certificateFacts(leaf);
}

/** Facts about the first certificate of a PEM text. */
export function certificateFacts(certificate: X509Certificate | string): CertificateFacts {
  const parsed = typeof certificate === 'string' ? new X509Certificate(certificate) : certificate;
  const san = new ParsedCertificate(parsed.raw).getExtension(SubjectAlternativeNameExtension);
  return {
    serialNumber: parsed.serialNumber,
    notBefore: new Date(parsed.validFrom),
    notAfter: new Date(parsed.validTo),
    uris: san ? san.names.items.filter((name) => name.type === 'url').map((name) => name.value) : [],
  };
}

function parseChainBlocks(chain: readonly string[]): string[] {
  const blocks: string[] = [];
  for (const [index, element] of chain.entries()) {
    const found = splitPemBlocks(element);
    if (found.length === 0) {
      throw new InvalidCertificateChainError(
        `element ${index + 1} of the returned chain is not a PEM certificate`,
      );
    }
    blocks.push(...found);
  }
  return blocks;
}

function parseCertificate(block: string, index: number, count: number): X509Certificate {
  try {
    return new X509Certificate(block);
  } catch (error) {
    throw new InvalidCertificateChainError(
      `certificate ${index + 1} of ${count} cannot be parsed (${(error as Error).message})`,
    );
  }
}

function verifySignatures(certificates: readonly X509Certificate[]): void {
  for (let index = 0; index + 1 < certificates.length; index++) {
    const subject = certificates[index] as X509Certificate;
    const issuer = certificates[index + 1] as X509Certificate;
    if (!issuer.ca) {
      throw new InvalidCertificateChainError(`certificate ${index + 2} of the chain is not a CA certificate`);
    }
    if (!subject.checkIssued(issuer) || !subject.verify(issuer.publicKey)) {
      throw new InvalidCertificateChainError(
        `certificate ${index + 1} of the chain is not signed by certificate ${index + 2}`,
      );
    }
  }
}
