import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CallOptions,
  type Client,
  type ClientUnaryCall,
  type GrpcObject,
  loadPackageDefinition,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** `ca.proto`, next to this module (`npm run build` copies it into dist/). */
export const caProtoFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ca.proto');

/** `google.protobuf.Struct` as proto-loader represents it (only string values are used here). */
export interface ProtobufStruct {
  readonly fields: Readonly<Record<string, { readonly stringValue?: string; readonly kind?: string }>>;
}

/** The request as it travels through proto-loader: int64 as a decimal string. */
export interface IstioCertificateRequest {
  readonly csr: string;
  readonly validity_duration: string;
  readonly metadata: ProtobufStruct | null;
}

export interface IstioCertificateResponse {
  readonly cert_chain: readonly string[];
}

/** The generated client of `istio.v1.auth.IstioCertificateService`. */
export interface IstioCertificateClient extends Client {
  CreateCertificate(
    request: IstioCertificateRequest,
    options: CallOptions,
    callback: (error: ServiceError | null, response?: IstioCertificateResponse) => void,
  ): ClientUnaryCall;
}

let service: ServiceClientConstructor | undefined;

/**
 * `istio.v1.auth.IstioCertificateService`, loaded once with Envoy's loader conventions (snake_case fields,
 * int64 as strings). Its `.service` is the definition a server registers.
 */
export function istioCertificateService(): ServiceClientConstructor {
  if (!service) {
    const loaded = loadPackageDefinition(
      loadSync(caProtoFile, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true }),
    );
    const auth = ((loaded.istio as GrpcObject).v1 as GrpcObject).auth as GrpcObject;
    service = auth.IstioCertificateService as ServiceClientConstructor;
  }
  return service;
}
