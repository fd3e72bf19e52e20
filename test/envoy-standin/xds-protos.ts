import { type GrpcObject, loadPackageDefinition, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { envoyProtoLoaderOptions } from '../../agent/envoy-api/protos.ts';

/** Type URLs of the resources the stand-in subscribes to. */
export const typeUrls = {
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

/** Envoy's xDS services and the resource types the stand-in decodes. */
const protoFiles = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
];

let loaded: GrpcObject | undefined;

/**
 * Loads the protos once, with the project's shared loader options plus `json: true`, so every
 * google.protobuf.Any of a known type arrives decoded as `{ '@type': url, ...fields }` (and may be sent that
 * way). Loading takes a few hundred ms, so it only happens when a control plane is configured.
 */
export function xdsProtos(): GrpcObject {
  loaded ??= loadPackageDefinition(loadSync(protoFiles, { ...envoyProtoLoaderOptions, json: true }));
  return loaded;
}

function lookup(path: string): ServiceClientConstructor {
  let current: unknown = xdsProtos();
  for (const part of path.split('.')) current = (current as Record<string, unknown>)[part];
  if (typeof current !== 'function') throw new Error(`gRPC service ${path} not found in Envoy's protos`);
  return current as ServiceClientConstructor;
}

export const aggregatedDiscoveryService = () =>
  lookup('envoy.service.discovery.v3.AggregatedDiscoveryService');
export const secretDiscoveryService = () => lookup('envoy.service.secret.v3.SecretDiscoveryService');

/** A google.protobuf.Any as proto-loader hands it over: decoded (`@type`) or raw (`type_url`, `value`). */
export type AnyMessage = Record<string, unknown>;

export function anyTypeUrl(any: AnyMessage): string {
  return typeof any['@type'] === 'string'
    ? any['@type']
    : typeof any.type_url === 'string'
      ? any.type_url
      : '';
}

/** JSON → google.protobuf.Struct in proto-loader's object form (Struct has no JSON mapping in protobufjs). */
export function toStruct(json: Record<string, unknown>): Record<string, unknown> {
  const value = (item: unknown): Record<string, unknown> => {
    if (item === null || item === undefined) return { null_value: 'NULL_VALUE' };
    if (typeof item === 'number') return { number_value: item };
    if (typeof item === 'string') return { string_value: item };
    if (typeof item === 'boolean') return { bool_value: item };
    if (Array.isArray(item)) return { list_value: { values: item.map(value) } };
    return { struct_value: toStruct(item as Record<string, unknown>) };
  };
  return { fields: Object.fromEntries(Object.entries(json).map(([key, item]) => [key, value(item)])) };
}
