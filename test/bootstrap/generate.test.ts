import test from 'ava';
import { ConfigError } from '../../agent/config/errors.ts';
import { readBootstrapSources } from '../../agent/proxy/bootstrap-file.ts';
import { generateBootstrap } from '../../bootstrap/generate.ts';
import { mergeBootstrap } from '../../bootstrap/override.ts';
import { validateBootstrap } from '../../bootstrap/validate.ts';
import { configFor, injectedPodConfig } from './fixtures.ts';

// biome-ignore lint/suspicious/noExplicitAny: assertions reach into the merged document freely
type Json = any;

const overrideYaml = `
node:
  metadata:
    HOST_IP: $(HOST_IP)
    NAME: overridden-name
admin:
  profile_path: /tmp/envoy.prof
  address:
    pipe: { path: /var/run/envoy-admin.sock }
static_resources:
  clusters:
  - name: host-agent
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: host-agent
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: "$(HOST_IP)", port_value: 8126 } } }
stats_config:
  stats_matcher:
    inclusion_list:
      patterns:
      - prefix: custom_
layered_runtime:
  layers:
  - name: extra
    static_layer: { "envoy.resource_limits.listener.inbound.connection_limit": 1000 }
dynamic_resources:
  cds_config:
    initial_fetch_timeout: 5s
`;

test('an override merges as Envoy merges --config-yaml, with $(HOST_IP) substituted', async (t) => {
  const config = injectedPodConfig();
  const generated = await generateBootstrap(config, {
    override: { file: '/pod/etc/istio/custom/override.yaml', text: overrideYaml },
  });
  t.true(generated.overridden);
  t.is(generated.origin, 'generated');
  const merged: Json = generated.bootstrap;
  t.deepEqual(validateBootstrap(merged), { valid: true, ignoredFields: [] });
  // Struct map entries are added or replaced; the rest of the metadata stays.
  t.is(merged.node.metadata.HOST_IP, '172.18.0.2');
  t.is(merged.node.metadata.NAME, 'overridden-name');
  t.is(merged.node.metadata.INSTANCE_IPS, '10.244.0.12');
  t.is(merged.node.id, 'sidecar~10.244.0.12~details-v1-5974b67c8-wclnd.default~default.svc.cluster.local');
  // Scalars replaced; a set oneof member replaces the other one.
  t.is(merged.admin.profile_path, '/tmp/envoy.prof');
  t.deepEqual(merged.admin.address, { pipe: { path: '/var/run/envoy-admin.sock' } });
  t.is(merged.admin.access_log.length, 1);
  // Repeated fields appended.
  t.deepEqual(
    merged.static_resources.clusters.map((cluster: Json) => cluster.name),
    ['prometheus_stats', 'agent', 'sds-grpc', 'xds-grpc', 'zipkin', 'host-agent'],
  );
  t.deepEqual(
    merged.static_resources.clusters[5].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address,
    {
      socket_address: { address: '172.18.0.2', port_value: 8126 },
    },
  );
  const patterns = merged.stats_config.stats_matcher.inclusion_list.patterns;
  t.deepEqual(patterns.at(-1), { prefix: 'custom_' });
  t.deepEqual(patterns[0], { prefix: 'reporter=' });
  t.deepEqual(
    merged.layered_runtime.layers.map((layer: Json) => layer.name),
    ['global config', 'admin', 'extra'],
  );
  // Messages merged field by field.
  t.is(merged.dynamic_resources.cds_config.initial_fetch_timeout, '5s');
  t.deepEqual(merged.dynamic_resources.cds_config.ads, {});
  t.is(merged.dynamic_resources.lds_config.initial_fetch_timeout, '0s');
  t.is(merged.dynamic_resources.ads_config.api_type, 'DELTA_GRPC');
  // Any payloads survive the round trip through Envoy's schema.
  const connectionManager = merged.static_resources.listeners[1].filter_chains[0].filters[0].typed_config;
  t.is(
    connectionManager['@type'],
    'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  );
  t.is(connectionManager.route_config.virtual_hosts[0].routes[0].route.cluster, 'agent');
});

test('a JSON override works too, and an unset HOST_IP substitutes the empty string as Istio does', async (t) => {
  const generated = await generateBootstrap(configFor(), {
    override: { file: 'o.json', text: '{"node": {"metadata": {"HOST": "$(HOST_IP)"}}}' },
  });
  t.is((generated.bootstrap as Json).node.metadata.HOST, '');
});

test('protobuf merge details: durations merge by component, wrappers and implicit defaults', (t) => {
  const base = { stats_config: { use_all_default_tags: false }, admin: { profile_path: '/a' } };
  t.deepEqual(mergeBootstrap(base, { stats_config: { use_all_default_tags: true } }), {
    stats_config: { use_all_default_tags: true },
    admin: { profile_path: '/a' },
  });
  // A wrapper set to its default stays as it was (the wrapper is present, its value "unset").
  t.deepEqual(
    mergeBootstrap(
      { stats_config: { use_all_default_tags: true } },
      { stats_config: { use_all_default_tags: false } },
    ),
    {
      stats_config: { use_all_default_tags: true },
    },
  );
  // An empty string is proto3's "unset": it does not clear the base value.
  t.deepEqual(mergeBootstrap(base, { admin: { profile_path: '' } }), base);
  // A Duration is a message: seconds and nanos merge separately, as Envoy's MergeFrom does.
  t.deepEqual(mergeBootstrap({ stats_flush_interval: '0.250s' }, { stats_flush_interval: '1s' }), {
    stats_flush_interval: '1.250s',
  });
  t.deepEqual(mergeBootstrap({ stats_flush_interval: '5s' }, { statsFlushInterval: '0.5s' }), {
    stats_flush_interval: '5.500s',
  });
  // Enums at their zero value are unset too; other values replace.
  const ads = (api_type: string) => ({ dynamic_resources: { ads_config: { api_type } } });
  t.deepEqual(mergeBootstrap(ads('GRPC'), ads('DELTA_GRPC')), ads('DELTA_GRPC'));
  t.deepEqual(mergeBootstrap(ads('GRPC'), ads('DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE')), ads('GRPC'));
  const timeouts = mergeBootstrap(
    { static_resources: { clusters: [{ name: 'a', connect_timeout: '0.250s' }] } },
    { static_resources: { clusters: [{ name: 'b', connect_timeout: '1s' }] } },
  ) as Json;
  t.deepEqual(
    timeouts.static_resources.clusters.map((cluster: Json) => [cluster.name, cluster.connect_timeout]),
    [
      ['a', '0.250s'],
      ['b', '1s'],
    ],
  );
});

test('override errors name the file and the field', async (t) => {
  const config = configFor();
  const failure = async (text: string) =>
    (await t.throwsAsync(
      () => generateBootstrap(config, { override: { file: '/etc/override.yaml', text } }),
      {
        instanceOf: ConfigError,
      },
    ))!;
  t.regex((await failure('admin: [unclosed')).message, /^\/etc\/override\.yaml: invalid JSON\/YAML/);
  t.regex((await failure('- a list')).message, /^\/etc\/override\.yaml: expected an Envoy bootstrap object/);
  t.is(
    (await failure('admin:\n  profile_pth: /x\n')).message,
    '/etc/override.yaml: invalid Envoy bootstrap at admin.profile_pth: unknown field "profile_pth" in envoy.config.bootstrap.v3.Admin',
  );
  t.regex(
    (
      await failure(
        'static_resources:\n  listeners:\n  - name: x\n    listener_filters:\n    - name: f\n      typed_config: {"@type": type.googleapis.com/nope.Nope}\n',
      )
    ).message,
    /^\/etc\/override\.yaml: invalid Envoy bootstrap at static_resources\.listeners\[0\]\.listener_filters\[0\]\.typed_config\.@type: unknown type/,
  );
  t.regex(
    (await failure('dynamic_resources:\n  ads_config:\n    api_type: REST_LEGACY\n')).message,
    /at dynamic_resources\.ads_config\.api_type: cannot decode enum/,
  );
});

test('an override setting another member of a oneof replaces the generated one', async (t) => {
  const generated = await generateBootstrap(configFor(), {
    override: {
      file: 'o.yaml',
      text: 'admin:\n  address:\n    envoy_internal_address: { server_listener_name: x }\n',
    },
  });
  t.deepEqual((generated.bootstrap as Json).admin.address, {
    envoy_internal_address: { server_listener_name: 'x' },
  });
});

test('ProxyConfig.customConfigFile is used as it is, still checked, and overrides still apply', async (t) => {
  const custom = {
    node: { id: 'custom-node', cluster: 'custom' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 19000 } } },
  };
  const generated = await generateBootstrap(configFor(), {
    customConfig: { file: '/pod/custom.json', text: JSON.stringify(custom) },
  });
  t.is(generated.origin, 'custom');
  t.deepEqual(generated.bootstrap, custom);

  const overridden = await generateBootstrap(configFor(), {
    customConfig: { file: '/pod/custom.json', text: JSON.stringify(custom) },
    override: { file: '/pod/o.yaml', text: 'node: {cluster: other}' },
  });
  t.like(overridden.bootstrap, { node: { id: 'custom-node', cluster: 'other' } });

  const error = await t.throwsAsync(() =>
    generateBootstrap(configFor(), { customConfig: { file: '/pod/custom.yaml', text: 'nodes: {}' } }),
  );
  t.is(
    error.message,
    '/pod/custom.yaml: invalid Envoy bootstrap at nodes: unknown field "nodes" in envoy.config.bootstrap.v3.Bootstrap',
  );
});

test('a Go-template bootstrap file is refused with a clear error', async (t) => {
  const config = configFor({ flags: { templateFile: './etc/istio/custom.tmpl' } });
  await t.throwsAsync(() => generateBootstrap(config), {
    instanceOf: ConfigError,
    message: /^\/pod\/etc\/istio\/custom\.tmpl: Go-template bootstrap files .* are not supported/,
  });
});

test('the bootstrap sources are read from the files the configuration names', (t) => {
  const files = new Map([
    ['/pod/etc/override.yaml', 'node: {cluster: x}'],
    ['/pod/etc/istio/custom.json', '{}'],
  ]);
  const readFile = (file: string) => files.get(file);
  const config = configFor({
    environment: {
      ISTIO_BOOTSTRAP_OVERRIDE: './etc/override.yaml',
      PROXY_CONFIG: '{"customConfigFile":"etc/istio/custom.json"}',
    },
  });
  t.deepEqual(readBootstrapSources(config, readFile), {
    customConfig: { file: '/pod/etc/istio/custom.json', text: '{}' },
    override: { file: '/pod/etc/override.yaml', text: 'node: {cluster: x}' },
  });
  t.deepEqual(readBootstrapSources(configFor(), readFile), {});
  const missing = configFor({ environment: { ISTIO_BOOTSTRAP_OVERRIDE: '/nowhere/override.yaml' } });
  t.throws(() => readBootstrapSources(missing, readFile), {
    instanceOf: ConfigError,
    message: '/nowhere/override.yaml: does not exist (named by ISTIO_BOOTSTRAP_OVERRIDE)',
  });
});
