import test from 'ava';
import { loadEnvoyApiSchema } from '../../bootstrap/envoy-schema.ts';
import { validateBootstrap, validateEnvoyMessage } from '../../bootstrap/validate.ts';

// biome-ignore lint/suspicious/noExplicitAny: mutation tests poke anywhere in the document
type Json = any;

/** A small bootstrap touching each kind of field: nested messages, lists, maps, oneofs, enums, Any, durations. */
function sample(): Json {
  return {
    node: { id: 'sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local', cluster: 'app.ns', metadata: { A: 'b' } },
    admin: {
      address: { socket_address: { address: '127.0.0.1', port_value: 15000 } },
      access_log: [
        {
          name: 'envoy.access_loggers.file',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
            path: '/dev/null',
          },
        },
      ],
    },
    staticResources: {
      clusters: [
        {
          name: 'xds-grpc',
          type: 'STATIC',
          connectTimeout: '1s',
          load_assignment: {
            cluster_name: 'xds-grpc',
            endpoints: [
              { lb_endpoints: [{ endpoint: { address: { pipe: { path: './etc/istio/proxy/XDS' } } } }] },
            ],
          },
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        },
      ],
    },
    layered_runtime: {
      layers: [
        { name: 'global config', static_layer: { 'overload.global_downstream_max_connections': 2147483647 } },
      ],
    },
  };
}

test('a valid bootstrap in mixed snake_case and lowerCamelCase passes', (t) => {
  t.deepEqual(validateBootstrap(sample()), { valid: true, ignoredFields: [] });
});

test('the schema is built once per process and holds the bootstrap and extension types', (t) => {
  const schema = loadEnvoyApiSchema();
  t.is(loadEnvoyApiSchema(), schema);
  t.is(schema.bootstrap.typeName, 'envoy.config.bootstrap.v3.Bootstrap');
  for (const typeName of [
    'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    'envoy.extensions.filters.http.router.v3.Router',
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    'envoy.extensions.access_loggers.file.v3.FileAccessLog',
    'xds.type.v3.TypedStruct',
    'udpa.type.v1.TypedStruct',
  ]) {
    t.truthy(schema.registry.getMessage(typeName), typeName);
  }
  // Envoy's removed v2 API is not accepted.
  t.is(schema.registry.getMessage('envoy.api.v2.Cluster'), undefined);
  t.true(schema.loadMilliseconds > 0);
});

type Mutation = (bootstrap: Json) => void;

const defects: [string, Mutation, string, RegExp][] = [
  ['an unknown field at the top level', (b) => (b.foo = 1), 'foo', /unknown field "foo"/],
  [
    'an unknown field deep inside',
    (b) =>
      (b.staticResources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.colour = 'red'),
    'staticResources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.colour',
    /unknown field "colour" in envoy\.config\.endpoint\.v3\.Endpoint/,
  ],
  [
    'an unknown field inside a typed_config Any',
    (b) => (b.admin.access_log[0].typed_config.paht = '/dev/null'),
    'admin.access_log[0].typed_config.paht',
    /unknown field "paht" in envoy\.extensions\.access_loggers\.file\.v3\.FileAccessLog/,
  ],
  [
    'an unknown field inside an Any in a map',
    (b) =>
      (b.staticResources.clusters[0].typed_extension_protocol_options[
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
      ].explicit_http_config.http2_protocol_options.turbo = true),
    'staticResources.clusters[0].typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config.http2_protocol_options.turbo',
    /unknown field "turbo"/,
  ],
  [
    'an unknown @type URL',
    (b) =>
      (b.admin.access_log[0].typed_config['@type'] =
        'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileLog'),
    'admin.access_log[0].typed_config.@type',
    /unknown type "type\.googleapis\.com\/envoy\.extensions\.access_loggers\.file\.v3\.FileLog"/,
  ],
  [
    'a @type of the removed v2 API',
    (b) =>
      (b.admin.access_log[0].typed_config['@type'] =
        'type.googleapis.com/envoy.config.accesslog.v2.FileAccessLog'),
    'admin.access_log[0].typed_config.@type',
    /unknown type/,
  ],
  [
    'an Any without @type',
    (b) => delete b.admin.access_log[0].typed_config['@type'],
    'admin.access_log[0].typed_config.@type',
    /"@type" is missing/,
  ],
  [
    'a bad enum name',
    (b) => (b.staticResources.clusters[0].type = 'STATIK'),
    'staticResources.clusters[0].type',
    /DiscoveryType from JSON: "STATIK"/,
  ],
  [
    'a duration without a unit',
    (b) => (b.staticResources.clusters[0].connectTimeout = '10'),
    'staticResources.clusters[0].connectTimeout',
    /google\.protobuf\.Duration from JSON: "10"/,
  ],
  [
    'a duration with a bad unit',
    (b) => (b.staticResources.clusters[0].connectTimeout = '10ms'),
    'staticResources.clusters[0].connectTimeout',
    /google\.protobuf\.Duration/,
  ],
  [
    'a string where a port number belongs',
    (b) => (b.admin.address.socket_address.port_value = 'fifteen thousand'),
    'admin.address.socket_address.port_value',
    /expected number \(uint32\)/,
  ],
  [
    'two members of one oneof',
    (b) => (b.admin.address.pipe = { path: '/tmp/admin' }),
    'admin.address.pipe',
    /only one field of oneof address/,
  ],
  [
    'one field spelled both ways',
    (b) => (b.staticResources.clusters[0].connect_timeout = '2s'),
    'staticResources.clusters[0].connect_timeout',
    /set twice/,
  ],
  [
    'a list where a message belongs',
    (b) => (b.node = []),
    'node',
    /expected an object for envoy\.config\.core\.v3\.Node/,
  ],
  [
    'a message where a list belongs',
    (b) => (b.staticResources.clusters = { name: 'x' }),
    'staticResources.clusters',
    /expected a list/,
  ],
];

for (const [kind, mutate, fieldPath, message] of defects) {
  test(`the validator reports ${kind} with its field path`, (t) => {
    const bootstrap = sample();
    mutate(bootstrap);
    const result = validateBootstrap(bootstrap);
    t.false(result.valid);
    if (result.valid) return;
    t.is(result.fieldPath, fieldPath);
    t.regex(result.message, message);
  });
}

test('allowUnknownFields skips unknown keys (also inside Any) but nothing else', (t) => {
  const bootstrap = sample();
  bootstrap.foo = 1;
  bootstrap.admin.access_log[0].typed_config.paht = 'x';
  t.deepEqual(validateBootstrap(bootstrap, { allowUnknownFields: true }), {
    valid: true,
    ignoredFields: ['admin.access_log[0].typed_config.paht', 'foo'],
  });
  bootstrap.staticResources.clusters[0].type = 'STATIK';
  const result = validateBootstrap(bootstrap, { allowUnknownFields: true });
  t.like(result, { valid: false, fieldPath: 'staticResources.clusters[0].type' });
});

test('a well-known type inside an Any is checked through its "value"', (t) => {
  const any = (value: unknown) => ({ '@type': 'type.googleapis.com/google.protobuf.Duration', value });
  const typeName = 'envoy.config.core.v3.TypedExtensionConfig';
  t.deepEqual(validateEnvoyMessage(typeName, { name: 'x', typed_config: any('5s') }), {
    valid: true,
    ignoredFields: [],
  });
  t.like(validateEnvoyMessage(typeName, { name: 'x', typed_config: any('5') }), {
    valid: false,
    fieldPath: 'typed_config.value',
  });
});

test('the top level must be an object and the type must exist', (t) => {
  t.like(validateBootstrap('node: {}'), { valid: false, fieldPath: '' });
  t.like(validateBootstrap(null), { valid: false, fieldPath: '' });
  const unknownType = validateEnvoyMessage('envoy.config.bootstrap.v3.Nonexistent', {});
  t.false(unknownType.valid);
  t.regex(unknownType.valid ? '' : unknownType.message, /not a message type/);
});
