import test, { type ExecutionContext } from 'ava';
import type { AgentConfig } from '../../agent/config/agent-config.ts';
import { buildBootstrap } from '../../bootstrap/build.ts';
import type { Bootstrap, Cluster, HttpConnectionManager, Listener } from '../../bootstrap/envoy-types.ts';
import { validateBootstrap } from '../../bootstrap/validate.ts';
import { configFor, injectedPodConfig } from './fixtures.ts';

/** Builds and proves the result strictly valid against Envoy's API before any other assertion. */
function build(t: ExecutionContext, config: AgentConfig, warnings: string[] = []): Bootstrap {
  const bootstrap = buildBootstrap(config, { onWarning: (message) => warnings.push(message) });
  t.deepEqual(validateBootstrap(bootstrap), { valid: true, ignoredFields: [] });
  return bootstrap;
}

const basic = () => configFor({ environment: { POD_NAME: 'app-1', INSTANCE_IP: '10.0.0.5' } });

function cluster(bootstrap: Bootstrap, name: string): Cluster {
  const found = bootstrap.static_resources.clusters.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no cluster ${name}`);
  return found;
}

function connectionManager(listener: Listener | undefined): HttpConnectionManager {
  return listener?.filter_chains[0]?.filters[0]?.typed_config as HttpConnectionManager;
}

function patterns(bootstrap: Bootstrap) {
  return bootstrap.stats_config.stats_matcher.inclusion_list.patterns;
}

test('default configuration: node identity, admin and ADS', (t) => {
  const bootstrap = build(t, basic());
  t.is(bootstrap.node.id, 'sidecar~10.0.0.5~app-1.default~default.svc.cluster.local');
  t.is(bootstrap.node.cluster, 'istio-proxy.default');
  t.deepEqual(bootstrap.node.locality, {});
  t.deepEqual(bootstrap.admin.address, { socket_address: { address: '127.0.0.1', port_value: 15000 } });
  t.is(bootstrap.admin.profile_path, '/pod/var/lib/istio/data/envoy.prof');
  t.like(bootstrap.admin.access_log[0], {
    name: 'envoy.access_loggers.file',
    typed_config: { path: '/dev/null' },
  });
  t.deepEqual(bootstrap.dynamic_resources, {
    lds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
    cds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
    ads_config: {
      api_type: 'DELTA_GRPC',
      set_node_on_first_message_only: true,
      transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
    },
  });
});

test('default configuration: static clusters for admin stats, agent, xDS and SDS', (t) => {
  const bootstrap = build(t, basic());
  t.deepEqual(
    bootstrap.static_resources.clusters.map((entry) => entry.name),
    ['prometheus_stats', 'agent', 'sds-grpc', 'xds-grpc'],
  );
  const endpoint = (name: string) =>
    cluster(bootstrap, name).load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint;
  t.deepEqual(endpoint('prometheus_stats')?.address, {
    socket_address: { protocol: 'TCP', address: '127.0.0.1', port_value: 15000 },
  });
  t.deepEqual(endpoint('agent')?.address, {
    socket_address: { protocol: 'TCP', address: '127.0.0.1', port_value: 15020 },
  });
  t.deepEqual(endpoint('xds-grpc')?.address, { pipe: { path: '/pod/etc/istio/proxy/XDS' } });
  t.deepEqual(endpoint('sds-grpc')?.address, {
    pipe: { path: '/pod/var/run/secrets/workload-spiffe-uds/socket' },
  });
  for (const name of ['xds-grpc', 'sds-grpc']) {
    t.deepEqual(cluster(bootstrap, name).typed_extension_protocol_options, {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    });
  }
  const xds = cluster(bootstrap, 'xds-grpc');
  t.is(xds.max_requests_per_connection, 1);
  t.deepEqual(xds.upstream_connection_options, { tcp_keepalive: { keepalive_time: 300 } });
  t.deepEqual(
    xds.circuit_breakers?.thresholds.map((threshold) => [threshold.priority, threshold.max_requests]),
    [
      ['DEFAULT', 100000],
      ['HIGH', 100000],
    ],
  );
});

test('default configuration: the Prometheus and readiness listeners are not inbound', (t) => {
  const bootstrap = build(t, basic());
  const [prometheus, status] = bootstrap.static_resources.listeners;
  t.is(prometheus?.name, '0.0.0.0_15090');
  t.deepEqual(prometheus?.address, {
    socket_address: { protocol: 'TCP', address: '0.0.0.0', port_value: 15090 },
  });
  t.is(status?.name, '0.0.0.0_15021');
  t.deepEqual(status?.address, {
    socket_address: { protocol: 'TCP', address: '0.0.0.0', port_value: 15021 },
  });
  for (const listener of [prometheus, status]) t.is(listener?.traffic_direction, 'UNSPECIFIED');
  t.deepEqual(connectionManager(prometheus).route_config.virtual_hosts[0]?.routes, [
    { match: { prefix: '/stats/prometheus' }, route: { cluster: 'prometheus_stats' } },
  ]);
  t.deepEqual(connectionManager(status).route_config.virtual_hosts[0]?.routes, [
    { match: { prefix: '/healthz/ready' }, route: { cluster: 'agent' } },
  ]);
  t.is(connectionManager(status).http_filters[0]?.name, 'envoy.filters.http.router');
});

test('default configuration: stats and runtime as Istio', (t) => {
  const bootstrap = build(t, basic());
  t.false(bootstrap.stats_config.use_all_default_tags);
  t.deepEqual(
    bootstrap.stats_config.stats_tags.map((tag) => tag.tag_name),
    [
      'cluster_name',
      'tcp_prefix',
      'response_code',
      'response_code_class',
      'http_conn_manager_listener_prefix',
      'http_conn_manager_prefix',
      'listener_address',
      'mongo_prefix',
      'cache',
      'component',
      'tag',
      'wasm_filter',
      'authz_enforce_result',
      'authz_dry_run_action',
      'authz_dry_run_result',
    ],
  );
  t.deepEqual(patterns(bootstrap), [
    { prefix: 'reporter=' },
    { prefix: 'cluster_manager' },
    { prefix: 'listener_manager' },
    { prefix: 'server' },
    { prefix: 'cluster.xds-grpc' },
    { prefix: 'wasm' },
    { suffix: 'rbac.allowed' },
    { suffix: 'rbac.denied' },
    { suffix: 'shadow_allowed' },
    { suffix: 'shadow_denied' },
    { safe_regex: { regex: 'vhost\\..*\\.route\\..*' } },
    { prefix: 'component' },
    { prefix: 'istio' },
  ]);
  t.deepEqual(bootstrap.layered_runtime.layers, [
    {
      name: 'global config',
      static_layer: {
        'envoy.deprecated_features:envoy.config.listener.v3.Listener.hidden_envoy_deprecated_use_original_dst': true,
        'envoy.reloadable_features.http_reject_path_with_fragment': false,
        'overload.global_downstream_max_connections': '2147483647',
        're2.max_program_size.error_level': '32768',
      },
    },
    { name: 'admin', admin_layer: {} },
  ]);
  t.is(bootstrap.tracing, undefined);
  t.is(bootstrap.cluster_manager, undefined);
});

test('an injected Istio 1.8 pod: node identity and metadata in Istio encodings', (t) => {
  const config = injectedPodConfig();
  const bootstrap = build(t, config);
  t.is(bootstrap.node.id, 'sidecar~10.244.0.12~details-v1-5974b67c8-wclnd.default~default.svc.cluster.local');
  t.is(bootstrap.node.cluster, 'details.default');
  const metadata = bootstrap.node.metadata;
  t.like(metadata, {
    NAME: 'details-v1-5974b67c8-wclnd',
    NAMESPACE: 'default',
    SERVICE_ACCOUNT: 'bookinfo-details',
    INSTANCE_IPS: '10.244.0.12',
    ISTIO_VERSION: '1.28.0',
    CLUSTER_ID: 'Kubernetes',
    MESH_ID: 'cluster.local',
    INTERCEPTION_MODE: 'REDIRECT',
    WORKLOAD_NAME: 'details-v1',
    OWNER: 'kubernetes://apis/apps/v1/namespaces/default/deployments/details-v1',
    APP_CONTAINERS: 'details',
    POD_PORTS: '[{"containerPort":9080,"protocol":"TCP"}]',
    ENVOY_STATUS_PORT: 15021,
    ENVOY_PROMETHEUS_PORT: 15090,
    METADATA_DISCOVERY: 'false',
  });
  t.deepEqual(metadata.LABELS, {
    app: 'details',
    'istio.io/rev': 'default',
    'security.istio.io/tlsMode': 'istio',
    'service.istio.io/canonical-name': 'details',
    'service.istio.io/canonical-revision': 'v1',
    version: 'v1',
  });
  t.like(metadata.ANNOTATIONS, { 'prometheus.io/port': '15020', 'kubernetes.io/config.source': 'api' });
  t.regex(
    String((metadata.ANNOTATIONS as Record<string, string>)['sidecar.istio.io/status']),
    /^\{"version":"e2cb/,
  );
  t.like(metadata.PROXY_CONFIG, {
    discoveryAddress: 'istiod.istio-system.svc:15012',
    drainDuration: '45s',
    proxyAdminPort: 15000,
    statusPort: 15020,
    tracing: { zipkin: { address: 'zipkin.istio-system:9411' } },
    proxyMetadata: { DNS_AGENT: '' },
  });
  t.false('EXIT_ON_ZERO_ACTIVE_CONNECTIONS' in metadata);
  t.deepEqual(Object.keys(metadata), [...Object.keys(metadata)].sort(), 'keys sorted as Go marshals a map');
});

test('an injected Istio 1.8 pod: tracing to Zipkin from the mesh config', (t) => {
  const bootstrap = build(t, injectedPodConfig());
  const zipkin = cluster(bootstrap, 'zipkin');
  t.is(zipkin.type, 'STRICT_DNS');
  t.is(zipkin.dns_lookup_family, 'V4_ONLY');
  t.deepEqual(zipkin.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address, {
    socket_address: { address: 'zipkin.istio-system', port_value: 9411 },
  });
  t.like(bootstrap.tracing, {
    http: {
      name: 'envoy.tracers.zipkin',
      typed_config: {
        collector_cluster: 'zipkin',
        collector_endpoint: '/api/v2/spans',
        trace_id_128bit: true,
      },
    },
  });
});

test('an IPv6 pod binds and connects over IPv6', (t) => {
  const bootstrap = build(
    t,
    configFor({ environment: { POD_NAME: 'app-1', INSTANCE_IP: 'fd00:10:244::12' } }),
  );
  t.is(bootstrap.node.id, 'sidecar~fd00:10:244::12~app-1.default~default.svc.cluster.local');
  t.is(bootstrap.node.metadata.INSTANCE_IPS, 'fd00:10:244::12');
  t.deepEqual(bootstrap.admin.address, { socket_address: { address: '::1', port_value: 15000 } });
  t.deepEqual(
    bootstrap.static_resources.listeners.map((listener) => [listener.name, listener.address]),
    [
      ['::_15090', { socket_address: { protocol: 'TCP', address: '::', port_value: 15090 } }],
      ['::_15021', { socket_address: { protocol: 'TCP', address: '::', port_value: 15021 } }],
    ],
  );
  t.deepEqual(cluster(bootstrap, 'agent').load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address, {
    socket_address: { protocol: 'TCP', address: '::1', port_value: 15020 },
  });
});

test('several instance IPs: the first names the node, all are listed', (t) => {
  const bootstrap = build(
    t,
    configFor({
      environment: { INSTANCE_IP: '10.0.0.5', ISTIO_META_INSTANCE_IPS: '10.0.0.5,fd00::5,10.0.0.6' },
    }),
  );
  t.regex(bootstrap.node.id, /^sidecar~10\.0\.0\.5~/);
  t.is(bootstrap.node.metadata.INSTANCE_IPS, '10.0.0.5,fd00::5,10.0.0.6');
  // Mixed families keep IPv4 addresses, as Istio does without dual-stack mode.
  t.deepEqual(bootstrap.admin.address, { socket_address: { address: '127.0.0.1', port_value: 15000 } });
});

test('ISTIO_DELTA_XDS=false selects state-of-the-world ADS', (t) => {
  const bootstrap = build(t, configFor({ environment: { ISTIO_DELTA_XDS: 'false' } }));
  t.is(bootstrap.dynamic_resources.ads_config.api_type, 'GRPC');
});

test('EXIT_ON_ZERO_ACTIVE_CONNECTIONS keeps downstream_cx_active and says so in the metadata', (t) => {
  const bootstrap = build(t, configFor({ environment: { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true' } }));
  t.true(
    patterns(bootstrap).some((pattern) => 'suffix' in pattern && pattern.suffix === 'downstream_cx_active'),
  );
  t.is(bootstrap.node.metadata.EXIT_ON_ZERO_ACTIVE_CONNECTIONS, 'true');
});

test('proxyStatsMatcher and extraStatTags from ProxyConfig', (t) => {
  const bootstrap = build(
    t,
    configFor({
      environment: {
        PROXY_CONFIG: JSON.stringify({
          proxyStatsMatcher: {
            inclusionPrefixes: ['upstream_cx', 'http.{pod_ip}_'],
            inclusionSuffixes: ['upstream_rq_timeout'],
            inclusionRegexps: ['.*circuit_breakers.*'],
          },
          extraStatTags: ['request_protocol', ''],
        }),
        INSTANCE_IP: '10.0.0.5',
      },
    }),
  );
  const list = patterns(bootstrap);
  t.deepEqual(list.slice(0, 4), [
    { prefix: 'reporter=' },
    { prefix: 'upstream_cx' },
    { prefix: 'http.10.0.0.5_' },
    { prefix: 'cluster_manager' },
  ]);
  t.true(list.some((pattern) => 'suffix' in pattern && pattern.suffix === 'upstream_rq_timeout'));
  t.deepEqual(
    list.filter((pattern) => 'safe_regex' in pattern),
    [{ safe_regex: { regex: '.*circuit_breakers.*' } }, { safe_regex: { regex: 'vhost\\..*\\.route\\..*' } }],
  );
  const tags = bootstrap.stats_config.stats_tags;
  const mongo = tags.findIndex((tag) => tag.tag_name === 'mongo_prefix');
  t.deepEqual(tags[mongo + 1], { tag_name: 'request_protocol', regex: '(request_protocol=\\.=(.*?);\\.;)' });
});

test('statsInclusion annotations replace proxyStatsMatcher; extraStatTags and histogram buckets from annotations', (t) => {
  const warnings: string[] = [];
  const bootstrap = build(
    t,
    configFor({
      environment: { PROXY_CONFIG: '{"proxyStatsMatcher":{"inclusionPrefixes":["ignored_prefix"]}}' },
      files: {
        'etc/istio/pod/annotations': [
          'sidecar.istio.io/statsInclusionPrefixes="cluster.outbound,listener"',
          'sidecar.istio.io/statsInclusionSuffixes="upstream_cx_active"',
          'sidecar.istio.io/statsInclusionRegexps="http\\\\..*"',
          'sidecar.istio.io/extraStatTags="destination_port,request_host"',
          'sidecar.istio.io/statsHistogramBuckets="{\\"istiocustom\\":[1,5,10],\\"cluster.xds-grpc\\":[1,5]}"',
        ].join('\n'),
      },
    }),
    warnings,
  );
  const list = patterns(bootstrap);
  t.false(list.some((pattern) => 'prefix' in pattern && pattern.prefix === 'ignored_prefix'));
  t.deepEqual(list.slice(1, 3), [{ prefix: 'cluster.outbound' }, { prefix: 'listener' }]);
  t.true(list.some((pattern) => 'suffix' in pattern && pattern.suffix === 'upstream_cx_active'));
  t.true(list.some((pattern) => 'safe_regex' in pattern && pattern.safe_regex.regex === 'http\\..*'));
  t.true(bootstrap.stats_config.stats_tags.some((tag) => tag.tag_name === 'destination_port'));
  t.true(bootstrap.stats_config.stats_tags.some((tag) => tag.tag_name === 'request_host'));
  t.deepEqual(bootstrap.stats_config.histogram_bucket_settings, [
    { match: { prefix: 'cluster.xds-grpc' }, buckets: [1, 5] },
    { match: { prefix: 'istiocustom' }, buckets: [1, 5, 10] },
  ]);
  t.deepEqual(warnings, []);
});

test('an unparsable histogram annotation is ignored with a warning, as Istio does', (t) => {
  const warnings: string[] = [];
  const bootstrap = build(
    t,
    configFor({ files: { 'etc/istio/pod/annotations': 'sidecar.istio.io/statsHistogramBuckets="{nope"' } }),
    warnings,
  );
  t.is(bootstrap.stats_config.histogram_bucket_settings, undefined);
  t.is(warnings.length, 1);
  t.regex(warnings[0] ?? '', /statsHistogramBuckets ignored/);
});

test('runtimeValues override, remove and type Istio runtime defaults', (t) => {
  const bootstrap = build(
    t,
    configFor({
      environment: {
        PROXY_CONFIG: JSON.stringify({
          runtimeValues: {
            're2.max_program_size.error_level': '4096',
            'overload.global_downstream_max_connections': '',
            'envoy.reloadable_features.some_flag': 'true',
            'envoy.reloadable_features.other_flag': 'false',
          },
        }),
      },
    }),
  );
  const layer = bootstrap.layered_runtime.layers[0];
  t.deepEqual(layer && 'static_layer' in layer ? layer.static_layer : undefined, {
    'envoy.deprecated_features:envoy.config.listener.v3.Listener.hidden_envoy_deprecated_use_original_dst': true,
    'envoy.reloadable_features.http_reject_path_with_fragment': false,
    'envoy.reloadable_features.other_flag': false,
    'envoy.reloadable_features.some_flag': true,
    're2.max_program_size.error_level': '4096',
  });
  t.deepEqual(bootstrap.layered_runtime.layers[1], { name: 'admin', admin_layer: {} });
});

test('locality from the istio-locality label', (t) => {
  const bootstrap = build(
    t,
    configFor({ files: { 'etc/istio/pod/labels': 'istio-locality="us-east1.us-east1-b.rack7"\napp="web"' } }),
  );
  t.deepEqual(bootstrap.node.locality, { region: 'us-east1', zone: 'us-east1-b', sub_zone: 'rack7' });
  t.is(
    (bootstrap.node.metadata.LABELS as Record<string, string>)['istio-locality'],
    'us-east1/us-east1-b/rack7',
  );
  t.is(bootstrap.node.cluster, 'web.default');
});

test('node.cluster: explicit flag, app label, workload name, tracingServiceName, fallback', (t) => {
  t.is(build(t, configFor({ flags: { serviceCluster: 'billing' } })).node.cluster, 'billing');
  t.is(
    build(t, configFor({ files: { 'etc/istio/pod/labels': 'app="reviews"' } })).node.cluster,
    'reviews.default',
  );
  t.is(
    build(t, configFor({ environment: { ISTIO_META_WORKLOAD_NAME: 'reviews-v2' } })).node.cluster,
    'reviews-v2.default',
  );
  t.is(
    build(
      t,
      configFor({
        environment: { PROXY_CONFIG: '{"tracingServiceName":"CANONICAL_NAME_AND_NAMESPACE"}' },
        files: {
          'etc/istio/pod/labels': 'app="reviews"\nservice.istio.io/canonical-name="reviews-canonical"',
        },
      }),
    ).node.cluster,
    'reviews-canonical.default',
  );
  t.is(build(t, configFor()).node.cluster, 'istio-proxy.default');
});

test('every other ISTIO_META_* and ISTIO_METAJSON_* value and proxyMetadata entry is passed through', (t) => {
  const bootstrap = build(
    t,
    configFor({
      environment: {
        ISTIO_META_NETWORK: 'network-1',
        ISTIO_META_DNS_CAPTURE: 'true',
        ISTIO_META_CUSTOM_THING: 'x',
        ISTIO_METAJSON_LABELS: '{"LABELS":{"team":"payments","pod-template-hash":"abc"}}',
        ISTIO_METAJSON_PLATFORM_METADATA: '{"PLATFORM_METADATA":{"gcp_project":"p1"}}',
        ISTIO_METAJSON_ANNOTATIONS: '{"ANNOTATIONS":{"from-env":"1","shared":"env"}}',
        ISTIO_META_NAME: 'name-from-env',
        PROXY_CONFIG: '{"proxyMetadata":{"ISTIO_META_FROM_PROXY_CONFIG":"yes","OTHER":"not metadata"}}',
      },
      files: {
        'etc/istio/pod/labels': 'app="web"\npod-template-hash="123"',
        'etc/istio/pod/annotations': 'shared="file"',
      },
    }),
  );
  t.deepEqual(bootstrap.node.metadata.ANNOTATIONS, { 'from-env': '1', shared: 'file' });
  // Without POD_NAME the environment's NAME stands.
  t.is(bootstrap.node.metadata.NAME, 'name-from-env');
  t.like(bootstrap.node.metadata, {
    NETWORK: 'network-1',
    DNS_CAPTURE: 'true',
    CUSTOM_THING: 'x',
    FROM_PROXY_CONFIG: 'yes',
    PLATFORM_METADATA: { gcp_project: 'p1' },
  });
  t.false('OTHER' in bootstrap.node.metadata);
  t.deepEqual(bootstrap.node.metadata.LABELS, { app: 'web', 'pod-template-hash': 'abc', team: 'payments' });
});

test('ports, paths and options from ProxyConfig and the environment', (t) => {
  const bootstrap = build(
    t,
    configFor({
      environment: {
        PROXY_CONFIG: JSON.stringify({
          proxyAdminPort: 16000,
          statusPort: 16020,
          configPath: './custom/proxy',
        }),
        ENVOY_STATUS_PORT: '16021',
        ENVOY_PROMETHEUS_PORT: '16090',
        METRICS_LOCALHOST_ACCESS_ONLY: 'true',
      },
      flags: { outlierLogPath: '/dev/stdout', stsPort: '15463' },
    }),
  );
  t.deepEqual(bootstrap.admin.address, { socket_address: { address: '127.0.0.1', port_value: 16000 } });
  t.like(bootstrap.node.metadata, {
    ENVOY_STATUS_PORT: 16021,
    ENVOY_PROMETHEUS_PORT: 16090,
    STS_PORT: '15463',
    OUTLIER_LOG_PATH: '/dev/stdout',
  });
  t.deepEqual(
    bootstrap.static_resources.listeners.map((listener) => listener.name),
    ['127.0.0.1_16090', '0.0.0.0_16021'],
  );
  t.deepEqual(cluster(bootstrap, 'agent').load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address, {
    socket_address: { protocol: 'TCP', address: '127.0.0.1', port_value: 16020 },
  });
  t.deepEqual(
    cluster(bootstrap, 'xds-grpc').load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address,
    {
      pipe: { path: '/pod/custom/proxy/XDS' },
    },
  );
  t.deepEqual(bootstrap.cluster_manager, { outlier_detection: { event_log_path: '/dev/stdout' } });
});

test('the router node type names itself so', (t) => {
  t.regex(build(t, configFor({ flags: { nodeType: 'router' } })).node.id, /^router~/);
});

test('an unsupported tracer is reported and left out', (t) => {
  const warnings: string[] = [];
  const bootstrap = build(
    t,
    configFor({ environment: { PROXY_CONFIG: '{"tracing":{"datadog":{"address":"dd:8126"}}}' } }),
    warnings,
  );
  t.is(bootstrap.tracing, undefined);
  t.deepEqual(warnings, ['ProxyConfig.tracing.datadog is not supported by this agent and is ignored']);
});

// biome-ignore lint/suspicious/noExplicitAny: mutation tests poke anywhere in the document
type Mutable = any;

const mutations: [string, (bootstrap: Mutable) => void, string, RegExp][] = [
  ['an unknown top-level field', (b) => (b.admin_port = 15000), 'admin_port', /unknown field/],
  [
    'an unknown field deep in a listener',
    (b) => (b.static_resources.listeners[1].filter_chains[0].use_proxy_protocol = true),
    'static_resources.listeners[1].filter_chains[0].use_proxy_protocol',
    /unknown field "use_proxy_protocol" in envoy\.config\.listener\.v3\.FilterChain/,
  ],
  [
    'an unknown field inside the HttpConnectionManager Any',
    (b) => (b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.statPrefix2 = 'x'),
    'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.statPrefix2',
    /HttpConnectionManager/,
  ],
  [
    'an unknown field inside a route in the Any',
    (b) =>
      (b.static_resources.listeners[1].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.clusterr =
        'agent'),
    'static_resources.listeners[1].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.clusterr',
    /RouteAction/,
  ],
  [
    'an unknown @type on the router filter',
    (b) =>
      (b.static_resources.listeners[1].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config[
        '@type'
      ] = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr'),
    'static_resources.listeners[1].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.@type',
    /unknown type/,
  ],
  [
    'a bad enum name for the ADS API type',
    (b) => (b.dynamic_resources.ads_config.api_type = 'DELTA_GRCP'),
    'dynamic_resources.ads_config.api_type',
    /ApiType/,
  ],
  [
    'a bad enum name for the traffic direction',
    (b) => (b.static_resources.listeners[0].traffic_direction = 'IN'),
    'static_resources.listeners[0].traffic_direction',
    /TrafficDirection/,
  ],
  [
    'a bad duration for the initial fetch timeout',
    (b) => (b.dynamic_resources.cds_config.initial_fetch_timeout = '0'),
    'dynamic_resources.cds_config.initial_fetch_timeout',
    /Duration/,
  ],
  [
    'a bad duration for a connect timeout',
    (b) => (b.static_resources.clusters[0].connect_timeout = '250ms'),
    'static_resources.clusters[0].connect_timeout',
    /Duration/,
  ],
];

for (const [kind, mutate, fieldPath, message] of mutations) {
  test(`the generated bootstrap with ${kind} is rejected at ${fieldPath}`, (t) => {
    const bootstrap = structuredClone(build(t, basic())) as Mutable;
    mutate(bootstrap);
    const result = validateBootstrap(bootstrap);
    t.false(result.valid);
    if (result.valid) return;
    t.is(result.fieldPath, fieldPath);
    t.regex(result.message, message);
  });
}
