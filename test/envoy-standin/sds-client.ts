import { type Client, type ClientDuplexStream, credentials, type ServiceError } from '@grpc/grpc-js';
import type { EnvoyAddress } from './addresses.ts';
import { JitteredBackoff } from './backoff.ts';
import type { NodeConfig } from './bootstrap-model.ts';
import type { CertificateStore } from './certificates.ts';
import { grpcTarget } from './grpc-target.ts';
import type { ComponentLogger } from './log.ts';
import type { StatsStore } from './stats.ts';
import { versionHash, xdsNode } from './xds-node.ts';
import { type AnyMessage, anyTypeUrl, secretDiscoveryService, typeUrls } from './xds-protos.ts';

/** The SDS resources Istio's agent serves: the workload certificate and the root of trust. */
export const sdsSecretNames = ['default', 'ROOTCA'] as const;

export interface SdsClientOptions {
  readonly clusterName: string;
  readonly endpoints: readonly EnvoyAddress[];
  readonly node: NodeConfig;
  readonly certificates: CertificateStore;
  readonly stats: StatsStore;
  readonly log: ComponentLogger;
  readonly random?: () => number;
  /** Called after each accepted push, so the server can refresh derived stats. */
  readonly onUpdate?: (secretName: string) => void;
}

type Stream = ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;

function pemOf(source: unknown): string | undefined {
  if (typeof source !== 'object' || source === null) return undefined;
  const data = source as Record<string, unknown>;
  if (Buffer.isBuffer(data.inline_bytes) && data.inline_bytes.length > 0)
    return data.inline_bytes.toString('utf8');
  if (data.inline_bytes instanceof Uint8Array && data.inline_bytes.length > 0) {
    return Buffer.from(data.inline_bytes).toString('utf8');
  }
  if (typeof data.inline_string === 'string' && data.inline_string !== '') return data.inline_string;
  return undefined;
}

/**
 * Envoy's SDS subscriptions to the `sds-grpc` cluster: one StreamSecrets stream per secret (`default`,
 * `ROOTCA`), ACK/NACK per push, stats under `sds.<name>.`, re-opened with back-off when dropped. Accepted
 * secrets update the certificate store behind `/certs`.
 */
export class SdsClient {
  readonly #options: SdsClientOptions;
  #client: Client | undefined;
  readonly #streams = new Map<string, Stream>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;

  constructor(options: SdsClientOptions) {
    this.#options = options;
  }

  start(): void {
    const Service = secretDiscoveryService();
    const { target, options } = grpcTarget(this.#options.clusterName, this.#options.endpoints);
    this.#client = new Service(target, credentials.createInsecure(), options);
    for (const name of sdsSecretNames) {
      for (const counter of ['update_attempt', 'update_success', 'update_rejected', 'update_failure']) {
        this.#options.stats.counter(`sds.${name}.${counter}`);
      }
      this.#open(name, new JitteredBackoff(500, 30_000, this.#options.random), '');
    }
  }

  #open(name: string, backoff: JitteredBackoff, acceptedVersion: string): void {
    if (this.#stopped || !this.#client) return;
    const method = (this.#client as unknown as Record<string, () => Stream>).StreamSecrets;
    if (!method) throw new Error('StreamSecrets missing from the SDS service definition');
    const stream = method.call(this.#client);
    this.#streams.set(name, stream);
    const { stats, log } = this.#options;
    const prefix = `sds.${name}`;
    let version = acceptedVersion;
    stats.counter(`${prefix}.update_attempt`).inc();
    stream.write({
      node: xdsNode(this.#options.node),
      version_info: version,
      resource_names: [name],
      type_url: typeUrls.secret,
      response_nonce: '',
    });
    stream.on('data', (response: Record<string, unknown>) => {
      backoff.reset();
      stats.counter(`${prefix}.update_attempt`).inc();
      const nonce = String(response.nonce ?? '');
      const error = this.#apply(name, (response.resources as AnyMessage[] | undefined) ?? []);
      if (error === undefined) {
        version = String(response.version_info ?? '');
        stats.counter(`${prefix}.update_success`).inc();
        stats.gauge(`${prefix}.version`, 'never_import').set(versionHash(version));
        stream.write({
          version_info: version,
          resource_names: [name],
          type_url: typeUrls.secret,
          response_nonce: nonce,
        });
        this.#options.onUpdate?.(name);
      } else {
        stats.counter(`${prefix}.update_rejected`).inc();
        log.warn(`gRPC config for ${typeUrls.secret} rejected: ${error}`);
        stream.write({
          version_info: version,
          resource_names: [name],
          type_url: typeUrls.secret,
          response_nonce: nonce,
          error_detail: { code: 13, message: error },
        });
      }
    });
    let closed = false;
    const onClosed = (code: number, details: string) => {
      if (closed) return;
      closed = true;
      if (this.#streams.get(name) === stream) this.#streams.delete(name);
      stats.counter(`${prefix}.update_failure`).inc();
      if (this.#stopped) return;
      log.warn(
        `StreamSecrets gRPC config stream to ${this.#options.clusterName} closed: ${code}, ${details}`,
      );
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.#open(name, backoff, version);
      }, backoff.next());
      this.#timers.add(timer);
    };
    stream.on('error', (error: ServiceError) => onClosed(error.code ?? 2, error.details ?? error.message));
    stream.on('end', () => onClosed(0, 'stream ended'));
  }

  /** Validates and stores a pushed secret; returns the NACK message on failure. */
  #apply(name: string, resources: readonly AnyMessage[]): string | undefined {
    const secret = resources.find((resource) => resource.name === name);
    if (!secret) {
      return resources.length === 0 ? undefined : `Unexpected SDS secrets length: ${resources.length}`;
    }
    if (anyTypeUrl(secret) !== typeUrls.secret) {
      return `type URL ${anyTypeUrl(secret)} embedded in an individual Any does not match the message-wide type URL ${typeUrls.secret} in DiscoveryResponse`;
    }
    try {
      const certificate = secret.tls_certificate as Record<string, unknown> | undefined;
      const validation = secret.validation_context as Record<string, unknown> | undefined;
      if (certificate) {
        const pem = pemOf(certificate.certificate_chain);
        if (!pem)
          return `Failed to load incomplete certificate from <inline>: certificate_chain is empty (secret ${name})`;
        this.#options.certificates.setCertificateChain(pem);
      } else if (validation) {
        const pem = pemOf(validation.trusted_ca);
        if (!pem) return `Failed to load trusted CA certificates from <inline> (secret ${name})`;
        this.#options.certificates.setTrustedCa(pem);
      } else {
        return `secret ${name} holds neither tls_certificate nor validation_context`;
      }
    } catch (error) {
      return `Failed to load certificate chain from <inline>: ${(error as Error).message}`;
    }
    return undefined;
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    for (const stream of this.#streams.values()) stream.cancel();
    this.#streams.clear();
    this.#client?.close();
  }
}
