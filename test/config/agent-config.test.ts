import path from 'node:path';
import test from 'ava';
import {
  type AgentConfig,
  buildAgentConfig,
  type ConfigInputs,
  defaultProxyFlags,
  type ProxyFlags,
} from '../../agent/config/agent-config.ts';
import { ConfigError } from '../../agent/config/errors.ts';
import { badInputs } from './bad-inputs.ts';
import { injectedPodEnvironment } from './injected-pod.ts';

const root = '/pod-root';

function build(
  environment: Record<string, string>,
  options: { flags?: Partial<ProxyFlags>; files?: Record<string, string> } = {},
): AgentConfig {
  const files = new Map(
    Object.entries(options.files ?? {}).map(([relative, content]) => [path.join(root, relative), content]),
  );
  const inputs: ConfigInputs = {
    environment,
    flags: { ...defaultProxyFlags, ...options.flags },
    workingDirectory: root,
    readFile: (file) => files.get(file),
  };
  return buildAgentConfig(inputs);
}

function buildError(
  environment: Record<string, string>,
  options: Parameters<typeof build>[1] = {},
): ConfigError {
  const error = (() => {
    try {
      build(environment, options);
    } catch (caught) {
      return caught;
    }
    return undefined;
  })();
  if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(error)}`);
  return error;
}

test("defaults are Istio's", (t) => {
  const config = build({ POD_NAMESPACE: 'default' });
  t.is(config.nodeType, 'sidecar');
  t.is(config.domain, 'default.svc.cluster.local');
  t.is(config.serviceCluster, 'istio-proxy');
  t.is(config.proxyConfig.binaryPath, '/usr/local/bin/envoy');
  t.is(config.proxyConfig.discoveryAddress, 'istiod.istio-system.svc:15012');
  t.deepEqual(config.ports, {
    proxyAdmin: 15000,
    status: 15020,
    envoyStatus: 15021,
    envoyPrometheus: 15090,
    sts: 0,
  });
  t.is(config.concurrency, 0);
  t.deepEqual(config.proxyLogLevels, { level: 'warning', componentLevels: {} });
  t.is(config.security.caAddress, 'istiod.istio-system.svc:15012');
  t.is(config.security.trustDomain, 'cluster.local');
  t.is(config.security.spiffeId, 'spiffe://cluster.local/ns/default/sa/default');
  t.is(config.security.secretTtlMilliseconds, 24 * 3600 * 1000);
  t.is(config.security.secretGracePeriodRatio, 0.5);
  t.deepEqual(config.security.keyAlgorithm, { kind: 'RSA', size: 2048 });
  t.is(config.security.clusterId, 'Kubernetes');
  t.is(config.drain.drainDurationMilliseconds, 45_000);
  t.is(config.drain.terminationDrainDurationMilliseconds, 5_000);
  t.is(config.drain.minimumDrainDurationMilliseconds, 5_000);
  t.false(config.drain.exitOnZeroActiveConnections);
  t.is(config.fileDebounceMilliseconds, 100);
  t.true(config.xds.delta);
  t.false(config.metricsLocalhostAccessOnly);
  t.deepEqual(config.pod.instanceIps, ['127.0.0.1']);
  t.deepEqual(config.applicationScrapeTargets, []);
  t.is(config.appProbers.size, 0);
  t.is(config.paths.configDirectory, '/pod-root/etc/istio/proxy');
  t.is(config.paths.bootstrapFile, '/pod-root/etc/istio/proxy/envoy-rev.json');
  t.is(config.paths.xdsSocket, '/pod-root/etc/istio/proxy/XDS');
  t.is(config.paths.sdsSocket, '/pod-root/var/run/secrets/workload-spiffe-uds/socket');
  t.is(config.paths.istiodRootCertFile, '/pod-root/var/run/secrets/istio/root-cert.pem');
  t.is(config.paths.tokenFile, '/pod-root/var/run/secrets/tokens/istio-token');
  t.is(config.paths.dataDirectory, '/pod-root/var/lib/istio/data');
  t.is(config.paths.meshConfigFile, '/pod-root/etc/istio/config/mesh');
  t.true(Object.isFrozen(config) && Object.isFrozen(config.pod) && Object.isFrozen(config.proxyConfig));
});

test('the environment of a real injected pod is read completely', (t) => {
  const config = build(injectedPodEnvironment, {
    flags: {
      domain: 'shop.svc.cluster.local',
      serviceCluster: 'nginx.shop',
      proxyComponentLogLevel: 'misc:error',
      concurrency: '2',
    },
  });
  t.deepEqual(config.pod, {
    name: 'nginx-7c5ddbdf54-x2x9k',
    namespace: 'shop',
    serviceAccount: 'nginx',
    instanceIps: ['10.244.1.17'],
    hostIp: '172.18.0.3',
    canonicalService: 'nginx',
    canonicalRevision: 'latest',
    labels: {},
    annotations: {},
  });
  t.is(config.domain, 'shop.svc.cluster.local');
  t.is(config.serviceCluster, 'nginx.shop');
  t.is(config.concurrency, 2);
  t.deepEqual(config.proxyLogLevels, { level: 'warning', componentLevels: { misc: 'error' } });
  t.deepEqual(config.proxyConfig.proxyMetadata, { DNS_AGENT: '' });
  t.is(config.security.spiffeId, 'spiffe://cluster.local/ns/shop/sa/nginx');
  t.is(config.security.jwtPolicy, 'third-party-jwt');
  t.is(config.security.pilotCertProvider, 'istiod');
  t.is(config.security.caAddress, 'istiod.istio-system.svc:15012');
  t.deepEqual(config.rawNodeMetadata, {
    POD_PORTS: '[\n    {"containerPort":80,"protocol":"TCP"}\n]',
    APP_CONTAINERS: 'nginx',
    CLUSTER_ID: 'Kubernetes',
    INTERCEPTION_MODE: 'REDIRECT',
    WORKLOAD_NAME: 'nginx',
    OWNER: 'kubernetes://apis/apps/v1/namespaces/shop/deployments/nginx',
    MESH_ID: 'cluster.local',
  });
});

test('variables spelled with hyphens are accepted and the underscore spelling wins', (t) => {
  const config = build({
    'POD-NAMESPACE': 'hyphen',
    'POD-NAME': 'from-hyphen',
    POD_NAME: 'from-underscore',
    'ISTIO-META-FOO': 'bar',
  });
  t.is(config.pod.namespace, 'hyphen');
  t.is(config.pod.name, 'from-underscore');
  t.is(config.rawNodeMetadata.FOO, 'bar');
});

test('ProxyConfig layers: defaults, mesh defaultConfig, PROXY_CONFIG, then the pod annotation; proxyMetadata merges', (t) => {
  const config = build(
    {
      POD_NAMESPACE: 'default',
      PROXY_CONFIG: 'drainDuration: 30s\nproxyMetadata:\n  FROM_ENV: env\n  SHARED: env\nconcurrency: 3\n',
    },
    {
      files: {
        'etc/istio/config/mesh':
          'defaultConfig:\n  discoveryAddress: istiod.mesh:15012\n  drainDuration: 10s\n  proxyMetadata:\n    FROM_MESH: mesh\n    SHARED: mesh\n',
        'etc/istio/pod/annotations':
          'proxy.istio.io/config="{\\"concurrency\\": 4, \\"proxyMetadata\\": {\\"SHARED\\": \\"annotation\\"}}"\n',
      },
    },
  );
  t.is(config.proxyConfig.discoveryAddress, 'istiod.mesh:15012');
  t.is(config.proxyConfig.drainDuration, '30s');
  t.is(config.drain.drainDurationMilliseconds, 30_000);
  t.is(config.concurrency, 4);
  t.deepEqual(config.proxyConfig.proxyMetadata, { FROM_MESH: 'mesh', FROM_ENV: 'env', SHARED: 'annotation' });
  t.is(config.security.caAddress, 'istiod.mesh:15012', 'CA_ADDR unset: the CA is the discovery address');
});

test('the discovery address and status port annotations are the last ProxyConfig layer', (t) => {
  const config = build(
    { POD_NAMESPACE: 'default', PROXY_CONFIG: '{"discoveryAddress":"a:1","statusPort":15555}' },
    {
      files: {
        'etc/istio/pod/annotations':
          'sidecar.istio.io/discoveryAddress="b:2"\nstatus.sidecar.istio.io/port="15666"\n',
      },
    },
  );
  t.is(config.xds.discoveryAddress, 'b:2');
  t.is(config.ports.status, 15666);
});

test('proxyMetadata is exported into the environment and wins over the pod variables', (t) => {
  const config = build({
    POD_NAMESPACE: 'default',
    TRUST_DOMAIN: 'from.pod',
    PROXY_CONFIG: JSON.stringify({
      proxyMetadata: { TRUST_DOMAIN: 'from.metadata', ISTIO_META_DNS_CAPTURE: 'true' },
    }),
  });
  t.is(config.security.trustDomain, 'from.metadata');
  t.is(config.rawNodeMetadata.DNS_CAPTURE, 'true');
});

test('node metadata: ISTIO_META_* raw strings, ISTIO_METAJSON_* objects merged at the top level', (t) => {
  const config = build({
    POD_NAMESPACE: 'default',
    ISTIO_META_REQUESTED_NETWORK_VIEW: 'a,b',
    ISTIO_META_DNS_CAPTURE: 'true',
    ISTIO_METAJSON_LABELS: '{"LABELS":{"app":"reviews","version":"v1"}}',
    ISTIO_METAJSON_PLATFORM: '{"PLATFORM_METADATA":{"gcp_project":"p"},"DNS_CAPTURE":"false"}',
  });
  t.is(config.rawNodeMetadata.REQUESTED_NETWORK_VIEW, 'a,b');
  t.is(config.rawNodeMetadata.DNS_CAPTURE, 'false', 'JSON metadata is applied after the raw strings');
  t.deepEqual(config.rawNodeMetadata.LABELS, { app: 'reviews', version: 'v1' });
  t.deepEqual(config.rawNodeMetadata.PLATFORM_METADATA, { gcp_project: 'p' });
});

test('downward-API files: Go-quoted values with escapes, lines without "=" skipped', (t) => {
  const config = build(
    { POD_NAMESPACE: 'default' },
    {
      files: {
        'etc/istio/pod/labels':
          'app="reviews"\npod-template-hash="5d4b7c"\nsecurity.istio.io/tlsMode="istio"\nnot a pair\n',
        'etc/istio/pod/annotations':
          'kubernetes.io/config.seen="2026-11-25T10:00:00.000000000Z"\nnote="tab\\there \\"quoted\\" \\u00e9 \\xc3\\xa9 \\101"\nraw=`a\\nb`\n',
      },
    },
  );
  t.deepEqual(config.pod.labels, {
    app: 'reviews',
    'pod-template-hash': '5d4b7c',
    'security.istio.io/tlsMode': 'istio',
  });
  t.is(config.pod.annotations.note, 'tab\there "quoted" é é A');
  t.is(config.pod.annotations.raw, 'a\\nb');
  t.is(config.pod.annotations['kubernetes.io/config.seen'], '2026-11-25T10:00:00.000000000Z');
});

test('a badly quoted downward-API value names the file and line', (t) => {
  const error = buildError(
    { POD_NAMESPACE: 'default' },
    { files: { 'etc/istio/pod/labels': 'app="ok"\nversion="v1\n' } },
  );
  t.is(error.source, '/pod-root/etc/istio/pod/labels:2');
  t.regex(error.message, /value of "version" is not a Go-quoted string/);
});

test('concurrency: ProxyConfig, else ISTIO_CPU_LIMIT when non-zero; a non-zero flag overrides both', (t) => {
  t.is(build({ POD_NAMESPACE: 'n' }).concurrency, 0);
  t.is(build({ POD_NAMESPACE: 'n', ISTIO_CPU_LIMIT: '0' }).concurrency, 0);
  t.is(build({ POD_NAMESPACE: 'n', ISTIO_CPU_LIMIT: '3' }).concurrency, 3);
  t.is(build({ POD_NAMESPACE: 'n', ISTIO_CPU_LIMIT: '3', PROXY_CONFIG: '{"concurrency":2}' }).concurrency, 2);
  t.is(build({ POD_NAMESPACE: 'n', PROXY_CONFIG: '{"concurrency":0}', ISTIO_CPU_LIMIT: '3' }).concurrency, 0);
  t.is(
    build({ POD_NAMESPACE: 'n', PROXY_CONFIG: '{"concurrency":2}' }, { flags: { concurrency: '5' } })
      .concurrency,
    5,
  );
  t.is(
    build({ POD_NAMESPACE: 'n', PROXY_CONFIG: '{"concurrency":2}' }, { flags: { concurrency: '0' } })
      .concurrency,
    2,
  );
});

test('log levels: entries with ":" are component levels, warn and warning both accepted', (t) => {
  const config = build(
    { POD_NAMESPACE: 'n' },
    {
      flags: {
        proxyLogLevel: 'debug,upstream:trace',
        proxyComponentLogLevel: 'misc:error,upstream:warn',
        logOutputLevel: 'default:warn,ca:debug',
      },
    },
  );
  t.deepEqual(config.proxyLogLevels, {
    level: 'debug',
    componentLevels: { upstream: 'warn', misc: 'error' },
  });
  t.deepEqual(config.agentLogLevels, { default: 'warn', ca: 'debug' });
});

test('the sidecar.istio.io/logLevel and componentLogLevel annotations override the flags', (t) => {
  const config = build(
    { POD_NAMESPACE: 'n' },
    {
      files: {
        'etc/istio/pod/annotations':
          'sidecar.istio.io/logLevel="debug"\nsidecar.istio.io/componentLogLevel="rbac:trace"\n',
      },
    },
  );
  t.deepEqual(config.proxyLogLevels, { level: 'debug', componentLevels: { rbac: 'trace' } });
});

test('durations: Go duration strings in environment and ProxyConfig', (t) => {
  const config = build({
    POD_NAMESPACE: 'n',
    SECRET_TTL: '1h30m',
    FILE_DEBOUNCE_DURATION: '250ms',
    MINIMUM_DRAIN_DURATION: '1.5s',
    PROXY_CONFIG: '{"terminationDrainDuration":"2s"}',
  });
  t.is(config.security.secretTtlMilliseconds, 5_400_000);
  t.is(config.fileDebounceMilliseconds, 250);
  t.is(config.drain.minimumDrainDurationMilliseconds, 1_500);
  t.is(config.drain.terminationDrainDurationMilliseconds, 2_000);
});

test('security settings: ECDSA keys, custom provider root, CA and XDS headers, cert signer', (t) => {
  const config = build({
    POD_NAMESPACE: 'n',
    ECC_SIGNATURE_ALGORITHM: 'ECDSA',
    ECC_CURVE: 'P384',
    PILOT_CERT_PROVIDER: 'custom',
    CA_HEADER_X_TENANT: 'blue',
    XDS_HEADER_X_ROUTE: 'green',
    ISTIO_META_CERT_SIGNER: 'signer-a',
    ISTIOD_SAN: 'istiod.custom',
    OUTPUT_CERTS: './out',
  });
  t.deepEqual(config.security.keyAlgorithm, { kind: 'ECDSA', curve: 'P384' });
  t.is(config.paths.istiodRootCertFile, '/pod-root/etc/certs/root-cert.pem');
  t.deepEqual(config.security.caHeaders, { X_TENANT: 'blue' });
  t.deepEqual(config.xds.headers, { X_ROUTE: 'green' });
  t.is(config.security.certSigner, 'signer-a');
  t.is(config.security.istiodSan, 'istiod.custom');
  t.is(config.paths.outputCertsDirectory, '/pod-root/out');
});

test('application probers and scrape targets are parsed from their variables', (t) => {
  const config = build({
    POD_NAMESPACE: 'n',
    ISTIO_KUBE_APP_PROBERS: JSON.stringify({
      '/app-health/web/livez': {
        httpGet: { path: '/healthz', port: 8080, scheme: 'HTTPS', httpHeaders: [{ name: 'X', value: 'y' }] },
        timeoutSeconds: 3,
      },
      '/app-health/web/readyz': { tcpSocket: { port: 8080 } },
      '/app-health/grpc/startupz': { grpc: { port: 9090, service: 'svc' }, timeoutSeconds: 2 },
    }),
    ISTIO_PROMETHEUS_ANNOTATIONS:
      '{"scrape":"true","path":"/stats","port":"9100","targets":[{"port":"9200"},{"port":9300,"path":"m"}]}',
  });
  t.deepEqual(config.appProbers.get('/app-health/web/livez'), {
    kind: 'http',
    port: 8080,
    path: '/healthz',
    scheme: 'HTTPS',
    headers: [{ name: 'X', value: 'y' }],
    timeoutSeconds: 3,
  });
  t.deepEqual(config.appProbers.get('/app-health/web/readyz'), {
    kind: 'tcp',
    port: 8080,
    timeoutSeconds: 1,
  });
  t.deepEqual(config.appProbers.get('/app-health/grpc/startupz'), {
    kind: 'grpc',
    port: 9090,
    service: 'svc',
    timeoutSeconds: 2,
  });
  t.deepEqual(config.applicationScrapeTargets, [
    { port: 9200, path: '/stats' },
    { port: 9300, path: '/m' },
  ]);
});

test("scrape targets fall back to the pod's prometheus.io annotations", (t) => {
  const annotations = 'prometheus.io/scrape="true"\nprometheus.io/port="9102"\n';
  t.deepEqual(
    build({ POD_NAMESPACE: 'n' }, { files: { 'etc/istio/pod/annotations': annotations } })
      .applicationScrapeTargets,
    [{ port: 9102, path: '/metrics' }],
  );
  t.deepEqual(
    build(
      { POD_NAMESPACE: 'n', ISTIO_PROMETHEUS_ANNOTATIONS: '{"scrape":"false"}' },
      { files: { 'etc/istio/pod/annotations': annotations } },
    ).applicationScrapeTargets,
    [],
  );
});

test('instance IPs: INSTANCE_IP first, then ISTIO_META_INSTANCE_IPS, without duplicates', (t) => {
  const config = build({
    POD_NAMESPACE: 'n',
    INSTANCE_IP: 'fd00::5',
    ISTIO_META_INSTANCE_IPS: 'fd00::5,10.0.0.5',
  });
  t.deepEqual(config.pod.instanceIps, ['fd00::5', '10.0.0.5']);
});

for (const { name, environment, flags, files, expected } of badInputs) {
  test(`bad input is a ConfigError naming its source: ${name}`, (t) => {
    const error = buildError({ POD_NAMESPACE: 'n', ...environment }, { flags, files });
    t.regex(error.message, new RegExp(expected.replace(/^\^\/ROOT/, '^/pod-root')));
  });
}

test('pod annotations that point Prometheus at the sidecar itself are not an application target', (t) => {
  const annotations =
    'prometheus.io/scrape="true"\nprometheus.io/port="15020"\nprometheus.io/path="/stats/prometheus"\n';
  const config = build({ POD_NAMESPACE: 'n' }, { files: { 'etc/istio/pod/annotations': annotations } });
  t.deepEqual(config.applicationScrapeTargets, []);
});
