/**
 * The container args and environment of a real injected sidecar (Istio 1.8-style manifest), as the kubelet
 * hands them to the agent after expanding the downward API and `$(VAR)` references.
 */
export const injectedPodArgs = [
  'proxy',
  'sidecar',
  '--domain',
  'shop.svc.cluster.local',
  '--serviceCluster',
  'nginx.shop',
  '--proxyLogLevel=warning',
  '--proxyComponentLogLevel=misc:error',
  '--concurrency',
  '2',
];

export const injectedPodEnvironment: Record<string, string> = {
  JWT_POLICY: 'third-party-jwt',
  PILOT_CERT_PROVIDER: 'istiod',
  CA_ADDR: 'istiod.istio-system.svc:15012',
  POD_NAME: 'nginx-7c5ddbdf54-x2x9k',
  POD_NAMESPACE: 'shop',
  INSTANCE_IP: '10.244.1.17',
  SERVICE_ACCOUNT: 'nginx',
  HOST_IP: '172.18.0.3',
  CANONICAL_SERVICE: 'nginx',
  CANONICAL_REVISION: 'latest',
  PROXY_CONFIG: '{"proxyMetadata":{"DNS_AGENT":""}}\n',
  ISTIO_META_POD_PORTS: '[\n    {"containerPort":80,"protocol":"TCP"}\n]',
  ISTIO_META_APP_CONTAINERS: 'nginx',
  ISTIO_META_CLUSTER_ID: 'Kubernetes',
  ISTIO_META_INTERCEPTION_MODE: 'REDIRECT',
  ISTIO_META_WORKLOAD_NAME: 'nginx',
  ISTIO_META_OWNER: 'kubernetes://apis/apps/v1/namespaces/shop/deployments/nginx',
  ISTIO_META_MESH_ID: 'cluster.local',
  TRUST_DOMAIN: 'cluster.local',
};
