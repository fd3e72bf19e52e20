import { randomBytes } from 'node:crypto';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  type GrpcObject,
  loadPackageDefinition,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServiceClientConstructor,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { load } from '@grpc/proto-loader';
import { envoyProtoLoaderOptions } from '../envoy-api/protos.ts';
import type { Logger } from '../log.ts';
import {
  type CertificateStore,
  rootResourceName,
  type WorkloadSecret,
  workloadResourceName,
} from './certificate-store.ts';

export const secretTypeUrl = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

/** Envoy's SDS service with the Secret message loaded alongside, so `@type` resources are packed into Any. */
export const sdsProtoFiles = [
  'envoy/service/secret/v3/sds.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
] as const;

/** `envoy.service.discovery.v3.DiscoveryRequest` as proto-loader hands it over (only the fields used). */
interface DiscoveryRequest {
  readonly version_info: string;
  readonly node: { readonly id?: string } | null;
  readonly resource_names: readonly string[];
  readonly type_url: string;
  readonly response_nonce: string;
  readonly error_detail: { readonly code?: number; readonly message?: string } | null;
}

interface DiscoveryResponse {
  readonly version_info: string;
  readonly resources: readonly Record<string, unknown>[];
  readonly type_url: string;
  readonly nonce: string;
}

export interface SdsServerOptions {
  /** `./var/run/secrets/workload-spiffe-uds/socket`. */
  readonly socketPath: string;
  readonly store: CertificateStore;
  readonly logger: Logger;
}

/** One `StreamSecrets` stream (one per secret Envoy watches, in practice). */
interface SdsConnection {
  readonly id: number;
  readonly call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  node: string;
  watched: ReadonlySet<string>;
  /** Resource → the version last sent on this stream. */
  readonly sent: Map<string, number>;
}

/**
 * The SDS server Envoy's `sds-grpc` cluster dials on a Unix socket: `StreamSecrets` serves `default` (the
 * workload chain and key inline) and `ROOTCA` (the trusted root as a validation context), answers a
 * request as soon as the secret exists, and pushes a new version whenever the store changes. Fetch and
 * Delta are not offered, as in Istio.
 */
export class SdsServer {
  readonly #options: SdsServerOptions;
  readonly #connections = new Set<SdsConnection>();
  #server: Server | undefined;
  #nextConnectionId = 1;
  readonly #onWorkloadChanged = () => this.#pushAll(workloadResourceName);
  readonly #onRootChanged = () => this.#pushAll(rootResourceName);

  constructor(options: SdsServerOptions) {
    this.#options = options;
  }

  get socketPath(): string {
    return this.#options.socketPath;
  }

  /** Number of open `StreamSecrets` streams. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  async start(): Promise<void> {
    const { socketPath, store } = this.#options;
    await mkdir(path.dirname(socketPath), { recursive: true });
    await removeStaleSocket(socketPath);
    const service = await loadSecretDiscoveryService();
    const server = new Server();
    const implementation: UntypedServiceImplementation = {
      StreamSecrets: (call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => this.#stream(call),
      FetchSecrets: (
        _call: ServerUnaryCall<DiscoveryRequest, DiscoveryResponse>,
        callback: sendUnaryData<DiscoveryResponse>,
      ) =>
        callback({
          code: status.UNIMPLEMENTED,
          details: 'FetchSecrets is not implemented; use StreamSecrets',
        }),
      DeltaSecrets: (call: ServerDuplexStream<unknown, unknown>) =>
        call.emit('error', {
          code: status.UNIMPLEMENTED,
          details: 'DeltaSecrets is not implemented; use StreamSecrets',
        }),
    };
    server.addService(service.service, implementation);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(), (error) =>
        error ? reject(new Error(`SDS server cannot listen on ${socketPath}: ${error.message}`)) : resolve(),
      ),
    );
    this.#server = server;
    store.on('workload-changed', this.#onWorkloadChanged);
    store.on('root-changed', this.#onRootChanged);
    this.#options.logger.info(`SDS server listening on ${socketPath}`);
  }

  async stop(): Promise<void> {
    const { store, socketPath } = this.#options;
    store.off('workload-changed', this.#onWorkloadChanged);
    store.off('root-changed', this.#onRootChanged);
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    // Envoy's streams never end on their own; cancel them rather than wait.
    server.forceShutdown();
    this.#connections.clear();
    await unlink(socketPath).catch(() => {});
  }

  #stream(call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
    const { logger } = this.#options;
    const connection: SdsConnection = {
      id: this.#nextConnectionId++,
      call,
      node: '',
      watched: new Set(),
      sent: new Map(),
    };
    this.#connections.add(connection);
    const close = () => this.#connections.delete(connection);
    call.on('data', (request: DiscoveryRequest) => this.#request(connection, request));
    call.on('end', () => {
      close();
      call.end();
    });
    call.on('cancelled', close);
    call.on('error', (error) => {
      close();
      logger.debug(`SDS: connection ${connection.id} closed: ${error.message}`);
    });
  }

  #request(connection: SdsConnection, request: DiscoveryRequest): void {
    const { logger } = this.#options;
    if (connection.node === '' && request.node?.id) {
      connection.node = request.node.id;
      logger.debug(`SDS: new connection ${connection.id} from ${connection.node}`);
    }
    if (request.type_url !== '' && request.type_url !== secretTypeUrl) {
      logger.warn(
        `SDS: connection ${connection.id} asked for type ${request.type_url}; only ${secretTypeUrl} is served`,
      );
      return;
    }
    if (request.error_detail) {
      logger.warn(
        `SDS: Envoy rejected ${request.resource_names.join(', ')} version ${request.version_info}: ${request.error_detail.message ?? ''}`,
      );
    }
    const unknown = request.resource_names.filter(
      (name) => name !== workloadResourceName && name !== rootResourceName && !connection.watched.has(name),
    );
    if (unknown.length > 0) {
      logger.warn(
        `SDS: resources ${unknown.join(', ')} are not served (only ${workloadResourceName} and ${rootResourceName})`,
      );
    }
    connection.watched = new Set(request.resource_names);
    for (const name of connection.sent.keys())
      if (!connection.watched.has(name)) connection.sent.delete(name);
    this.#send(connection);
  }

  #pushAll(resourceName: string): void {
    for (const connection of this.#connections) {
      if (connection.watched.has(resourceName)) this.#send(connection);
    }
  }

  /** Sends every watched resource whose current version this stream has not seen yet. */
  #send(connection: SdsConnection): void {
    const { store, logger } = this.#options;
    const secret = store.secret;
    if (!secret) return;
    const resources: Record<string, unknown>[] = [];
    const names: string[] = [];
    let version = 0;
    for (const name of connection.watched) {
      const current =
        name === workloadResourceName
          ? store.workloadVersion
          : name === rootResourceName
            ? store.rootVersion
            : 0;
      if (current === 0 || connection.sent.get(name) === current) continue;
      resources.push(secretResource(name, secret));
      names.push(name);
      connection.sent.set(name, current);
      version = Math.max(version, current);
    }
    if (resources.length === 0) return;
    connection.call.write({
      version_info: String(version),
      resources,
      type_url: secretTypeUrl,
      nonce: randomBytes(8).toString('hex'),
    });
    logger.info(
      `SDS: PUSH for ${connection.node || `connection ${connection.id}`} resources ${names.join(', ')} version ${version} (serial ${secret.leaf.serialNumber})`,
    );
  }
}

/** An `envoy.extensions.transport_sockets.tls.v3.Secret`, tagged with `@type` so protobufjs packs it into Any. */
function secretResource(name: string, secret: WorkloadSecret): Record<string, unknown> {
  if (name === rootResourceName) {
    return {
      '@type': secretTypeUrl,
      name,
      validation_context: { trusted_ca: { inline_bytes: Buffer.from(secret.rootCertPem) } },
    };
  }
  return {
    '@type': secretTypeUrl,
    name,
    tls_certificate: {
      certificate_chain: { inline_bytes: Buffer.from(secret.certificateChainPem) },
      private_key: { inline_bytes: Buffer.from(secret.privateKeyPem) },
    },
  };
}

let secretDiscoveryService: Promise<ServiceClientConstructor> | undefined;

/**
 * Envoy's SDS service, loaded once. Asynchronously (file by file), so that the first CSR, started at the same
 * time, is not held up by parsing a hundred proto files.
 */
function loadSecretDiscoveryService(): Promise<ServiceClientConstructor> {
  secretDiscoveryService ??= load([...sdsProtoFiles], envoyProtoLoaderOptions).then((definition) => {
    const envoy = loadPackageDefinition(definition).envoy as GrpcObject;
    return (((envoy.service as GrpcObject).secret as GrpcObject).v3 as GrpcObject)
      .SecretDiscoveryService as ServiceClientConstructor;
  });
  return secretDiscoveryService;
}

/** A socket left behind by a previous run would make bind fail; anything else at that path is an error. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  const existing = await lstat(socketPath).catch(() => undefined);
  if (!existing) return;
  if (!existing.isSocket()) {
    throw new Error(`SDS socket path ${socketPath} exists and is not a socket`);
  }
  await unlink(socketPath);
}
