import { EventEmitter } from 'node:events';
import {
  type ClientDuplexStream,
  credentials,
  type GrpcObject,
  loadPackageDefinition,
  type ServiceClientConstructor,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { envoyProtoLoaderOptions } from '../../agent/envoy-api/protos.ts';
import { sdsProtoFiles, secretTypeUrl } from '../../agent/identity/sds-server.ts';

/** One secret of an SDS response, decoded. */
export interface ReceivedSecret {
  readonly name: string;
  readonly certificateChainPem?: string;
  readonly privateKeyPem?: string;
  readonly trustedCaPem?: string;
}

export interface ReceivedResponse {
  readonly versionInfo: string;
  readonly nonce: string;
  readonly typeUrl: string;
  readonly secrets: readonly ReceivedSecret[];
}

let service: ServiceClientConstructor | undefined;

/** The SDS service with `json: true`, so Any resources arrive unpacked (`@type` plus the Secret's fields). */
export function secretDiscoveryService(): ServiceClientConstructor {
  service ??= (
    (
      (
        (
          loadPackageDefinition(loadSync([...sdsProtoFiles], { ...envoyProtoLoaderOptions, json: true }))
            .envoy as GrpcObject
        ).service as GrpcObject
      ).secret as GrpcObject
    ).v3 as GrpcObject
  ).SecretDiscoveryService as ServiceClientConstructor;
  return service;
}

interface RawSecret {
  name: string;
  tls_certificate?: {
    certificate_chain?: { inline_bytes?: Buffer };
    private_key?: { inline_bytes?: Buffer };
  };
  validation_context?: { trusted_ca?: { inline_bytes?: Buffer } };
}

/** Plays Envoy's side of `StreamSecrets` on the agent's Unix socket, recording every response. */
export class SdsTestClient extends EventEmitter<{ response: [ReceivedResponse]; error: [Error] }> {
  readonly responses: ReceivedResponse[] = [];
  readonly #client: InstanceType<ServiceClientConstructor>;
  readonly #stream: ClientDuplexStream<unknown, Record<string, unknown>>;
  #error: Error | undefined;

  constructor(socketPath: string) {
    super();
    const Service = secretDiscoveryService();
    this.#client = new Service(`unix:${socketPath}`, credentials.createInsecure());
    this.#stream = (
      this.#client as unknown as { StreamSecrets(): ClientDuplexStream<unknown, Record<string, unknown>> }
    ).StreamSecrets();
    this.#stream.on('data', (raw: Record<string, unknown>) => {
      const response: ReceivedResponse = {
        versionInfo: String(raw.version_info),
        nonce: String(raw.nonce),
        typeUrl: String(raw.type_url),
        secrets: (raw.resources as RawSecret[]).map(decodeSecret),
      };
      this.responses.push(response);
      this.emit('response', response);
    });
    // `EventEmitter.once` rejects on 'error', which ends a wait when the stream fails.
    this.on('error', () => {});
    this.#stream.on('error', (error) => {
      this.#error = error;
      this.emit('error', error);
    });
  }

  /** Sends a request as Envoy's SdsApi does (the first one has no version and no nonce). */
  request(resourceNames: readonly string[], acknowledge?: ReceivedResponse, errorMessage?: string): void {
    this.#stream.write({
      node: { id: 'sidecar~10.0.0.1~test.default~default.svc.cluster.local' },
      resource_names: [...resourceNames],
      type_url: secretTypeUrl,
      version_info: acknowledge?.versionInfo ?? '',
      response_nonce: acknowledge?.nonce ?? '',
      ...(errorMessage !== undefined ? { error_detail: { code: 3, message: errorMessage } } : {}),
    });
  }

  /** Resolves with the first recorded response (from index `from` on) that satisfies `predicate`. */
  async waitForResponse(
    predicate: (response: ReceivedResponse) => boolean = () => true,
    from = 0,
  ): Promise<ReceivedResponse> {
    for (;;) {
      const found = this.responses.slice(from).find(predicate);
      if (found) return found;
      if (this.#error) throw this.#error;
      await EventEmitter.once(this, 'response');
    }
  }

  close(): void {
    this.#stream.cancel();
    this.#client.close();
  }
}

function decodeSecret(raw: RawSecret): ReceivedSecret {
  const text = (buffer: Buffer | undefined) => (buffer ? Buffer.from(buffer).toString('utf8') : undefined);
  const chain = text(raw.tls_certificate?.certificate_chain?.inline_bytes);
  const key = text(raw.tls_certificate?.private_key?.inline_bytes);
  const ca = text(raw.validation_context?.trusted_ca?.inline_bytes);
  return {
    name: raw.name,
    ...(chain !== undefined ? { certificateChainPem: chain } : {}),
    ...(key !== undefined ? { privateKeyPem: key } : {}),
    ...(ca !== undefined ? { trustedCaPem: ca } : {}),
  };
}
