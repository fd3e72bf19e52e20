import type { NodeConfig } from './bootstrap-model.ts';
import { envoyRelease } from './version.ts';
import { toStruct } from './xds-protos.ts';

/** The client features Envoy announces in `node.client_features` (a representative subset). */
const clientFeatures = [
  'envoy.config.require-any-fields-contain-struct',
  'envoy.lb.does_not_support_overprovisioning',
  'envoy.lrs.supports_send_all_clusters',
  'xds.config.supports-resource-ttl',
  'xds.config.resource-in-sotw',
];

/** The `node` Envoy sends on xDS requests: the bootstrap's node plus what Envoy adds about itself. */
export function xdsNode(node: NodeConfig): Record<string, unknown> {
  return {
    id: node.id,
    cluster: node.cluster,
    metadata: toStruct(node.metadata),
    ...(node.locality ? { locality: node.locality } : {}),
    user_agent_name: 'envoy',
    user_agent_build_version: {
      version: {
        major_number: envoyRelease.major,
        minor_number: envoyRelease.minor,
        patch: envoyRelease.patch,
      },
    },
    client_features: clientFeatures,
  };
}

/** A stable 48-bit FNV-1a hash of a version string, for the `*.version` gauges (Envoy: xxHash64). */
export function versionHash(version: string): number {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(version)) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(hash & 0xffffffffffffn);
}
