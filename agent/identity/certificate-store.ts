import { EventEmitter } from 'node:events';
import type { CertificateFacts } from './certificate-verification.ts';

/** The SDS resource names Envoy asks for, as istiod-generated listeners name them. */
export const workloadResourceName = 'default';
export const rootResourceName = 'ROOTCA';

export type SecretSource = 'ca' | 'files';

/**
 * The workload's key, chain and trusted root. The key sits in a private field behind a getter, so that
 * `JSON.stringify`, `util.inspect` and loggers never print it by accident.
 */
export class WorkloadSecret {
  readonly certificateChainPem: string;
  readonly rootCertPem: string;
  readonly leaf: CertificateFacts;
  readonly source: SecretSource;
  /** When the agent obtained it (clock milliseconds); the rotation schedule counts the lifetime from here. */
  readonly receivedAt: number;
  readonly #privateKeyPem: string;

  constructor(fields: {
    certificateChainPem: string;
    privateKeyPem: string;
    rootCertPem: string;
    leaf: CertificateFacts;
    source: SecretSource;
    receivedAt: number;
  }) {
    this.certificateChainPem = fields.certificateChainPem;
    this.#privateKeyPem = fields.privateKeyPem;
    this.rootCertPem = fields.rootCertPem;
    this.leaf = fields.leaf;
    this.source = fields.source;
    this.receivedAt = fields.receivedAt;
  }

  get privateKeyPem(): string {
    return this.#privateKeyPem;
  }

  toJSON(): Record<string, unknown> {
    return {
      source: this.source,
      serialNumber: this.leaf.serialNumber,
      uris: this.leaf.uris,
      notAfter: this.leaf.notAfter.toISOString(),
    };
  }
}

export interface CertificateStoreEvents {
  /** The workload chain or key changed (the first one included); `version` is the store's generation. */
  'workload-changed': [secret: WorkloadSecret, version: number];
  /** The trusted root changed (the first one included). */
  'root-changed': [rootCertPem: string, version: number];
}

/**
 * Holds the secret being served and tells SDS, the file writer and metrics when it changes. Every change
 * starts a new generation; each resource remembers the generation it last changed in (its version).
 */
export class CertificateStore extends EventEmitter<CertificateStoreEvents> {
  #secret: WorkloadSecret | undefined;
  #generation = 0;
  #workloadVersion = 0;
  #rootVersion = 0;

  get secret(): WorkloadSecret | undefined {
    return this.#secret;
  }

  /** The generation in which the workload chain or key last changed; 0 before the first. */
  get workloadVersion(): number {
    return this.#workloadVersion;
  }

  /** The generation in which the root last changed; 0 before the first. */
  get rootVersion(): number {
    return this.#rootVersion;
  }

  /** Replaces the secret; emits only for what actually changed (the root first, so trust precedes use). */
  update(secret: WorkloadSecret): void {
    const previous = this.#secret;
    this.#secret = secret;
    const workloadChanged =
      previous?.certificateChainPem !== secret.certificateChainPem ||
      previous.privateKeyPem !== secret.privateKeyPem;
    const rootChanged = previous?.rootCertPem !== secret.rootCertPem;
    if (!workloadChanged && !rootChanged) return;
    this.#generation += 1;
    if (rootChanged) this.#rootVersion = this.#generation;
    if (workloadChanged) this.#workloadVersion = this.#generation;
    if (rootChanged) this.emit('root-changed', secret.rootCertPem, this.#rootVersion);
    if (workloadChanged) this.emit('workload-changed', secret, this.#workloadVersion);
  }
}
