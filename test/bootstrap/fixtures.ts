import path from 'node:path';
import {
  type AgentConfig,
  buildAgentConfig,
  defaultProxyFlags,
  type ProxyFlags,
} from '../../agent/config/agent-config.ts';

/** The container root the fixtures pretend to run in (never touched: files come from the map). */
export const podRoot = '/pod';

/**
 * The `istio-proxy` container of a Bookinfo `details-v1` pod as Istio 1.8's injector rendered it: its
 * environment, the command-line flags, the downward-API files and the mesh config.
 */
export const injectedPod = {
  flags: {
    ...defaultProxyFlags,
    domain: 'default.svc.cluster.local',
    serviceCluster: 'details.default',
    proxyLogLevel: 'warning',
    proxyComponentLogLevel: 'misc:error',
    concurrency: '2',
  } satisfies ProxyFlags,
  /** The same flags as the container's args. */
  args: [
    'proxy',
    'sidecar',
    '--domain',
    'default.svc.cluster.local',
    '--serviceCluster',
    'details.default',
    '--proxyLogLevel=warning',
    '--proxyComponentLogLevel=misc:error',
    '--trust-domain=cluster.local',
    '--concurrency',
    '2',
  ],
  environment: {
    JWT_POLICY: 'third-party-jwt',
    PILOT_CERT_PROVIDER: 'istiod',
    CA_ADDR: 'istiod.istio-system.svc:15012',
    POD_NAME: 'details-v1-5974b67c8-wclnd',
    POD_NAMESPACE: 'default',
    INSTANCE_IP: '10.244.0.12',
    SERVICE_ACCOUNT: 'bookinfo-details',
    HOST_IP: '172.18.0.2',
    CANONICAL_SERVICE: 'details',
    CANONICAL_REVISION: 'v1',
    PROXY_CONFIG: '{"proxyMetadata":{"DNS_AGENT":""}}\n',
    ISTIO_META_POD_PORTS: '[\n    {"containerPort":9080,"protocol":"TCP"}\n]',
    ISTIO_META_APP_CONTAINERS: 'details',
    ISTIO_META_CLUSTER_ID: 'Kubernetes',
    ISTIO_META_INTERCEPTION_MODE: 'REDIRECT',
    ISTIO_META_WORKLOAD_NAME: 'details-v1',
    ISTIO_META_OWNER: 'kubernetes://apis/apps/v1/namespaces/default/deployments/details-v1',
    ISTIO_META_MESH_ID: 'cluster.local',
    TRUST_DOMAIN: 'cluster.local',
    // The injector moves the application's own prometheus.io annotations here (none in this pod).
    ISTIO_PROMETHEUS_ANNOTATIONS: '{"scrape":"","path":"","port":""}',
    DNS_AGENT: '',
  } as Record<string, string>,
  files: {
    'etc/istio/pod/labels': [
      'app="details"',
      'istio.io/rev="default"',
      'pod-template-hash="5974b67c8"',
      'security.istio.io/tlsMode="istio"',
      'service.istio.io/canonical-name="details"',
      'service.istio.io/canonical-revision="v1"',
      'version="v1"',
    ].join('\n'),
    'etc/istio/pod/annotations': [
      'kubernetes.io/config.seen="2020-11-19T10:21:08.000000000Z"',
      'kubernetes.io/config.source="api"',
      'prometheus.io/path="/stats/prometheus"',
      'prometheus.io/port="15020"',
      'prometheus.io/scrape="true"',
      'sidecar.istio.io/status="{\\"version\\":\\"e2cb9d4837cda9584fd272bfa1f348525bcaacfadb7e9b9efbd21a3bb44ad7a1\\",\\"initContainers\\":[\\"istio-init\\"],\\"containers\\":[\\"istio-proxy\\"],\\"volumes\\":[\\"istio-envoy\\",\\"istio-data\\",\\"istio-podinfo\\",\\"istiod-ca-cert\\"],\\"imagePullSecrets\\":null}"',
    ].join('\n'),
    'etc/istio/config/mesh': [
      'defaultConfig:',
      '  discoveryAddress: istiod.istio-system.svc:15012',
      '  proxyMetadata:',
      '    DNS_AGENT: ""',
      '  tracing:',
      '    zipkin:',
      '      address: zipkin.istio-system:9411',
      'enablePrometheusMerge: true',
      'rootNamespace: istio-system',
      'trustDomain: cluster.local',
    ].join('\n'),
  } as Record<string, string>,
};

export interface ConfigFixture {
  readonly environment?: Record<string, string>;
  readonly flags?: Partial<ProxyFlags>;
  /** Files relative to the pod root. */
  readonly files?: Record<string, string>;
}

/** An AgentConfig built the way the agent builds it, from an environment snapshot and in-memory files. */
export function configFor(fixture: ConfigFixture = {}): AgentConfig {
  const files = new Map(
    Object.entries(fixture.files ?? {}).map(([relative, text]) => [path.resolve(podRoot, relative), text]),
  );
  return buildAgentConfig({
    environment: { POD_NAMESPACE: 'default', ...fixture.environment },
    flags: { ...defaultProxyFlags, ...fixture.flags },
    workingDirectory: podRoot,
    readFile: (file) => files.get(file),
  });
}

/** The injected pod, with adjustments. */
export function injectedPodConfig(changes: ConfigFixture = {}): AgentConfig {
  return configFor({
    environment: { ...injectedPod.environment, ...changes.environment },
    flags: { ...injectedPod.flags, ...changes.flags },
    files: { ...injectedPod.files, ...changes.files },
  });
}
