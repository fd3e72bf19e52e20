import type { GrpcObject, ServiceClientConstructor } from '@grpc/grpc-js';
import { loadEnvoyProtos } from '../../agent/envoy-api/protos.ts';

/**
 * Envoy's ADS and SDS services, loaded with the project's shared loader. Only the service protos are loaded
 * (resources stay packed in their Any and are read by xds-resources.ts), which keeps start-up short.
 */
function lookup(path: string): ServiceClientConstructor {
  let current: unknown = loadEnvoyProtos([
    'envoy/service/discovery/v3/ads.proto',
    'envoy/service/secret/v3/sds.proto',
  ]);
  for (const part of path.split('.')) current = (current as GrpcObject)[part];
  if (typeof current !== 'function') throw new Error(`gRPC service ${path} not found in Envoy's protos`);
  return current as ServiceClientConstructor;
}

export const aggregatedDiscoveryService = () =>
  lookup('envoy.service.discovery.v3.AggregatedDiscoveryService');
export const secretDiscoveryService = () => lookup('envoy.service.secret.v3.SecretDiscoveryService');

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
