import test from 'ava';
import { checkBootstrap } from '../envoy-standin/bootstrap-check.ts';
import {
  ConfigurationError,
  loadBootstrap,
  mergeBootstrap,
  normaliseBootstrapKeys,
} from '../envoy-standin/bootstrap-load.ts';
import {
  baseBootstrap,
  freePort,
  httpListener,
  socketAddress,
  startStandin,
  staticCluster,
  temporaryRoot,
  writeBootstrap,
} from './harness.ts';

test('lowerCamelCase keys become snake_case; Struct contents and map keys stay as written', (t) => {
  const normalised = normaliseBootstrapKeys({
    node: { id: 'a', metadata: { ISTIO_VERSION: '1.28', someCamelKey: { innerKey: 1 } } },
    staticResources: {
      clusters: [
        {
          name: 'c',
          connectTimeout: '1s',
          typedExtensionProtocolOptions: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicitHttpConfig: { http2ProtocolOptions: {} },
            },
          },
        },
      ],
    },
    layeredRuntime: {
      layers: [
        {
          name: 'global config',
          staticLayer: { 'overload.global_downstream_max_connections': 2147483647, camelKey: 1 },
        },
      ],
    },
  });
  t.deepEqual(normalised.node, {
    id: 'a',
    metadata: { ISTIO_VERSION: '1.28', someCamelKey: { innerKey: 1 } },
  });
  const cluster = (normalised.static_resources as { clusters: Array<Record<string, unknown>> }).clusters[0];
  t.is(cluster?.connect_timeout, '1s');
  t.deepEqual(cluster?.typed_extension_protocol_options, {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  });
  t.deepEqual(
    (normalised.layered_runtime as { layers: Array<Record<string, unknown>> }).layers[0]?.static_layer,
    {
      'overload.global_downstream_max_connections': 2147483647,
      camelKey: 1,
    },
  );
});

test('--config-yaml merges like protobuf MergeFrom: repeated fields appended, scalars replaced', (t) => {
  const merged = mergeBootstrap(
    { node: { id: 'file', cluster: 'c' }, static_resources: { clusters: [{ name: 'a' }] } },
    { node: { id: 'override' }, static_resources: { clusters: [{ name: 'b' }] } },
  );
  t.deepEqual(merged, {
    node: { id: 'override', cluster: 'c' },
    static_resources: { clusters: [{ name: 'a' }, { name: 'b' }] },
  });
});

test('loading errors carry Envoy messages', (t) => {
  t.throws(() => loadBootstrap({ configPath: '', configYaml: '' }), {
    instanceOf: ConfigurationError,
    message: 'At least one of --config-path or --config-yaml or Options::configProto() should be non-empty',
  });
  t.throws(() => loadBootstrap({ configPath: '/nonexistent/envoy.json', configYaml: '' }), {
    message: 'unable to read file: /nonexistent/envoy.json',
  });
  t.throws(() => loadBootstrap({ configPath: 'x.json', configYaml: '', readFile: () => '{ not json' }), {
    message: /^Unable to parse JSON as proto/,
  });
  const yaml = loadBootstrap({
    configPath: 'x.yaml',
    configYaml: 'node: {id: y}',
    readFile: () => 'node:\n  id: x\n  cluster: c\n',
  });
  t.deepEqual(yaml.node, { id: 'y', cluster: 'c' });
});

const check = (bootstrap: Record<string, unknown>, allowUnknownStaticFields = false) =>
  checkBootstrap(normaliseBootstrapKeys(bootstrap), { allowUnknownStaticFields });

test('structural checks reject what Envoy rejects', (t) => {
  const invalid = (bootstrap: Record<string, unknown>) => {
    const result = check(bootstrap);
    if (result.valid) throw new Error('expected the bootstrap to be rejected');
    return result.message;
  };
  t.regex(
    invalid({ ...baseBootstrap(1), unknownThing: 1 }),
    /reason INVALID_ARGUMENT:unknown_thing: Cannot find field\./,
  );
  t.true(check({ ...baseBootstrap(1), unknownThing: 1 }, true).valid);

  const withClusters = (clusters: unknown[], listeners: unknown[] = []) => ({
    ...baseBootstrap(1),
    static_resources: { clusters, listeners },
  });
  const cluster = staticCluster('agent', socketAddress(15020));
  t.is(invalid(withClusters([cluster, cluster])), "cluster manager: duplicate cluster 'agent'");
  t.is(
    invalid(withClusters([cluster], [httpListener('l', 15021, [{ prefix: '/', cluster: 'missing' }])])),
    "route: unknown cluster 'missing'",
  );
  t.is(
    invalid({
      ...withClusters([cluster]),
      dynamic_resources: {
        ads_config: {
          api_type: 'GRPC',
          transport_api_version: 'V3',
          grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
        },
      },
    }),
    "envoy::config::core::v3::ApiConfigSource must have a statically defined non-EDS cluster: 'xds-grpc' does not exist, was added via api, or is an EDS cluster",
  );
  t.regex(
    invalid({
      ...withClusters([cluster]),
      dynamic_resources: { cds_config: { ads: {}, resource_api_version: 'V2' } },
    }),
    /V2 \(and AUTO\) xDS resource versions are deprecated/,
  );
  t.is(
    invalid({
      ...baseBootstrap(1),
      admin: { address: { socket_address: { address: 'localhost', port_value: 1 } } },
    }),
    'malformed IP address: localhost',
  );
});

test('a bootstrap without an admin address is valid and starts no admin server', (t) => {
  const result = check({ node: { id: 'n' } });
  t.true(result.valid);
  if (result.valid) t.is(result.bootstrap.adminAddress, undefined);
});

test('a rejected bootstrap exits 1 with a critical "error initializing configuration" line', async (t) => {
  const root = await temporaryRoot(t);
  const file = await writeBootstrap(root, {
    ...baseBootstrap(await freePort()),
    static_resources: { clusters: [{ type: 'STATIC' }] },
  });
  const envoy = startStandin(t, ['-c', file, '--disable-hot-restart']);
  const { exitCode } = await envoy.exited;
  t.is(exitCode, 1);
  t.true(
    envoy.logs.some((line) =>
      /\[critical\]\[main\] .*error initializing configuration '.*envoy-rev\.json': Proto constraint validation failed \(ClusterValidationError\.Name/.test(
        line,
      ),
    ),
    envoy.logs.join('\n'),
  );
});

test('--config-yaml alone is a whole bootstrap, and without admin Envoy logs that none started', async (t) => {
  const envoy = startStandin(t, [
    '--config-yaml',
    'node: {id: only-yaml, cluster: c}',
    '--disable-hot-restart',
  ]);
  await envoy.waitForLog(/\[info\]\[main\] .*No admin address given, so no admin HTTP server started\./);
  await envoy.waitForLog(/all dependencies initialized\. starting workers/);
  envoy.kill('SIGTERM');
  t.deepEqual(await envoy.exited, { exitCode: 0, signal: undefined });
  t.true(
    envoy.logs.some((line) => line.includes('caught SIGTERM')),
    'still running (nothing to serve) until told to stop, like Envoy',
  );
});

test('the strict validator rejects what Envoy rejects deep inside, also inside typed_config', (t) => {
  const bootstrap = {
    ...baseBootstrap(1),
    admin: {
      address: { socket_address: { address: '127.0.0.1', port_value: 1 } },
      access_log: [
        {
          name: 'envoy.access_loggers.file',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
            paht: '/dev/null',
          },
        },
      ],
    },
  };
  const result = check(bootstrap);
  t.false(result.valid);
  if (!result.valid) {
    t.is(result.fieldPath, 'admin.access_log[0].typed_config.paht');
    t.regex(
      result.message,
      /type envoy\.extensions\.access_loggers\.file\.v3\.FileAccessLog reason INVALID_ARGUMENT:paht: Cannot find field\./,
    );
  }
  const unknownType = check({
    ...bootstrap,
    admin: {
      ...bootstrap.admin,
      access_log: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/envoy.Nope' } }],
    },
  });
  t.false(unknownType.valid);
  t.true(check(bootstrap, true).valid, '--allow-unknown-static-fields tolerates the unknown key');
});
