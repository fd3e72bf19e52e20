import { X509Certificate } from 'node:crypto';

/** One entry of `/certs` (admin.v3.CertificateDetails, JSON names). */
export interface CertificateDetails {
  readonly path: string;
  readonly serial_number: string;
  readonly subject_alt_names: ReadonlyArray<{ uri: string } | { dns: string } | { ip_address: string }>;
  readonly days_until_expiration: string;
  readonly valid_from: string;
  readonly expiration_time: string;
}

/** Splits a PEM bundle into its certificates (leaf first). */
export function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** Parses a PEM bundle; throws with the reason when it holds no parsable certificate. */
export function parseCertificates(pem: string): X509Certificate[] {
  const blocks = splitPem(pem);
  if (blocks.length === 0) throw new Error('Failed to load certificate chain from <inline>');
  return blocks.map((block) => new X509Certificate(block));
}

const timestamp = (date: Date) => date.toISOString().replace(/\.000Z$/, 'Z');

function subjectAltNames(certificate: X509Certificate): CertificateDetails['subject_alt_names'] {
  const text = certificate.subjectAltName;
  if (!text) return [];
  const names: Array<{ uri: string } | { dns: string } | { ip_address: string }> = [];
  for (const entry of text.split(/,\s*/)) {
    const separator = entry.indexOf(':');
    const kind = entry.slice(0, separator);
    const value = entry.slice(separator + 1);
    if (kind === 'URI') names.push({ uri: value });
    else if (kind === 'DNS') names.push({ dns: value });
    else if (kind === 'IP Address') names.push({ ip_address: value });
  }
  return names;
}

/** What Envoy's `/certs` shows for a certificate: serial in lowercase hex, SANs, whole days left. */
export function describeCertificate(
  certificate: X509Certificate,
  path: string,
  now: Date,
): CertificateDetails {
  const expiry = certificate.validToDate;
  const days = Math.max(0, Math.floor((expiry.getTime() - now.getTime()) / 86_400_000));
  return {
    path,
    serial_number: certificate.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''),
    subject_alt_names: subjectAltNames(certificate),
    days_until_expiration: String(days),
    valid_from: timestamp(certificate.validFromDate),
    expiration_time: timestamp(expiry),
  };
}

/**
 * The certificates Envoy holds from SDS: the workload chain (`default`) and the trust bundle (`ROOTCA`),
 * rendered as `/certs` shows one TLS context using both. Inline SDS secrets have the path `<inline>`.
 */
export class CertificateStore {
  #chain: X509Certificate[] = [];
  #roots: X509Certificate[] = [];

  setCertificateChain(pem: string): void {
    this.#chain = parseCertificates(pem);
  }

  setTrustedCa(pem: string): void {
    this.#roots = parseCertificates(pem);
  }

  get empty(): boolean {
    return this.#chain.length === 0 && this.#roots.length === 0;
  }

  /** Days until the earliest expiry among held certificates (`server.days_until_first_cert_expiring`). */
  daysUntilFirstExpiry(now: Date): number | undefined {
    const all = [...this.#chain.slice(0, 1), ...this.#roots];
    if (all.length === 0) return undefined;
    const earliest = Math.min(...all.map((certificate) => certificate.validToDate.getTime()));
    return Math.max(0, Math.floor((earliest - now.getTime()) / 86_400_000));
  }

  toJson(now: Date): {
    certificates: Array<{ ca_cert: CertificateDetails[]; cert_chain: CertificateDetails[] }>;
  } {
    if (this.empty) return { certificates: [] };
    const leaf = this.#chain[0];
    return {
      certificates: [
        {
          // Envoy reports the first certificate of the trust bundle.
          ca_cert: this.#roots
            .slice(0, 1)
            .map((certificate) => describeCertificate(certificate, '<inline>', now)),
          cert_chain: leaf ? [describeCertificate(leaf, '<inline>', now)] : [],
        },
      ],
    };
  }
}
