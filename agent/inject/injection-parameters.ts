import { ConfigError } from '../config/errors.ts';
import { parseAgentOutputLevels, parseProxyLogLevels } from '../config/log-levels.ts';
import {
  defaultProxyConfig,
  mergeProxyConfigLayers,
  type ProxyConfig,
  type ProxyConfigLayer,
  parseProxyConfigLayer,
} from '../config/proxy-config.ts';
import { describeValue, InjectionError } from './errors.ts';
import type { InjectionSettings } from './injection-settings.ts';
import type { PodTemplate } from './pod-template.ts';

export type InterceptionMode = 'REDIRECT' | 'TPROXY' | 'NONE';

/** The init container's traffic capture, from the `traffic.sidecar.istio.io/*` annotations. */
export interface TrafficCapture {
  readonly includeOutboundIPRanges: string;
  readonly excludeOutboundIPRanges: string;
  readonly includeInboundPorts: string;
  readonly excludeInboundPorts: string;
  /** Empty when not set: the flag is then left out. */
  readonly includeOutboundPorts: string;
  readonly excludeOutboundPorts: string;
  readonly kubevirtInterfaces: string;
  readonly excludeInterfaces: string;
}

export interface ReadinessTimings {
  readonly initialDelaySeconds: number;
  readonly periodSeconds: number;
  readonly failureThreshold: number;
}

export type ResourceList = Readonly<Record<string, string>>;
export interface ResourceRequirements {
  readonly requests?: ResourceList;
  readonly limits?: ResourceList;
}

/** Everything one pod's injection is rendered from: the settings, overridden by the pod's own annotations. */
export interface InjectionParameters {
  readonly image: string;
  readonly interceptionMode: InterceptionMode;
  /** Istio's defaults, then the mesh config's `defaultConfig`, then the `proxy.istio.io/config` annotation. */
  readonly proxyConfig: ProxyConfig;
  /** Only the fields the mesh config and annotation set: the `PROXY_CONFIG` variable. */
  readonly proxyConfigOverrides: Readonly<Record<string, unknown>>;
  /** The agent's status port, where application probes go; 0 turns the proxy's probes off. */
  readonly statusPort: number;
  readonly proxyLogLevel: string;
  readonly proxyComponentLogLevel: string;
  readonly agentLogLevel: string;
  readonly traffic: TrafficCapture;
  /** Envoy's outbound capture port (the mesh config's `proxyListenPort`). */
  readonly proxyListenPort: number;
  readonly rewriteAppProbes: boolean;
  readonly prometheusMerge: boolean;
  readonly readiness: ReadinessTimings;
  readonly resources: ResourceRequirements;
  readonly holdApplicationUntilProxyStarts: boolean;
}

/** Istio's chart values for the proxy (`values.global.proxy`). */
const defaultResources: ResourceRequirements = Object.freeze({
  requests: Object.freeze({ cpu: '100m', memory: '128Mi' }),
  limits: Object.freeze({ cpu: '2', memory: '1Gi' }),
});
const defaultReadiness: ReadinessTimings = Object.freeze({
  initialDelaySeconds: 0,
  periodSeconds: 15,
  failureThreshold: 4,
});

/**
 * Resolves one pod's injection parameters. Every annotation value is checked, and a bad one is an
 * {@link InjectionError} naming the annotation and what was expected.
 */
export function resolveInjectionParameters(
  template: PodTemplate,
  settings: InjectionSettings,
): InjectionParameters {
  const annotations = template.metadata?.annotations ?? {};
  const annotation = (name: string): string | undefined => annotations[name];
  const where = (name: string) => `metadata.annotations["${name}"]`;

  const layers: ProxyConfigLayer[] = [settings.mesh.defaultConfig];
  const proxyConfigAnnotation = annotation('proxy.istio.io/config');
  if (proxyConfigAnnotation !== undefined) {
    layers.push(parseAnnotationLayer(where('proxy.istio.io/config'), proxyConfigAnnotation));
  }
  const proxyConfig = mergeProxyConfigLayers(defaultProxyConfig, layers);

  const proxyImage = annotation('sidecar.istio.io/proxyImage');
  const interceptionMode =
    annotation('sidecar.istio.io/interceptionMode') ?? proxyConfig.interceptionMode ?? 'REDIRECT';
  if (interceptionMode !== 'REDIRECT' && interceptionMode !== 'TPROXY' && interceptionMode !== 'NONE') {
    throw new InjectionError(
      where('sidecar.istio.io/interceptionMode'),
      `${describeValue(interceptionMode)} is not REDIRECT, TPROXY or NONE`,
    );
  }
  const statusPortAnnotation = annotation('status.sidecar.istio.io/port');
  const statusPort =
    statusPortAnnotation === undefined
      ? proxyConfig.statusPort
      : integer(where('status.sidecar.istio.io/port'), statusPortAnnotation, 0, 65535);

  return Object.freeze({
    image: proxyImage?.includes('/') ? proxyImage : settings.image,
    interceptionMode,
    proxyConfig,
    proxyConfigOverrides: Object.freeze(overridesOf(layers)),
    statusPort,
    ...logLevels(annotations),
    traffic: Object.freeze({
      includeOutboundIPRanges: annotation('traffic.sidecar.istio.io/includeOutboundIPRanges') ?? '*',
      excludeOutboundIPRanges: annotation('traffic.sidecar.istio.io/excludeOutboundIPRanges') ?? '',
      includeInboundPorts: annotation('traffic.sidecar.istio.io/includeInboundPorts') ?? '*',
      excludeInboundPorts: annotation('traffic.sidecar.istio.io/excludeInboundPorts') ?? '',
      includeOutboundPorts: annotation('traffic.sidecar.istio.io/includeOutboundPorts') ?? '',
      excludeOutboundPorts: annotation('traffic.sidecar.istio.io/excludeOutboundPorts') ?? '',
      kubevirtInterfaces: annotation('traffic.sidecar.istio.io/kubevirtInterfaces') ?? '',
      excludeInterfaces: annotation('traffic.sidecar.istio.io/excludeInterfaces') ?? '',
    }),
    proxyListenPort: settings.mesh.proxyListenPort,
    rewriteAppProbes: boolean(
      where('sidecar.istio.io/rewriteAppHTTPProbers'),
      annotation('sidecar.istio.io/rewriteAppHTTPProbers'),
      true,
    ),
    prometheusMerge: boolean(
      where('prometheus.istio.io/merge-metrics'),
      annotation('prometheus.istio.io/merge-metrics'),
      settings.mesh.enablePrometheusMerge,
    ),
    readiness: Object.freeze({
      initialDelaySeconds: timing(
        annotations,
        'initialDelaySeconds',
        defaultReadiness.initialDelaySeconds,
        0,
      ),
      periodSeconds: timing(annotations, 'periodSeconds', defaultReadiness.periodSeconds, 1),
      failureThreshold: timing(annotations, 'failureThreshold', defaultReadiness.failureThreshold, 1),
    }),
    resources: resources(annotations),
    holdApplicationUntilProxyStarts: proxyConfig.holdApplicationUntilProxyStarts === true,
  });
}

/**
 * Whether the init container redirects inbound traffic on `port` to Envoy, from the include/exclude
 * annotations (Istio's rule for which application probes the agent takes over).
 */
export function isInboundPortCaptured(traffic: TrafficCapture, port: number): boolean {
  const included = traffic.includeInboundPorts.trim();
  if (included !== '' && included !== '*') return splitPorts(included).includes(String(port));
  return !splitPorts(traffic.excludeInboundPorts).includes(String(port));
}

/**
 * The init container's `-d` list: Envoy's own ports, then the excluded ports with the status port added
 * unless it is already there or 0 (Istio's `excludeInboundPort`).
 */
export function excludedInboundPorts(traffic: TrafficCapture, statusPort: number): string {
  const excluded = splitPorts(traffic.excludeInboundPorts);
  if (statusPort !== 0 && !excluded.includes(String(statusPort))) excluded.push(String(statusPort));
  return ['15090', '15021', ...excluded].join(',');
}

function splitPorts(list: string): string[] {
  return list
    .split(',')
    .map((port) => port.trim())
    .filter((port) => port !== '');
}

function parseAnnotationLayer(where: string, text: string): ProxyConfigLayer {
  try {
    return parseProxyConfigLayer(where, text);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new InjectionError(error.source, error.message.slice(error.source.length + 2));
    }
    throw error;
  }
}

function overridesOf(layers: readonly ProxyConfigLayer[]): Record<string, unknown> {
  let merged: Record<string, unknown> = {};
  for (const layer of layers) {
    const metadata = { ...((merged.proxyMetadata as object | undefined) ?? {}) };
    merged = { ...merged, ...layer.fields };
    if (layer.fields.proxyMetadata !== undefined || Object.keys(metadata).length > 0) {
      merged.proxyMetadata = { ...metadata, ...((layer.fields.proxyMetadata as object | undefined) ?? {}) };
    }
  }
  return merged;
}

function integer(where: string, text: string, min: number, max: number): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new InjectionError(where, `${describeValue(text)} is not a whole number from ${min} to ${max}`);
  }
  return value;
}

function timing(
  annotations: Readonly<Record<string, string>>,
  name: keyof ReadinessTimings,
  fallback: number,
  min: number,
): number {
  const key = `readiness.status.sidecar.istio.io/${name}`;
  const text = annotations[key];
  return text === undefined ? fallback : integer(`metadata.annotations["${key}"]`, text, min, 2_147_483_647);
}

function boolean(where: string, text: string | undefined, fallback: boolean): boolean {
  if (text === undefined) return fallback;
  // Go's strconv.ParseBool spellings, as Istio reads these annotations.
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(text)) return false;
  throw new InjectionError(where, `${describeValue(text)} is not true or false`);
}

/**
 * The log level annotations, checked with the agent's own parsers: a level the agent would refuse at start-up
 * is refused here, before the pod exists.
 */
function logLevels(annotations: Readonly<Record<string, string>>) {
  const read = (name: string, fallback: string) => {
    const key = `sidecar.istio.io/${name}`;
    return { source: `metadata.annotations["${key}"]`, value: annotations[key] ?? fallback };
  };
  const proxy = read('logLevel', 'warning');
  const component = read('componentLogLevel', 'misc:error');
  const agent = read('agentLogLevel', 'default:info');
  try {
    parseProxyLogLevels(proxy, component);
    parseAgentOutputLevels(agent.source, agent.value);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new InjectionError(error.source, error.message.slice(error.source.length + 2));
    }
    throw error;
  }
  return { proxyLogLevel: proxy.value, proxyComponentLogLevel: component.value, agentLogLevel: agent.value };
}

const quantityPattern = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** The proxy's resources: Istio's defaults, or exactly what the `sidecar.istio.io/proxy*` annotations ask. */
function resources(annotations: Readonly<Record<string, string>>): ResourceRequirements {
  const read = (name: string): string | undefined => {
    const key = `sidecar.istio.io/${name}`;
    const text = annotations[key];
    if (text !== undefined && !quantityPattern.test(text.trim())) {
      throw new InjectionError(
        `metadata.annotations["${key}"]`,
        `${describeValue(text)} is not a Kubernetes quantity (such as 100m or 1Gi)`,
      );
    }
    return text?.trim();
  };
  const requestCpu = read('proxyCPU');
  const requestMemory = read('proxyMemory');
  const limitCpu = read('proxyCPULimit');
  const limitMemory = read('proxyMemoryLimit');
  if ([requestCpu, requestMemory, limitCpu, limitMemory].every((value) => value === undefined)) {
    return defaultResources;
  }
  const list = (cpu: string | undefined, memory: string | undefined): ResourceList | undefined =>
    cpu === undefined && memory === undefined
      ? undefined
      : Object.freeze({
          ...(cpu !== undefined ? { cpu } : {}),
          ...(memory !== undefined ? { memory } : {}),
        });
  const requests = list(requestCpu, requestMemory);
  const limits = list(limitCpu, limitMemory);
  return Object.freeze({
    ...(requests !== undefined ? { requests } : {}),
    ...(limits !== undefined ? { limits } : {}),
  });
}
