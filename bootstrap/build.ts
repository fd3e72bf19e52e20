import { isIPv6 } from 'node:net';
import path from 'node:path';
import type { AgentConfig } from '../agent/config/agent-config.ts';
import type {
  Address,
  Bootstrap,
  Cluster,
  DynamicResources,
  HttpConnectionManager,
  JsonObject,
  JsonValue,
  LayeredRuntime,
  Listener,
  Tracing,
  TypedConfig,
  TypedExtensionConfig,
} from './envoy-types.ts';
import { buildNode } from './node.ts';
import { buildStatsConfig } from './stats.ts';

export const clusterNames = {
  prometheusStats: 'prometheus_stats',
  agent: 'agent',
  xds: 'xds-grpc',
  sds: 'sds-grpc',
  zipkin: 'zipkin',
} as const;

export interface BuildOptions {
  /** Receives what Istio would log and ignore (an unparsable annotation, an unsupported tracer). */
  readonly onWarning?: (message: string) => void;
}

/** Where Envoy's admin server and the local clusters listen, and what the static listeners bind to. */
export interface ProxyAddresses {
  /** `127.0.0.1`, or `::1` when every instance IP is IPv6 (as Istio's bootstrap). */
  readonly loopback: string;
  /** `0.0.0.0`, or `::` when every instance IP is IPv6. */
  readonly wildcard: string;
  readonly ipv6: boolean;
}

export function proxyAddresses(config: AgentConfig): ProxyAddresses {
  const ipv6 = config.pod.instanceIps.length > 0 && config.pod.instanceIps.every((ip) => isIPv6(ip));
  return ipv6
    ? { loopback: '::1', wildcard: '::', ipv6 }
    : { loopback: '127.0.0.1', wildcard: '0.0.0.0', ipv6 };
}

/**
 * Envoy's v3 bootstrap for this agent, as Istio's sidecar template renders it (pure: everything comes from
 * the configuration). Overrides and custom files are applied by {@link generateBootstrap}.
 */
export function buildBootstrap(config: AgentConfig, options: BuildOptions = {}): Bootstrap {
  const warn = options.onWarning ?? (() => {});
  const addresses = proxyAddresses(config);
  const tracing = buildTracing(config, addresses, warn);
  return {
    node: buildNode(config),
    layered_runtime: buildLayeredRuntime(config),
    bootstrap_extensions: [
      {
        name: 'envoy.bootstrap.internal_listener',
        typed_config: {
          '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct',
          type_url: 'type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener',
          value: { buffer_size_kb: 64 },
        },
      },
    ],
    stats_config: buildStatsConfig(config, warn),
    admin: {
      access_log: [fileAccessLog('/dev/null')],
      profile_path: path.join(config.paths.dataDirectory, 'envoy.prof'),
      address: socketAddress(addresses.loopback, config.ports.proxyAdmin),
    },
    dynamic_resources: buildDynamicResources(config),
    static_resources: {
      clusters: [...buildStaticClusters(config, addresses), ...(tracing ? [tracing.cluster] : [])],
      listeners: buildStaticListeners(config, addresses),
    },
    ...(tracing ? { tracing: tracing.tracing } : {}),
    ...(config.outlierLogPath
      ? { cluster_manager: { outlier_detection: { event_log_path: config.outlierLogPath } } }
      : {}),
  };
}

function socketAddress(address: string, port: number, protocol?: 'TCP'): Address {
  return { socket_address: { ...(protocol ? { protocol } : {}), address, port_value: port } };
}

function fileAccessLog(file: string): TypedExtensionConfig {
  return {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
      path: file,
    },
  };
}

/** Istio's runtime defaults: `runtimeValues` entries override them, and an empty value removes one. */
export const defaultRuntimeValues: JsonObject = {
  'envoy.deprecated_features:envoy.config.listener.v3.Listener.hidden_envoy_deprecated_use_original_dst': true,
  'envoy.reloadable_features.http_reject_path_with_fragment': false,
  'overload.global_downstream_max_connections': '2147483647',
  're2.max_program_size.error_level': '32768',
};

function buildLayeredRuntime(config: AgentConfig): LayeredRuntime {
  const values: Record<string, JsonValue> = { ...defaultRuntimeValues };
  for (const [key, value] of Object.entries(config.proxyConfig.runtimeValues ?? {})) {
    if (value === '') delete values[key];
    // Envoy no longer reads "true"/"false" strings as booleans; Istio's API only has strings.
    else values[key] = value === 'true' ? true : value === 'false' ? false : value;
  }
  const staticLayer: Record<string, JsonValue> = {};
  for (const key of Object.keys(values).sort()) staticLayer[key] = values[key] as JsonValue;
  return {
    layers: [
      { name: 'global config', static_layer: staticLayer },
      { name: 'admin', admin_layer: {} },
    ],
  };
}

function buildDynamicResources(config: AgentConfig): DynamicResources {
  const fromAds = () => ({ ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' }) as const;
  return {
    lds_config: fromAds(),
    cds_config: fromAds(),
    ads_config: {
      api_type: config.xds.delta ? 'DELTA_GRPC' : 'GRPC',
      set_node_on_first_message_only: true,
      transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: clusterNames.xds } }],
    },
  };
}

const http2ProtocolOptions: { readonly [extension: string]: TypedConfig } = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: { http2_protocol_options: {} },
  },
};

function staticCluster(name: string, address: Address, connectTimeout: '0.250s' | '1s'): Cluster {
  return {
    name,
    type: 'STATIC',
    connect_timeout: connectTimeout,
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
  };
}

function buildStaticClusters(config: AgentConfig, addresses: ProxyAddresses): Cluster[] {
  const breakers = { max_connections: 100000, max_pending_requests: 100000, max_requests: 100000 };
  return [
    staticCluster(
      clusterNames.prometheusStats,
      socketAddress(addresses.loopback, config.ports.proxyAdmin, 'TCP'),
      '0.250s',
    ),
    staticCluster(
      clusterNames.agent,
      socketAddress(addresses.loopback, config.ports.status, 'TCP'),
      '0.250s',
    ),
    {
      ...staticCluster(clusterNames.sds, { pipe: { path: config.paths.sdsSocket } }, '1s'),
      typed_extension_protocol_options: http2ProtocolOptions,
    },
    {
      ...staticCluster(clusterNames.xds, { pipe: { path: config.paths.xdsSocket } }, '1s'),
      circuit_breakers: {
        thresholds: [
          { priority: 'DEFAULT', ...breakers },
          { priority: 'HIGH', ...breakers },
        ],
      },
      upstream_connection_options: { tcp_keepalive: { keepalive_time: 300 } },
      max_requests_per_connection: 1,
      typed_extension_protocol_options: http2ProtocolOptions,
    },
  ];
}

function httpListener(
  bindAddress: string,
  port: number,
  statPrefix: string,
  pathPrefix: string,
  cluster: string,
): Listener {
  const connectionManager: HttpConnectionManager = {
    '@type':
      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    codec_type: 'AUTO',
    stat_prefix: statPrefix,
    route_config: {
      virtual_hosts: [
        { name: 'backend', domains: ['*'], routes: [{ match: { prefix: pathPrefix }, route: { cluster } }] },
      ],
    },
    http_filters: [
      {
        name: 'envoy.filters.http.router',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
      },
    ],
  };
  return {
    name: `${bindAddress}_${port}`,
    address: socketAddress(bindAddress, port, 'TCP'),
    traffic_direction: 'UNSPECIFIED',
    ignore_global_conn_limit: true,
    filter_chains: [
      {
        filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: connectionManager }],
      },
    ],
  };
}

function buildStaticListeners(config: AgentConfig, addresses: ProxyAddresses): Listener[] {
  return [
    httpListener(
      // METRICS_LOCALHOST_ACCESS_ONLY keeps Envoy's Prometheus endpoint inside the pod.
      config.metricsLocalhostAccessOnly ? addresses.loopback : addresses.wildcard,
      config.ports.envoyPrometheus,
      'stats',
      '/stats/prometheus',
      clusterNames.prometheusStats,
    ),
    httpListener(addresses.wildcard, config.ports.envoyStatus, 'agent', '/healthz/ready', clusterNames.agent),
  ];
}

/** ProxyConfig `tracing.zipkin` becomes a `zipkin` cluster and Envoy's HTTP tracer, as in Istio's template. */
function buildTracing(
  config: AgentConfig,
  addresses: ProxyAddresses,
  warn: (message: string) => void,
): { cluster: Cluster; tracing: Tracing } | undefined {
  const tracing = config.proxyConfig.tracing;
  if (typeof tracing !== 'object' || tracing === null) return undefined;
  const tracers = Object.keys(tracing).filter(
    (key) => !['sampling', 'customTags', 'maxPathTagLength', 'tlsSettings'].includes(key),
  );
  const zipkin = (tracing as { zipkin?: { address?: unknown } }).zipkin;
  if (zipkin === undefined) {
    if (tracers.length > 0)
      warn(`ProxyConfig.tracing.${tracers[0]} is not supported by this agent and is ignored`);
    return undefined;
  }
  const address = typeof zipkin.address === 'string' ? zipkin.address : '';
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(address);
  if (!match) {
    warn(`ProxyConfig.tracing.zipkin.address ${JSON.stringify(address)} is not host:port; tracing is off`);
    return undefined;
  }
  const host = match[1] ?? match[2] ?? '';
  const port = Number(match[3]);
  return {
    cluster: {
      name: clusterNames.zipkin,
      type: 'STRICT_DNS',
      respect_dns_ttl: true,
      dns_lookup_family: addresses.ipv6 ? 'V6_ONLY' : 'V4_ONLY',
      dns_refresh_rate: '30s',
      connect_timeout: '1s',
      lb_policy: 'ROUND_ROBIN',
      load_assignment: {
        cluster_name: clusterNames.zipkin,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(host, port) } }] }],
      },
    },
    tracing: {
      http: {
        name: 'envoy.tracers.zipkin',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig',
          collector_cluster: clusterNames.zipkin,
          collector_endpoint: '/api/v2/spans',
          collector_endpoint_version: 'HTTP_JSON',
          trace_id_128bit: true,
          shared_span_context: false,
        },
      },
    },
  };
}
