import type { AgentConfig } from '../agent/config/agent-config.ts';
import type { JsonObject, JsonValue, Locality, Node } from './envoy-types.ts';

/** The label Istio reads a workload's locality from: `region.zone.subzone` (Kubernetes forbids `/` in values). */
export const localityLabel = 'istio-locality';

/** Deployments add this label to every pod; Istio keeps it out of the node's `LABELS`. */
const podTemplateHashLabel = 'pod-template-hash';

/** Envoy's node: identity, service cluster, locality and Istio's node metadata. */
export function buildNode(config: AgentConfig): Node {
  const labels = nodeLabels(config);
  return {
    id: nodeId(config),
    cluster: serviceCluster(config, labels),
    locality: locality(labels[localityLabel]),
    metadata: nodeMetadata(config, labels),
  };
}

/** `sidecar~<first IP>~<pod>.<namespace>~<domain>`, as Istio's `ServiceNode()`. */
export function nodeId(config: AgentConfig): string {
  const { pod } = config;
  return [config.nodeType, pod.instanceIps[0] ?? '', `${pod.name}.${pod.namespace}`, config.domain].join('~');
}

/**
 * The workload's labels as Istio reports them: the `LABELS` of the `ISTIO_METAJSON_*` metadata, then the pod's labels file (without
 * `pod-template-hash`), with the locality label in its `/` form.
 */
function nodeLabels(config: AgentConfig): Record<string, string> {
  const labels: Record<string, string> = {};
  Object.assign(labels, stringMap(config.rawNodeMetadata.LABELS));
  for (const [key, value] of Object.entries(config.pod.labels)) {
    if (key !== podTemplateHashLabel) labels[key] = value;
  }
  const localityValue = labels[localityLabel];
  if (localityValue !== undefined && localityValue !== '') {
    labels[localityLabel] = localityValue.replaceAll('.', '/');
  }
  return labels;
}

function locality(label: string | undefined): Locality {
  if (label === undefined || label === '') return {};
  const [region, zone, ...subZone] = label.split('/');
  return {
    ...(region ? { region } : {}),
    ...(zone ? { zone } : {}),
    ...(subZone.length > 0 && subZone.join('/') !== '' ? { sub_zone: subZone.join('/') } : {}),
  };
}

/**
 * Istio's `serviceClusterOrDefault`: an explicit service cluster wins; the default `istio-proxy` becomes
 * `<app label>.<namespace>`, else `<WORKLOAD_NAME>.<namespace>`, else `istio-proxy.<namespace>`. A
 * `tracingServiceName` in ProxyConfig (the other member of Istio's oneof) picks the canonical service instead.
 */
export function serviceCluster(config: AgentConfig, labels: Readonly<Record<string, string>>): string {
  const namespace = config.pod.namespace;
  const workloadName = stringValue(config.rawNodeMetadata.WORKLOAD_NAME);
  const orDefault = (name: string) => {
    if (name !== '' && name !== 'istio-proxy') return name;
    if (labels.app !== undefined) return `${labels.app}.${namespace}`;
    if (workloadName) return `${workloadName}.${namespace}`;
    return namespace ? `istio-proxy.${namespace}` : 'istio-proxy';
  };
  const tracingServiceName = config.proxyConfig.tracingServiceName;
  if (config.serviceCluster === 'istio-proxy' && typeof tracingServiceName === 'string') {
    const canonicalService =
      labels['service.istio.io/canonical-name'] ??
      labels['app.kubernetes.io/name'] ??
      labels.app ??
      (workloadName || 'istio-proxy');
    if (tracingServiceName === 'CANONICAL_NAME_ONLY') return orDefault(canonicalService);
    if (tracingServiceName === 'CANONICAL_NAME_AND_NAMESPACE') {
      return namespace ? `${canonicalService}.${namespace}` : orDefault(canonicalService);
    }
    return orDefault('istio-proxy');
  }
  return orDefault(config.serviceCluster);
}

function stringMap(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, String(entry)]));
}

function stringValue(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Istio's node metadata: every `ISTIO_META_*` / `ISTIO_METAJSON_*` / `proxyMetadata` entry as given, then
 * the keys Istio types, in Istio's encodings (lists comma-joined, booleans as "true"/"false", `POD_PORTS` a
 * string holding JSON, ports as numbers, `PROXY_CONFIG` camelCase). Keys are sorted, as Go marshals a map.
 */
export function nodeMetadata(config: AgentConfig, labels: Readonly<Record<string, string>>): JsonObject {
  const metadata: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(config.rawNodeMetadata)) {
    if (value !== undefined) metadata[key] = toJsonValue(value);
  }
  // Typed keys replace what the environment said; an empty value leaves it (Go's `omitempty`).
  const set = (key: string, value: JsonValue | undefined) => {
    if (value !== undefined && value !== '') metadata[key] = value;
  };
  const { pod } = config;
  set('ISTIO_VERSION', config.istioVersion);
  set('INSTANCE_IPS', pod.instanceIps.join(','));
  set('NAME', pod.name);
  set('NAMESPACE', pod.namespace);
  set('SERVICE_ACCOUNT', pod.serviceAccount);
  set('LABELS', Object.keys(labels).length > 0 ? sortKeys(labels) : undefined);
  // The annotations file adds to (and wins over) the ANNOTATIONS given through ISTIO_METAJSON_*.
  const annotations = {
    ...stringMap(config.rawNodeMetadata.ANNOTATIONS),
    ...pod.annotations,
  };
  set('ANNOTATIONS', Object.keys(annotations).length > 0 ? sortKeys(annotations) : undefined);
  set('PROXY_CONFIG', toJsonValue(config.proxyConfig));
  set('ENVOY_STATUS_PORT', config.ports.envoyStatus);
  set('ENVOY_PROMETHEUS_PORT', config.ports.envoyPrometheus);
  set('STS_PORT', config.ports.sts !== 0 ? String(config.ports.sts) : undefined);
  set('EXIT_ON_ZERO_ACTIVE_CONNECTIONS', config.drain.exitOnZeroActiveConnections ? 'true' : undefined);
  set('METADATA_DISCOVERY', stringBool(config.rawNodeMetadata.METADATA_DISCOVERY) ?? 'false');
  set('OUTLIER_LOG_PATH', config.outlierLogPath);
  set('MESH_ID', stringValue(config.rawNodeMetadata.MESH_ID) ?? config.proxyConfig.meshId);
  set(
    'INTERCEPTION_MODE',
    stringValue(config.rawNodeMetadata.INTERCEPTION_MODE) ?? config.proxyConfig.interceptionMode,
  );
  set('POD_PORTS', podPorts(config.rawNodeMetadata.POD_PORTS));
  return sortKeys(metadata);
}

/** Istio's `StringBool`: parsed from any Go boolean spelling, written back as "true"/"false". */
function stringBool(value: unknown): 'true' | 'false' | undefined {
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value !== 'string') return undefined;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return 'true';
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return 'false';
  return undefined;
}

/** Istio's `PodPortList`: a string holding compact JSON `[{"name","containerPort","protocol"}]`. */
function podPorts(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  let ports: unknown;
  try {
    ports = JSON.parse(value);
  } catch {
    return value;
  }
  if (!Array.isArray(ports)) return value;
  return JSON.stringify(
    ports.map((port: Record<string, unknown>) => ({
      ...(typeof port?.name === 'string' && port.name !== '' ? { name: port.name } : {}),
      containerPort: typeof port?.containerPort === 'number' ? port.containerPort : 0,
      protocol: typeof port?.protocol === 'string' ? port.protocol : '',
    })),
  );
}

function sortKeys<T>(object: Readonly<Record<string, T>>): Record<string, T> {
  const sorted: Record<string, T> = {};
  for (const key of Object.keys(object).sort()) sorted[key] = object[key] as T;
  return sorted;
}

/** A plain JSON copy (drops functions/undefined, as JSON marshalling does). */
function toJsonValue(value: unknown): JsonValue {
  return JSON.parse(JSON.stringify(value ?? null)) as JsonValue;
}
