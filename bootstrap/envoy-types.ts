/**
 * The parts of Envoy's v3 API that the agent's bootstrap emits, in Envoy's own JSON field names (snake_case).
 * Types only: the schema itself comes from Envoy's protos (see `validate.ts`), which is what every generated
 * bootstrap is checked against.
 */

/** JSON forms of `google.protobuf.Duration` ("1s", "0.250s"). */
export type DurationString = `${number}s`;

/** `google.protobuf.Struct` in JSON: any JSON object. */
export type JsonObject = { readonly [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonObject | readonly JsonValue[];

/** `google.protobuf.Any` in JSON: the payload's fields next to its type URL. */
export interface TypedConfig {
  readonly '@type': string;
  readonly [field: string]: unknown;
}

export interface TypedExtensionConfig {
  readonly name: string;
  readonly typed_config: TypedConfig;
}

/** envoy.config.bootstrap.v3.Bootstrap */
export interface Bootstrap {
  readonly node: Node;
  readonly admin: Admin;
  readonly static_resources: StaticResources;
  readonly dynamic_resources: DynamicResources;
  readonly stats_config: StatsConfig;
  readonly layered_runtime: LayeredRuntime;
  readonly bootstrap_extensions?: readonly TypedExtensionConfig[];
  readonly cluster_manager?: ClusterManager;
  readonly tracing?: Tracing;
}

/** envoy.config.core.v3.Node */
export interface Node {
  readonly id: string;
  readonly cluster: string;
  readonly locality: Locality;
  readonly metadata: JsonObject;
}

/** envoy.config.core.v3.Locality */
export interface Locality {
  readonly region?: string;
  readonly zone?: string;
  readonly sub_zone?: string;
}

/** envoy.config.bootstrap.v3.Admin */
export interface Admin {
  readonly access_log: readonly TypedExtensionConfig[];
  readonly profile_path: string;
  readonly address: Address;
}

/** envoy.config.core.v3.Address (the `socket_address` and `pipe` members of its oneof). */
export type Address = { readonly socket_address: SocketAddress } | { readonly pipe: Pipe };

export interface SocketAddress {
  readonly protocol?: 'TCP' | 'UDP';
  readonly address: string;
  readonly port_value: number;
}

export interface Pipe {
  readonly path: string;
}

export interface StaticResources {
  readonly clusters: readonly Cluster[];
  readonly listeners: readonly Listener[];
}

/** envoy.config.cluster.v3.Cluster, the fields the static clusters use. */
export interface Cluster {
  readonly name: string;
  readonly type: 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS';
  readonly connect_timeout: DurationString;
  readonly lb_policy: 'ROUND_ROBIN';
  readonly load_assignment: ClusterLoadAssignment;
  readonly typed_extension_protocol_options?: { readonly [extension: string]: TypedConfig };
  readonly circuit_breakers?: { readonly thresholds: readonly CircuitBreakerThreshold[] };
  readonly upstream_connection_options?: { readonly tcp_keepalive: { readonly keepalive_time: number } };
  readonly max_requests_per_connection?: number;
  readonly respect_dns_ttl?: boolean;
  readonly dns_lookup_family?: 'V4_ONLY' | 'V6_ONLY' | 'ALL';
  readonly dns_refresh_rate?: DurationString;
}

export interface CircuitBreakerThreshold {
  readonly priority: 'DEFAULT' | 'HIGH';
  readonly max_connections: number;
  readonly max_pending_requests: number;
  readonly max_requests: number;
}

/** envoy.config.endpoint.v3.ClusterLoadAssignment */
export interface ClusterLoadAssignment {
  readonly cluster_name: string;
  readonly endpoints: readonly {
    readonly lb_endpoints: readonly { readonly endpoint: { readonly address: Address } }[];
  }[];
}

/** envoy.config.listener.v3.Listener, the fields the static listeners use. */
export interface Listener {
  readonly name: string;
  readonly address: Address;
  /**
   * `INBOUND` listeners are the ones `POST /drain_listeners?inboundonly` drains; the agent's static listeners
   * (readiness, Prometheus) must keep serving during a drain, so they say `UNSPECIFIED` as Istio's do.
   */
  readonly traffic_direction: 'UNSPECIFIED' | 'INBOUND' | 'OUTBOUND';
  readonly ignore_global_conn_limit?: boolean;
  readonly filter_chains: readonly { readonly filters: readonly TypedExtensionConfig[] }[];
}

/** envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager */
export interface HttpConnectionManager extends TypedConfig {
  readonly codec_type: 'AUTO';
  readonly stat_prefix: string;
  readonly route_config: RouteConfiguration;
  readonly http_filters: readonly TypedExtensionConfig[];
}

/** envoy.config.route.v3.RouteConfiguration */
export interface RouteConfiguration {
  readonly virtual_hosts: readonly VirtualHost[];
}

export interface VirtualHost {
  readonly name: string;
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
}

export interface Route {
  readonly match: { readonly prefix: string };
  readonly route: { readonly cluster: string };
}

/** envoy.config.bootstrap.v3.Bootstrap.DynamicResources */
export interface DynamicResources {
  readonly lds_config: ConfigSource;
  readonly cds_config: ConfigSource;
  readonly ads_config: ApiConfigSource;
}

/** envoy.config.core.v3.ConfigSource (the ADS member). */
export interface ConfigSource {
  readonly ads: JsonObject;
  readonly initial_fetch_timeout: DurationString;
  readonly resource_api_version: 'V3';
}

/** envoy.config.core.v3.ApiConfigSource */
export interface ApiConfigSource {
  readonly api_type: 'GRPC' | 'DELTA_GRPC';
  readonly set_node_on_first_message_only: boolean;
  readonly transport_api_version: 'V3';
  readonly grpc_services: readonly { readonly envoy_grpc: { readonly cluster_name: string } }[];
}

/** envoy.config.metrics.v3.StatsConfig */
export interface StatsConfig {
  readonly use_all_default_tags: boolean;
  readonly stats_tags: readonly TagSpecifier[];
  readonly histogram_bucket_settings?: readonly HistogramBucketSettings[];
  readonly stats_matcher: { readonly inclusion_list: { readonly patterns: readonly StringMatcher[] } };
}

export interface TagSpecifier {
  readonly tag_name: string;
  readonly regex: string;
}

export interface HistogramBucketSettings {
  readonly match: StringMatcher;
  readonly buckets: readonly number[];
}

/** envoy.type.matcher.v3.StringMatcher, the members the inclusion list uses. */
export type StringMatcher =
  | { readonly prefix: string }
  | { readonly suffix: string }
  | { readonly safe_regex: { readonly regex: string } };

/** envoy.config.bootstrap.v3.LayeredRuntime */
export interface LayeredRuntime {
  readonly layers: readonly RuntimeLayer[];
}

export type RuntimeLayer =
  | { readonly name: string; readonly static_layer: JsonObject }
  | { readonly name: string; readonly admin_layer: JsonObject };

/** envoy.config.bootstrap.v3.ClusterManager */
export interface ClusterManager {
  readonly outlier_detection: { readonly event_log_path: string };
}

/** envoy.config.trace.v3.Tracing */
export interface Tracing {
  readonly http: TypedExtensionConfig;
}
