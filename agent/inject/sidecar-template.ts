import { proxyContainerName } from './app-probes.ts';
import {
  excludedInboundPorts,
  type InjectionParameters,
  type ResourceRequirements,
} from './injection-parameters.ts';
import type { InjectionSettings } from './injection-settings.ts';
import type { ContainerPort, PodTemplate } from './pod-template.ts';
import type { WorkloadIdentity } from './workload-kinds.ts';

export const initContainerName = 'istio-init';
/** The UID and GID Envoy runs as; the init container's iptables rules exempt this UID's traffic. */
export const proxyUserId = 1337;
const clusterDomain = 'cluster.local';

export type EnvironmentVariable =
  | { readonly name: string; readonly value: string }
  | { readonly name: string; readonly valueFrom: Readonly<Record<string, unknown>> };

/** What is added to a pod: Istio's sidecar injection template, rendered for one pod. */
export interface RenderedSidecar {
  readonly proxyContainer: Record<string, unknown>;
  readonly initContainers: readonly Record<string, unknown>[];
  readonly volumes: readonly Record<string, unknown>[];
  /** Labels to add (existing ones are never overwritten). */
  readonly labels: Readonly<Record<string, string>>;
  /** Annotations to add (existing ones are never overwritten). */
  readonly annotations: Readonly<Record<string, string>>;
}

export interface SidecarTemplateInputs {
  /** The pod as the user wrote it: its containers' names and ports feed the proxy's metadata. */
  readonly template: PodTemplate;
  readonly workload: WorkloadIdentity;
  readonly parameters: InjectionParameters;
  readonly settings: InjectionSettings;
  /** Appended to the proxy's environment: the metrics merge and the rewritten probes. */
  readonly extraEnvironment: readonly EnvironmentVariable[];
}

/**
 * Renders the `istio-proxy` container, the `istio-init` container and their volumes as Istio's injection
 * template does (Istio 1.28 defaults: REDIRECT capture, istiod as CA, third-party service-account tokens).
 */
export function renderSidecar(inputs: SidecarTemplateInputs): RenderedSidecar {
  const { parameters, template } = inputs;
  const appContainers = template.spec.containers.filter((container) => container.name !== proxyContainerName);
  const labels = template.metadata?.labels ?? {};
  const annotations = template.metadata?.annotations ?? {};

  const addedLabels: Record<string, string> = {};
  if (labels['security.istio.io/tlsMode'] === undefined) addedLabels['security.istio.io/tlsMode'] = 'istio';
  if (labels['service.istio.io/canonical-name'] === undefined) {
    addedLabels['service.istio.io/canonical-name'] =
      labels['app.kubernetes.io/name'] || labels.app || inputs.workload.name || 'istio-proxy';
  }
  if (labels['service.istio.io/canonical-revision'] === undefined) {
    addedLabels['service.istio.io/canonical-revision'] =
      labels['app.kubernetes.io/version'] || labels.version || 'latest';
  }
  const addedAnnotations: Record<string, string> = {};
  const firstApp = appContainers[0]?.name;
  if (firstApp !== undefined) {
    for (const key of [
      'kubectl.kubernetes.io/default-logs-container',
      'kubectl.kubernetes.io/default-container',
    ]) {
      if (annotations[key] === undefined) addedAnnotations[key] = firstApp;
    }
  }

  return {
    proxyContainer: proxyContainer(
      inputs,
      appContainers.map((container) => container.name),
    ),
    initContainers: parameters.interceptionMode === 'NONE' ? [] : [initContainer(parameters)],
    volumes: sidecarVolumes(),
    labels: addedLabels,
    annotations: addedAnnotations,
  };
}

function proxyContainer(inputs: SidecarTemplateInputs, appContainerNames: readonly string[]) {
  const { parameters, settings, workload, template } = inputs;
  const concurrency = parameters.proxyConfig.concurrency ?? 0;
  const args = [
    'proxy',
    'sidecar',
    '--domain',
    `$(POD_NAMESPACE).svc.${clusterDomain}`,
    `--proxyLogLevel=${parameters.proxyLogLevel}`,
    `--proxyComponentLogLevel=${parameters.proxyComponentLogLevel}`,
    `--log_output_level=${parameters.agentLogLevel}`,
    ...(concurrency > 0 ? ['--concurrency', String(concurrency)] : []),
  ];
  const revision = settings.revision === 'default' ? '' : settings.revision;
  const fieldRef = (name: string, fieldPath: string): EnvironmentVariable => ({
    name,
    valueFrom: { fieldRef: { fieldPath } },
  });
  const ownerNamespace = workload.namespace || 'default';
  const environment: EnvironmentVariable[] = [
    { name: 'PILOT_CERT_PROVIDER', value: 'istiod' },
    {
      name: 'CA_ADDR',
      value: `istiod${revision ? `-${revision}` : ''}.${settings.istioNamespace}.svc:15012`,
    },
    fieldRef('POD_NAME', 'metadata.name'),
    fieldRef('POD_NAMESPACE', 'metadata.namespace'),
    fieldRef('INSTANCE_IP', 'status.podIP'),
    fieldRef('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    fieldRef('HOST_IP', 'status.hostIP'),
    fieldRef('CANONICAL_SERVICE', "metadata.labels['service.istio.io/canonical-name']"),
    fieldRef('CANONICAL_REVISION', "metadata.labels['service.istio.io/canonical-revision']"),
    { name: 'ISTIO_CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } } },
    { name: 'PROXY_CONFIG', value: `${JSON.stringify(parameters.proxyConfigOverrides)}\n` },
    { name: 'ISTIO_META_POD_PORTS', value: encodePodPorts(template) },
    { name: 'ISTIO_META_APP_CONTAINERS', value: appContainerNames.join(',') },
    { name: 'ISTIO_META_CLUSTER_ID', value: settings.clusterId },
    fieldRef('ISTIO_META_NODE_NAME', 'spec.nodeName'),
    { name: 'ISTIO_META_INTERCEPTION_MODE', value: parameters.interceptionMode },
    ...(workload.name !== ''
      ? [
          { name: 'ISTIO_META_WORKLOAD_NAME', value: workload.name },
          {
            name: 'ISTIO_META_OWNER',
            value: `kubernetes://apis/${workload.apiVersion}/namespaces/${ownerNamespace}/${workload.kind.toLowerCase()}s/${workload.name}`,
          },
        ]
      : []),
    { name: 'ISTIO_META_MESH_ID', value: parameters.proxyConfig.meshId ?? settings.mesh.trustDomain },
    { name: 'TRUST_DOMAIN', value: settings.mesh.trustDomain },
    ...proxyMetadataEnvironment(parameters),
    ...inputs.extraEnvironment,
  ];

  const tproxy = parameters.interceptionMode === 'TPROXY';
  const envoyReady = { httpGet: { path: '/healthz/ready', port: 15021 } };
  return {
    name: proxyContainerName,
    image: parameters.image,
    args,
    env: environment,
    ...(parameters.holdApplicationUntilProxyStarts
      ? { lifecycle: { postStart: { exec: { command: ['pilot-agent', 'wait'] } } } }
      : {}),
    ports: [{ containerPort: 15090, protocol: 'TCP', name: 'http-envoy-prom' }],
    ...(parameters.statusPort !== 0
      ? {
          readinessProbe: {
            ...envoyReady,
            ...(parameters.readiness.initialDelaySeconds > 0
              ? { initialDelaySeconds: parameters.readiness.initialDelaySeconds }
              : {}),
            periodSeconds: parameters.readiness.periodSeconds,
            timeoutSeconds: 3,
            failureThreshold: parameters.readiness.failureThreshold,
          },
          startupProbe: { ...envoyReady, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 600 },
        }
      : {}),
    resources: resourcesOf(parameters.resources),
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: tproxy ? { add: ['NET_ADMIN'], drop: ['ALL'] } : { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: proxyUserId,
      runAsNonRoot: !tproxy,
      runAsUser: tproxy ? 0 : proxyUserId,
    },
    volumeMounts: [
      { name: 'workload-socket', mountPath: '/var/run/secrets/workload-spiffe-uds' },
      { name: 'credential-socket', mountPath: '/var/run/secrets/credential-uds' },
      { name: 'workload-certs', mountPath: '/var/run/secrets/workload-spiffe-credentials' },
      { name: 'istiod-ca-cert', mountPath: '/var/run/secrets/istio' },
      { name: 'istio-data', mountPath: '/var/lib/istio/data' },
      { name: 'istio-envoy', mountPath: '/etc/istio/proxy' },
      { name: 'istio-token', mountPath: '/var/run/secrets/tokens' },
      { name: 'istio-podinfo', mountPath: '/etc/istio/pod' },
    ],
  };
}

function initContainer(parameters: InjectionParameters) {
  const { traffic } = parameters;
  const optional = (flag: string, value: string) => (value === '' ? [] : [flag, value]);
  const proxyMetadata = proxyMetadataEnvironment(parameters);
  return {
    name: initContainerName,
    image: parameters.image,
    args: [
      'istio-iptables',
      '-p',
      String(parameters.proxyListenPort),
      '-z',
      '15006',
      '-u',
      String(proxyUserId),
      '-m',
      parameters.interceptionMode,
      '-i',
      traffic.includeOutboundIPRanges,
      '-x',
      traffic.excludeOutboundIPRanges,
      '-b',
      traffic.includeInboundPorts,
      '-d',
      excludedInboundPorts(traffic, parameters.statusPort),
      ...optional('-q', traffic.includeOutboundPorts),
      ...optional('-o', traffic.excludeOutboundPorts),
      ...optional('-k', traffic.kubevirtInterfaces),
      ...optional('-c', traffic.excludeInterfaces),
      `--log_output_level=${parameters.agentLogLevel}`,
    ],
    ...(proxyMetadata.length > 0 ? { env: proxyMetadata } : {}),
    resources: resourcesOf(parameters.resources),
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    },
  };
}

function sidecarVolumes(): Record<string, unknown>[] {
  return [
    { name: 'workload-socket', emptyDir: {} },
    { name: 'credential-socket', emptyDir: {} },
    { name: 'workload-certs', emptyDir: {} },
    // The SDS and XDS sockets between the agent and Envoy, and Envoy's bootstrap.
    { name: 'istio-envoy', emptyDir: { medium: 'Memory' } },
    { name: 'istio-data', emptyDir: {} },
    {
      name: 'istio-podinfo',
      downwardAPI: {
        items: [
          { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
        ],
      },
    },
    {
      name: 'istio-token',
      projected: {
        sources: [
          { serviceAccountToken: { path: 'istio-token', expirationSeconds: 43200, audience: 'istio-ca' } },
        ],
      },
    },
    { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
  ];
}

/** `proxyMetadata` entries become variables of both containers, in key order (Go's template ranges sort). */
function proxyMetadataEnvironment(parameters: InjectionParameters): EnvironmentVariable[] {
  const metadata = parameters.proxyConfig.proxyMetadata;
  return Object.keys(metadata)
    .sort()
    .map((name) => ({ name, value: metadata[name] as string }));
}

/**
 * `ISTIO_META_POD_PORTS`: the application containers' ports in Go's JSON for ContainerPort (name, hostPort,
 * containerPort, protocol, hostIP), laid out as Istio's template writes them.
 */
function encodePodPorts(template: PodTemplate): string {
  const ports: string[] = [];
  for (const container of template.spec.containers) {
    if (container.name === proxyContainerName) continue;
    for (const port of container.ports ?? []) ports.push(encodePort(port));
  }
  return `[\n${ports.map((port, index) => `    ${index === 0 ? '' : ','}${port}`).join('\n')}${ports.length > 0 ? '\n' : ''}]`;
}

function encodePort(port: ContainerPort): string {
  return JSON.stringify({
    ...(port.name ? { name: port.name } : {}),
    ...(port.hostPort ? { hostPort: port.hostPort } : {}),
    containerPort: port.containerPort,
    ...(port.protocol ? { protocol: port.protocol } : {}),
    ...(port.hostIP ? { hostIP: port.hostIP } : {}),
  });
}

function resourcesOf(resources: ResourceRequirements): Record<string, unknown> {
  return {
    ...(resources.limits ? { limits: { ...resources.limits } } : {}),
    ...(resources.requests ? { requests: { ...resources.requests } } : {}),
  };
}
