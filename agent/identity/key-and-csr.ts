import 'reflect-metadata';
import { KeyObject, webcrypto } from 'node:crypto';
import { Pkcs10CertificateRequestGenerator, SubjectAlternativeNameExtension } from '@peculiar/x509';
import type { SecurityConfig } from '../config/agent-config.ts';

export type KeyAlgorithm = SecurityConfig['keyAlgorithm'];

/** A fresh key pair and the CSR that asks the CA to certify it for one SPIFFE identity. */
export interface KeyAndCsr {
  /** PEM: PKCS#1 (RSA) or SEC 1 (ECDSA) as Istio writes them, PKCS#8 with `PKCS8_KEY=true`. */
  readonly privateKeyPem: string;
  /** The same key for checks (does the issued leaf match it?). */
  readonly privateKey: KeyObject;
  readonly csrPem: string;
}

const curves = {
  P256: { namedCurve: 'P-256', hash: 'SHA-256' },
  P384: { namedCurve: 'P-384', hash: 'SHA-384' },
} as const;

/**
 * Generates the workload key and a CSR with an empty subject and a critical subjectAltName holding the
 * SPIFFE URI (RFC 5280 requires the SAN to be critical when the subject is empty), signed SHA-256 (RSA,
 * P-256) or SHA-384 (P-384), as Go's x509 picks for these keys.
 */
export async function generateKeyAndCsr(
  algorithm: KeyAlgorithm,
  spiffeId: string,
  pkcs8: boolean,
): Promise<KeyAndCsr> {
  const parameters =
    algorithm.kind === 'RSA'
      ? {
          generate: {
            name: 'RSASSA-PKCS1-v1_5',
            modulusLength: algorithm.size,
            publicExponent: new Uint8Array([1, 0, 1]),
            hash: 'SHA-256',
          },
          sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
        }
      : {
          generate: { name: 'ECDSA', namedCurve: curves[algorithm.curve].namedCurve },
          sign: { name: 'ECDSA', hash: curves[algorithm.curve].hash },
        };
  const keys = (await webcrypto.subtle.generateKey(parameters.generate, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const csr = await Pkcs10CertificateRequestGenerator.create(
    {
      keys,
      signingAlgorithm: parameters.sign,
      extensions: [new SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true)],
    },
    webcrypto as Crypto,
  );
  const privateKey = KeyObject.from(keys.privateKey);
  const type = pkcs8 ? 'pkcs8' : algorithm.kind === 'RSA' ? 'pkcs1' : 'sec1';
  return {
    privateKeyPem: privateKey.export({ type, format: 'pem' }).toString(),
    privateKey,
    csrPem: csr.toString('pem'),
  };
}
