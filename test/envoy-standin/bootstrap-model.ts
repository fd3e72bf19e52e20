import { type EnvoyAddress, parseAddress } from './addresses.ts';
import { type BootstrapJson, ConfigurationError } from './bootstrap-load.ts';
import { parseStringMatcher, type StringMatcher } from './string-matcher.ts';

/**
 * The parts of a v3 Bootstrap the stand-in acts on, read from normalised (snake_case) JSON. Reading fails
 * with Envoy-like messages where Envoy refuses the configuration.
 */

export type TrafficDirection = 'UNSPECIFIED' | 'INBOUND' | 'OUTBOUND';

export interface RouteAction {
  readonly kind: 'cluster';
  readonly cluster: string;
  /** Route timeout in ms; 0 disables it (Envoy's default is 15 s). */
  readonly timeoutMilliseconds: number;
  readonly prefixRewrite?: string;
}
export interface DirectResponseAction {
  readonly kind: 'direct_response';
  readonly status: number;
  readonly body: string;
}
export interface Route {
  readonly match:
    | { readonly kind: 'prefix'; readonly value: string; readonly ignoreCase: boolean }
    | { readonly kind: 'path'; readonly value: string; readonly ignoreCase: boolean }
    | { readonly kind: 'safe_regex'; readonly value: RegExp };
  readonly action: RouteAction | DirectResponseAction;
}
export interface VirtualHost {
  readonly name: string;
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
}
export interface HttpConnectionManagerConfig {
  readonly kind: 'http_connection_manager';
  readonly statPrefix: string;
  readonly routeConfigName: string;
  readonly virtualHosts: readonly VirtualHost[];
  /** `server_name`; Envoy writes `server: envoy` when unset. */
  readonly serverName: string;
}
export interface TcpProxyConfig {
  readonly kind: 'tcp_proxy';
  readonly statPrefix: string;
  readonly cluster: string;
}
export interface StaticListener {
  readonly name: string;
  readonly address: EnvoyAddress;
  readonly trafficDirection: TrafficDirection;
  /** `stat_prefix`, else the address: `listener.<this>.downstream_cx_active`. */
  readonly statPrefix: string | undefined;
  readonly handler: HttpConnectionManagerConfig | TcpProxyConfig | undefined;
}
export interface StaticCluster {
  readonly name: string;
  readonly type: string;
  readonly endpoints: readonly EnvoyAddress[];
  readonly connectTimeoutMilliseconds: number;
  readonly http2: boolean;
}
export interface GrpcServiceConfig {
  readonly clusterName: string;
  readonly initialMetadata: ReadonlyArray<readonly [string, string]>;
}
export interface AdsConfig extends GrpcServiceConfig {
  readonly apiType: 'GRPC' | 'DELTA_GRPC';
  readonly setNodeOnFirstMessageOnly: boolean;
}
export interface DynamicResourcesConfig {
  readonly ads: AdsConfig | undefined;
  readonly cdsFromAds: boolean;
  readonly ldsFromAds: boolean;
  /** `initial_fetch_timeout` of cds_config/lds_config in ms; 0 waits forever (Envoy's default is 15 s). */
  readonly cdsInitialFetchTimeoutMilliseconds: number;
  readonly ldsInitialFetchTimeoutMilliseconds: number;
}
export interface TagSpecifier {
  readonly tagName: string;
  readonly regex?: string;
  readonly fixedValue?: string;
}
export interface StatsConfig {
  readonly tagSpecifiers: readonly TagSpecifier[];
  readonly useAllDefaultTags: boolean;
  readonly matcher:
    | { readonly kind: 'all' }
    | { readonly kind: 'reject_all' }
    | { readonly kind: 'inclusion'; readonly patterns: readonly StringMatcher[] }
    | { readonly kind: 'exclusion'; readonly patterns: readonly StringMatcher[] };
  readonly histogramBuckets: ReadonlyArray<{
    readonly match: StringMatcher;
    readonly buckets: readonly number[];
  }>;
}
export interface NodeConfig {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Record<string, unknown>;
  readonly locality: Record<string, unknown> | undefined;
}
export interface StandinBootstrap {
  readonly node: NodeConfig;
  readonly adminAddress: EnvoyAddress | undefined;
  readonly listeners: readonly StaticListener[];
  readonly clusters: readonly StaticCluster[];
  readonly dynamic: DynamicResourcesConfig;
  readonly stats: StatsConfig;
  readonly json: BootstrapJson;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const asString = (value: unknown, fallback = ''): string => (typeof value === 'string' ? value : fallback);
/** google.protobuf.BoolValue in JSON: a bare boolean or `{value: bool}`. */
const boolValue = (value: unknown, fallback: boolean): boolean =>
  typeof value === 'boolean'
    ? value
    : isObject(value) && typeof value.value === 'boolean'
      ? value.value
      : fallback;

/** google.protobuf.Duration in JSON (`"1.5s"`) or object form (`{seconds, nanos}`), in ms. */
export function durationMilliseconds(value: unknown, fallback: number, where: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'string') {
    const match = /^(-?\d+(?:\.\d+)?)s$/.exec(value);
    if (!match) throw new ConfigurationError(`${where}: invalid duration '${value}'`);
    return Math.round(Number(match[1]) * 1000);
  }
  if (isObject(value)) return Number(value.seconds ?? 0) * 1000 + Math.round(Number(value.nanos ?? 0) / 1e6);
  throw new ConfigurationError(`${where}: invalid duration`);
}

const typeName = (any: Record<string, unknown>) => asString(any['@type']).replace(/^.*\//, '');

function parseRoute(route: unknown, where: string): Route {
  if (!isObject(route)) throw new ConfigurationError(`${where}: expected a Route`);
  const match = isObject(route.match) ? route.match : {};
  const ignoreCase = boolValue(match.case_sensitive, true) === false;
  let parsedMatch: Route['match'];
  if (typeof match.prefix === 'string') parsedMatch = { kind: 'prefix', value: match.prefix, ignoreCase };
  else if (typeof match.path === 'string') parsedMatch = { kind: 'path', value: match.path, ignoreCase };
  else if (isObject(match.safe_regex)) {
    try {
      parsedMatch = { kind: 'safe_regex', value: new RegExp(`^(?:${asString(match.safe_regex.regex)})$`) };
    } catch (error) {
      throw new ConfigurationError(`${where}.match.safe_regex: ${(error as Error).message}`);
    }
  } else
    throw new ConfigurationError(`${where}.match: the Envoy stand-in supports prefix, path and safe_regex`);

  if (isObject(route.route)) {
    const action = route.route;
    if (typeof action.cluster !== 'string' || action.cluster === '') {
      throw new ConfigurationError(`${where}.route: the Envoy stand-in routes to a named cluster only`);
    }
    return {
      match: parsedMatch,
      action: {
        kind: 'cluster',
        cluster: action.cluster,
        timeoutMilliseconds: durationMilliseconds(action.timeout, 15_000, `${where}.route.timeout`),
        ...(typeof action.prefix_rewrite === 'string' ? { prefixRewrite: action.prefix_rewrite } : {}),
      },
    };
  }
  if (isObject(route.direct_response)) {
    const direct = route.direct_response;
    const body = isObject(direct.body) ? asString(direct.body.inline_string) : '';
    return {
      match: parsedMatch,
      action: { kind: 'direct_response', status: Number(direct.status ?? 200), body },
    };
  }
  throw new ConfigurationError(`${where}: a route needs route or direct_response`);
}

function parseHttpConnectionManager(
  config: Record<string, unknown>,
  where: string,
): HttpConnectionManagerConfig {
  const statPrefix = asString(config.stat_prefix);
  if (statPrefix === '') {
    throw new ConfigurationError(
      `${where}: Proto constraint validation failed (HttpConnectionManagerValidationError.StatPrefix: value length must be at least 1 characters)`,
    );
  }
  if (!isObject(config.route_config)) {
    throw new ConfigurationError(`${where}: the Envoy stand-in serves inline route_config only (no RDS)`);
  }
  const routeConfig = config.route_config;
  const virtualHosts = asArray(routeConfig.virtual_hosts).map((host, index) => {
    const hostWhere = `${where}.route_config.virtual_hosts[${index}]`;
    if (!isObject(host)) throw new ConfigurationError(`${hostWhere}: expected a VirtualHost`);
    return {
      name: asString(host.name),
      domains: asArray(host.domains).map((domain) => asString(domain)),
      routes: asArray(host.routes).map((route, routeIndex) =>
        parseRoute(route, `${hostWhere}.routes[${routeIndex}]`),
      ),
    };
  });
  return {
    kind: 'http_connection_manager',
    statPrefix,
    routeConfigName: asString(routeConfig.name),
    virtualHosts,
    serverName: asString(config.server_name, 'envoy'),
  };
}

function parseListener(listener: unknown, index: number): StaticListener {
  const where = `static_resources.listeners[${index}]`;
  if (!isObject(listener)) throw new ConfigurationError(`${where}: expected a Listener`);
  const name = asString(listener.name);
  const address = parseAddress(listener.address, `${where}.address`);
  const direction = asString(listener.traffic_direction, 'UNSPECIFIED');
  if (direction !== 'UNSPECIFIED' && direction !== 'INBOUND' && direction !== 'OUTBOUND') {
    throw new ConfigurationError(`${where}.traffic_direction: invalid value '${direction}'`);
  }
  let handler: StaticListener['handler'];
  const chain = asArray(listener.filter_chains)[0];
  if (isObject(chain)) {
    for (const filter of asArray(chain.filters)) {
      if (!isObject(filter) || !isObject(filter.typed_config)) continue;
      const config = filter.typed_config;
      const type = typeName(config);
      if (type === 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager') {
        handler = parseHttpConnectionManager(config, `${where}.filter_chains[0] http_connection_manager`);
      } else if (type === 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy') {
        handler = {
          kind: 'tcp_proxy',
          statPrefix: asString(config.stat_prefix),
          cluster: asString(config.cluster),
        };
      }
    }
  }
  return {
    name: name === '' ? `${index}` : name,
    address,
    trafficDirection: direction,
    statPrefix:
      typeof listener.stat_prefix === 'string' && listener.stat_prefix !== ''
        ? listener.stat_prefix
        : undefined,
    handler,
  };
}

function clusterUsesHttp2(cluster: Record<string, unknown>): boolean {
  if (cluster.http2_protocol_options !== undefined) return true;
  const options = isObject(cluster.typed_extension_protocol_options)
    ? cluster.typed_extension_protocol_options
    : {};
  const http = options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
  if (!isObject(http)) return false;
  const explicit = isObject(http.explicit_http_config) ? http.explicit_http_config : {};
  return explicit.http2_protocol_options !== undefined;
}

function parseCluster(cluster: unknown, index: number): StaticCluster {
  const where = `static_resources.clusters[${index}]`;
  if (!isObject(cluster)) throw new ConfigurationError(`${where}: expected a Cluster`);
  const name = asString(cluster.name);
  if (name === '') {
    throw new ConfigurationError(
      `Proto constraint validation failed (ClusterValidationError.Name: value length must be at least 1 characters)`,
    );
  }
  const type = asString(cluster.type, 'STATIC');
  const dns = type === 'STRICT_DNS' || type === 'LOGICAL_DNS';
  const endpoints: EnvoyAddress[] = [];
  const assignment = isObject(cluster.load_assignment) ? cluster.load_assignment : {};
  for (const [localityIndex, locality] of asArray(assignment.endpoints).entries()) {
    if (!isObject(locality)) continue;
    for (const [endpointIndex, lbEndpoint] of asArray(locality.lb_endpoints).entries()) {
      if (!isObject(lbEndpoint) || !isObject(lbEndpoint.endpoint)) continue;
      const endpointWhere = `${where}.load_assignment.endpoints[${localityIndex}].lb_endpoints[${endpointIndex}]`;
      const address = lbEndpoint.endpoint.address;
      if (dns && isObject(address) && isObject(address.socket_address)) {
        // DNS clusters name hosts; they are resolved at connect time.
        const socket = address.socket_address;
        endpoints.push({
          kind: 'socket',
          address: asString(socket.address),
          port: Number(socket.port_value ?? 0),
          ipv4Compat: false,
        });
      } else {
        endpoints.push(parseAddress(address, `${endpointWhere}.endpoint.address`));
      }
    }
  }
  return {
    name,
    type,
    endpoints,
    connectTimeoutMilliseconds: durationMilliseconds(
      cluster.connect_timeout,
      5000,
      `${where}.connect_timeout`,
    ),
    http2: clusterUsesHttp2(cluster),
  };
}

function parseGrpcService(apiConfigSource: Record<string, unknown>, where: string): GrpcServiceConfig {
  const service = asArray(apiConfigSource.grpc_services)[0];
  if (!isObject(service))
    throw new ConfigurationError(`${where}: API configs must have either a gRPC service or a cluster name`);
  if (!isObject(service.envoy_grpc)) {
    throw new ConfigurationError(
      `${where}: the Envoy stand-in speaks xDS over envoy_grpc only (no google_grpc)`,
    );
  }
  const initialMetadata = asArray(service.initial_metadata)
    .filter(isObject)
    .map((header) => [asString(header.key), asString(header.value)] as const);
  return { clusterName: asString(service.envoy_grpc.cluster_name), initialMetadata };
}

function parseConfigSource(source: unknown, where: string): { ads: boolean; initialFetchTimeout: number } {
  if (!isObject(source)) return { ads: false, initialFetchTimeout: 15_000 };
  const version = asString(source.resource_api_version, 'AUTO');
  if (version !== 'V3') {
    throw new ConfigurationError(
      `${where}: V2 (and AUTO) xDS resource versions are deprecated in ${where}. The v2 xDS major version is deprecated and disabled by default.`,
    );
  }
  if (!isObject(source.ads)) {
    throw new ConfigurationError(`${where}: the Envoy stand-in takes dynamic resources from ADS only`);
  }
  return {
    ads: true,
    initialFetchTimeout: durationMilliseconds(
      source.initial_fetch_timeout,
      15_000,
      `${where}.initial_fetch_timeout`,
    ),
  };
}

function parseDynamicResources(bootstrap: BootstrapJson): DynamicResourcesConfig {
  const dynamic = isObject(bootstrap.dynamic_resources) ? bootstrap.dynamic_resources : {};
  let ads: AdsConfig | undefined;
  if (isObject(dynamic.ads_config)) {
    const adsConfig = dynamic.ads_config;
    const apiType = asString(adsConfig.api_type, 'UNSUPPORTED_REST_LEGACY');
    if (apiType !== 'GRPC' && apiType !== 'DELTA_GRPC') {
      throw new ConfigurationError(
        `dynamic_resources.ads_config: api_type must be GRPC or DELTA_GRPC, not ${apiType}`,
      );
    }
    if (asString(adsConfig.transport_api_version, 'AUTO') !== 'V3') {
      throw new ConfigurationError(
        'V2 (and AUTO) xDS transport protocol versions are deprecated in ads_config. The v2 xDS major version is deprecated and disabled by default.',
      );
    }
    ads = {
      apiType,
      ...parseGrpcService(adsConfig, 'dynamic_resources.ads_config'),
      setNodeOnFirstMessageOnly: boolValue(adsConfig.set_node_on_first_message_only, false),
    };
  }
  const cds = parseConfigSource(dynamic.cds_config, 'cds_config');
  const lds = parseConfigSource(dynamic.lds_config, 'lds_config');
  if ((cds.ads || lds.ads) && !ads) {
    throw new ConfigurationError('Cannot have ADS config sources without dynamic_resources.ads_config');
  }
  return {
    ads,
    cdsFromAds: cds.ads,
    ldsFromAds: lds.ads,
    cdsInitialFetchTimeoutMilliseconds: cds.initialFetchTimeout,
    ldsInitialFetchTimeoutMilliseconds: lds.initialFetchTimeout,
  };
}

function parseStatsConfig(bootstrap: BootstrapJson): StatsConfig {
  const config = isObject(bootstrap.stats_config) ? bootstrap.stats_config : {};
  const tagSpecifiers = asArray(config.stats_tags)
    .filter(isObject)
    .map((tag) => ({
      tagName: asString(tag.tag_name),
      ...(typeof tag.regex === 'string' ? { regex: tag.regex } : {}),
      ...(typeof tag.fixed_value === 'string' ? { fixedValue: tag.fixed_value } : {}),
    }));
  let matcher: StatsConfig['matcher'] = { kind: 'all' };
  if (isObject(config.stats_matcher)) {
    const statsMatcher = config.stats_matcher;
    const list = (value: unknown, where: string) =>
      asArray(isObject(value) ? value.patterns : []).map((pattern, index) =>
        parseStringMatcher(pattern, `stats_config.stats_matcher.${where}.patterns[${index}]`),
      );
    if (statsMatcher.reject_all === true) matcher = { kind: 'reject_all' };
    else if (isObject(statsMatcher.inclusion_list)) {
      matcher = { kind: 'inclusion', patterns: list(statsMatcher.inclusion_list, 'inclusion_list') };
    } else if (isObject(statsMatcher.exclusion_list)) {
      matcher = { kind: 'exclusion', patterns: list(statsMatcher.exclusion_list, 'exclusion_list') };
    }
  }
  const histogramBuckets = asArray(config.histogram_bucket_settings)
    .filter(isObject)
    .map((setting, index) => ({
      match: parseStringMatcher(setting.match, `stats_config.histogram_bucket_settings[${index}].match`),
      buckets: asArray(setting.buckets).map(Number),
    }));
  return {
    tagSpecifiers,
    useAllDefaultTags: boolValue(config.use_all_default_tags, true),
    matcher,
    histogramBuckets,
  };
}

export interface InterpretOptions {
  /** `--service-node` / `--service-cluster` replace node.id / node.cluster when set. */
  readonly serviceNode?: string;
  readonly serviceCluster?: string;
}

/** Builds the stand-in's view of a bootstrap. Throws ConfigurationError where Envoy refuses it. */
export function interpretBootstrap(
  bootstrap: BootstrapJson,
  options: InterpretOptions = {},
): StandinBootstrap {
  const nodeJson = isObject(bootstrap.node) ? bootstrap.node : {};
  const node: NodeConfig = {
    id: options.serviceNode || asString(nodeJson.id),
    cluster: options.serviceCluster || asString(nodeJson.cluster),
    metadata: isObject(nodeJson.metadata) ? nodeJson.metadata : {},
    locality: isObject(nodeJson.locality) ? nodeJson.locality : undefined,
  };
  const admin = isObject(bootstrap.admin) ? bootstrap.admin : {};
  const adminAddress = admin.address === undefined ? undefined : parseAddress(admin.address, 'admin.address');

  const resources = isObject(bootstrap.static_resources) ? bootstrap.static_resources : {};
  const clusters = asArray(resources.clusters).map(parseCluster);
  const clusterNames = new Set<string>();
  for (const cluster of clusters) {
    if (clusterNames.has(cluster.name)) {
      throw new ConfigurationError(`cluster manager: duplicate cluster '${cluster.name}'`);
    }
    clusterNames.add(cluster.name);
  }

  const listeners = asArray(resources.listeners).map(parseListener);
  const listenerNames = new Set<string>();
  for (const listener of listeners) {
    if (listenerNames.has(listener.name)) {
      throw new ConfigurationError(
        `error adding listener named '${listener.name}': listener with same name already exists`,
      );
    }
    listenerNames.add(listener.name);
    if (listener.handler?.kind === 'http_connection_manager') {
      for (const host of listener.handler.virtualHosts) {
        for (const route of host.routes) {
          if (route.action.kind === 'cluster' && !clusterNames.has(route.action.cluster)) {
            throw new ConfigurationError(`route: unknown cluster '${route.action.cluster}'`);
          }
        }
      }
    }
  }

  const dynamic = parseDynamicResources(bootstrap);
  if (dynamic.ads) {
    const cluster = clusters.find((candidate) => candidate.name === dynamic.ads?.clusterName);
    if (!cluster || cluster.type === 'EDS') {
      throw new ConfigurationError(
        `envoy::config::core::v3::ApiConfigSource must have a statically defined non-EDS cluster: '${dynamic.ads.clusterName}' does not exist, was added via api, or is an EDS cluster`,
      );
    }
  }
  return {
    node,
    adminAddress,
    listeners,
    clusters,
    dynamic,
    stats: parseStatsConfig(bootstrap),
    json: bootstrap,
  };
}
