import { isIP } from 'node:net';
import type { ChannelOptions } from '@grpc/grpc-js';
import type { EnvoyAddress } from './addresses.ts';

/**
 * The gRPC target for an `envoy_grpc` cluster's first endpoint: a Unix pipe (relative paths resolve against
 * the working directory, as Envoy's do) or a socket address. The :authority is the cluster name, as Envoy
 * sends it for envoy_grpc services.
 */
export function grpcTarget(
  clusterName: string,
  endpoints: readonly EnvoyAddress[],
): { target: string; options: ChannelOptions } {
  const endpoint = endpoints[0];
  if (!endpoint) throw new Error(`cluster '${clusterName}' has no endpoint to open a gRPC stream to`);
  const options: ChannelOptions = {
    'grpc.default_authority': clusterName,
    'grpc.max_receive_message_length': -1,
    // Envoy retries streams itself with its own back-off; the channel should not add its own delays.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1000,
  };
  if (endpoint.kind === 'pipe') {
    const path = endpoint.path.startsWith('@') ? `\0${endpoint.path.slice(1)}` : endpoint.path;
    return { target: `unix:${path}`, options };
  }
  const host =
    isIP(endpoint.address) === 6
      ? `ipv6:[${endpoint.address}]`
      : isIP(endpoint.address) === 4
        ? `ipv4:${endpoint.address}`
        : `dns:${endpoint.address}`;
  return { target: `${host}:${endpoint.port}`, options };
}
