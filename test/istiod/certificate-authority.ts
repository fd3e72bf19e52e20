import 'reflect-metadata';
import { KeyObject, randomBytes, webcrypto } from 'node:crypto';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  type Extension,
  type JsonGeneralName,
  KeyUsageFlags,
  KeyUsagesExtension,
  Pkcs10CertificateRequest,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  type X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';

const crypto = webcrypto as Crypto;
const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A key and the PEM chain certifying it. */
export interface IssuedCertificate {
  readonly certificateChainPem: string;
  readonly privateKeyPem: string;
  readonly leafPem: string;
}

/** What the CA saw in a CSR. */
export interface CsrContents {
  readonly uris: readonly string[];
  readonly keyAlgorithm: string;
  /** RSA modulus bits or the ECDSA curve name. */
  readonly keyDetail: string;
  readonly sanCritical: boolean;
  readonly subject: string;
}

/**
 * A throw-away root CA (ECDSA P-256, like a freshly installed istiod's self-signed root is a CA of its own):
 * issues istiod's serving certificate, signs workload CSRs, and mints workload certificates for the
 * file-mounted tests.
 */
export class TestCertificateAuthority {
  readonly rootCertPem: string;
  /** The time leaves are issued at; tests on a manual clock hand theirs in so validity follows it. */
  now: () => number = Date.now;
  readonly #root: X509Certificate;
  readonly #rootKeys: CryptoKeyPair;

  private constructor(root: X509Certificate, keys: CryptoKeyPair) {
    this.#root = root;
    this.#rootKeys = keys;
    this.rootCertPem = `${root.toString('pem')}\n`;
  }

  static async create(organization = 'cluster.local'): Promise<TestCertificateAuthority> {
    const keys = (await crypto.subtle.generateKey(ecdsa, true, ['sign', 'verify'])) as CryptoKeyPair;
    // The root spans years either side, so a test clock moved forward or back stays inside it.
    const now = Date.now() - 365 * 24 * 3600 * 1000;
    const root = await X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: serial(),
        name: `O=${organization}`,
        keys,
        signingAlgorithm: ecdsa,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 11 * 365 * 24 * 3600 * 1000),
        extensions: [
          new BasicConstraintsExtension(true, undefined, true),
          new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
          await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        ],
      },
      crypto,
    );
    return new TestCertificateAuthority(root, keys);
  }

  /** istiod's serving certificate, for the given DNS names and IP addresses. */
  async issueServingCertificate(
    dnsNames: readonly string[],
    ipAddresses: readonly string[],
  ): Promise<IssuedCertificate> {
    const names: JsonGeneralName[] = [
      ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
      ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
    ];
    // TLS handshakes check validity on the real clock.
    return this.#issueWithNewKey(names, 24 * 3600, Date.now());
  }

  /** A workload key and certificate minted directly (what a foreign CA would mount into `./etc/certs`). */
  async issueWorkloadCertificate(spiffeId: string, ttlSeconds: number): Promise<IssuedCertificate> {
    return this.#issueWithNewKey([{ type: 'url', value: spiffeId }], ttlSeconds, this.now());
  }

  /** Reads a PEM CSR (its signature checked) and reports its identity and key. */
  async inspectCsr(csrPem: string): Promise<CsrContents> {
    const csr = new Pkcs10CertificateRequest(csrPem);
    if (!(await csr.verify(crypto))) throw new Error('the CSR signature does not verify');
    const san = csr.extensions.find(
      (extension): extension is SubjectAlternativeNameExtension =>
        extension instanceof SubjectAlternativeNameExtension,
    );
    const publicKey = KeyObject.from(await csr.publicKey.export(crypto));
    const details = publicKey.asymmetricKeyDetails ?? {};
    return {
      uris: san ? san.names.items.filter((name) => name.type === 'url').map((name) => name.value) : [],
      keyAlgorithm: publicKey.asymmetricKeyType ?? 'unknown',
      keyDetail: details.namedCurve ?? String(details.modulusLength ?? ''),
      sanCritical: san?.critical ?? false,
      subject: csr.subject,
    };
  }

  /**
   * Signs a CSR into a leaf valid for `ttlSeconds`, carrying the CSR's URIs (or `uriOverride`, to fake a
   * CA that issues the wrong identity). Returns the leaf PEM.
   */
  async signCsr(csrPem: string, ttlSeconds: number, uriOverride?: string): Promise<string> {
    const csr = new Pkcs10CertificateRequest(csrPem);
    if (!(await csr.verify(crypto))) throw new Error('the CSR signature does not verify');
    const uris = uriOverride !== undefined ? [uriOverride] : (await this.inspectCsr(csrPem)).uris;
    const leaf = await this.#sign(
      await csr.publicKey.export(crypto),
      uris.map((value) => ({ type: 'url' as const, value })),
      ttlSeconds,
      this.now(),
    );
    return `${leaf.toString('pem')}\n`;
  }

  async #issueWithNewKey(
    names: JsonGeneralName[],
    ttlSeconds: number,
    now: number,
  ): Promise<IssuedCertificate> {
    const keys = (await crypto.subtle.generateKey(ecdsa, true, ['sign', 'verify'])) as CryptoKeyPair;
    const leaf = await this.#sign(keys.publicKey, names, ttlSeconds, now);
    const leafPem = `${leaf.toString('pem')}\n`;
    return {
      leafPem,
      certificateChainPem: leafPem + this.rootCertPem,
      privateKeyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  }

  async #sign(
    publicKey: CryptoKey,
    names: JsonGeneralName[],
    ttlSeconds: number,
    now: number,
  ): Promise<X509Certificate> {
    const extensions: Extension[] = [
      // An empty subject makes the SAN critical (RFC 5280), as Istio's CA issues workload certificates.
      new SubjectAlternativeNameExtension(names, true),
      new KeyUsagesExtension(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment, true),
      new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth, ExtendedKeyUsage.clientAuth]),
      new BasicConstraintsExtension(false, undefined, true),
      await AuthorityKeyIdentifierExtension.create(this.#rootKeys.publicKey, false, crypto),
    ];
    return X509CertificateGenerator.create(
      {
        serialNumber: serial(),
        subject: '',
        issuer: this.#root.subject,
        publicKey,
        signingKey: this.#rootKeys.privateKey,
        signingAlgorithm: ecdsa,
        notBefore: new Date(now - 1000),
        notAfter: new Date(now + ttlSeconds * 1000),
        extensions,
      },
      crypto,
    );
  }
}

/** A positive 128-bit serial number in hex. */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return bytes.toString('hex');
}
