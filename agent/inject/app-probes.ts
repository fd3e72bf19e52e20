import { InjectionError } from './errors.ts';
import type { Container, HttpGetAction, PodSpec, Probe } from './pod-template.ts';

/** The injected proxy's container name; its own probes are never taken over. */
export const proxyContainerName = 'istio-proxy';

/** The status-server paths of one container's probes and lifecycle handlers (Istio's `FormatProberURL`). */
export function appProbePath(container: string, endpoint: AppProbeEndpoint): string {
  const group = endpoint === 'prestopz' || endpoint === 'poststartz' ? 'app-lifecycle' : 'app-health';
  return `/${group}/${container}/${endpoint}`;
}

export type AppProbeEndpoint = 'readyz' | 'livez' | 'startupz' | 'prestopz' | 'poststartz';

const probeEndpoints = [
  ['readinessProbe', 'readyz'],
  ['livenessProbe', 'livez'],
  ['startupProbe', 'startupz'],
] as const;
const lifecycleEndpoints = [
  ['preStop', 'prestopz'],
  ['postStart', 'poststartz'],
] as const;

export interface AppProbeRewrite {
  readonly containers: Container[];
  readonly initContainers: Container[] | undefined;
  /** `ISTIO_KUBE_APP_PROBERS`: undefined when no probe was taken over. */
  readonly probers: string | undefined;
}

/**
 * Points the application's HTTP, TCP and gRPC probes and HTTP/TCP lifecycle handlers at the agent's status
 * port (`/app-health/<container>/livez|readyz|startupz`, `/app-lifecycle/<container>/prestopz|poststartz`),
 * because with mutual TLS the kubelet can no longer reach the application directly. The originals, named
 * ports resolved from the container's ports, go into `ISTIO_KUBE_APP_PROBERS` in the JSON shape the agent
 * reads. Probes on ports the sidecar does not capture (`isCaptured`) are left alone: the kubelet reaches them.
 */
export function rewriteAppProbes(
  spec: PodSpec,
  statusPort: number,
  isCaptured: (port: number) => boolean,
): AppProbeRewrite {
  const probers = new Map<string, Record<string, unknown>>();
  const rewrite = (list: 'containers' | 'initContainers') => (container: Container, index: number) => {
    if (container.name === proxyContainerName) return container;
    const where = `spec.${list}[${index}]`;
    let result: Container = container;
    for (const [field, endpoint] of probeEndpoints) {
      const probe = container[field];
      if (probe === undefined || probe === null) continue;
      const taken = takeOver(probe, container, `${where}.${field}`, statusPort, isCaptured);
      if (taken === undefined) continue;
      const path = appProbePath(container.name, endpoint);
      probers.set(path, taken.prober(true));
      result = { ...result, [field]: taken.rewritten(path) };
    }
    const lifecycle = container.lifecycle;
    if (lifecycle !== undefined && lifecycle !== null) {
      let rewrittenLifecycle = lifecycle;
      for (const [field, endpoint] of lifecycleEndpoints) {
        const handler = lifecycle[field];
        if (handler === undefined || handler === null) continue;
        const taken = takeOver(handler, container, `${where}.lifecycle.${field}`, statusPort, isCaptured);
        if (taken === undefined) continue;
        const path = appProbePath(container.name, endpoint);
        probers.set(path, taken.prober(false));
        rewrittenLifecycle = { ...rewrittenLifecycle, [field]: taken.rewritten(path) };
      }
      if (rewrittenLifecycle !== lifecycle) result = { ...result, lifecycle: rewrittenLifecycle };
    }
    return result;
  };
  // Istio lists init containers first (native sidecars may carry probes too).
  const initContainers = spec.initContainers?.map(rewrite('initContainers'));
  const containers = spec.containers.map(rewrite('containers'));
  return {
    containers,
    initContainers,
    probers: probers.size === 0 ? undefined : encodeProbers(probers),
  };
}

interface TakenOver {
  /** The original action for the agent, in Istio's `Prober` JSON form (with the probe's timeout or not). */
  prober(withTimeout: boolean): Record<string, unknown>;
  /** The probe as the kubelet will run it: an HTTP GET of `path` on the status port. */
  rewritten(path: string): Probe;
}

function takeOver(
  probe: Probe,
  container: Container,
  where: string,
  statusPort: number,
  isCaptured: (port: number) => boolean,
): TakenOver | undefined {
  const timeout = (withTimeout: boolean) =>
    withTimeout && typeof probe.timeoutSeconds === 'number' && probe.timeoutSeconds > 0
      ? { timeoutSeconds: probe.timeoutSeconds }
      : {};
  const action = probe.httpGet ?? probe.tcpSocket ?? probe.grpc;
  if (action === undefined || action === null) return undefined; // exec probes run inside the container
  const actionName = probe.httpGet ? 'httpGet' : probe.tcpSocket ? 'tcpSocket' : 'grpc';
  const port = resolvePort(action.port, container, `${where}.${actionName}.port`);
  // Already aimed at the agent (or at a port the sidecar leaves alone): nothing to take over.
  if (port === statusPort || !isCaptured(port)) return undefined;

  if (probe.httpGet) {
    const original = probe.httpGet;
    return {
      prober: (withTimeout) => ({ httpGet: encodeHttpGet(original, port), ...timeout(withTimeout) }),
      rewritten: (path) =>
        replaceKey(probe, 'httpGet', {
          ...original,
          path,
          port: statusPort,
          // Kubelet → HTTP → agent → HTTPS → application.
          ...(original.scheme === 'HTTPS' ? { scheme: 'HTTP' } : {}),
        }),
    };
  }
  if (probe.tcpSocket) {
    const original = probe.tcpSocket;
    return {
      prober: (withTimeout) => ({
        tcpSocket: { port, ...(original.host ? { host: original.host } : {}) },
        ...timeout(withTimeout),
      }),
      rewritten: (path) => replaceKey(probe, 'tcpSocket', undefined, { path, port: statusPort }),
    };
  }
  const original = probe.grpc as NonNullable<Probe['grpc']>;
  return {
    prober: (withTimeout) => ({
      grpc: { port, ...(original.service ? { service: original.service } : {}) },
      ...timeout(withTimeout),
    }),
    rewritten: (path) => replaceKey(probe, 'grpc', undefined, { path, port: statusPort }),
  };
}

/** A numeric port, or a named one looked up in the container's own ports as the kubelet does. */
function resolvePort(port: number | string, container: Container, where: string): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const match = (container.ports ?? []).find((candidate) => candidate.name === port);
  if (match === undefined) {
    const names = (container.ports ?? []).flatMap((candidate) => (candidate.name ? [candidate.name] : []));
    throw new InjectionError(
      where,
      `named port ${JSON.stringify(port)} is not declared in container ${JSON.stringify(container.name)}'s ports (${names.length === 0 ? 'it has no named ports' : `its names: ${names.join(', ')}`})`,
    );
  }
  return match.containerPort;
}

/** Go's JSON for Kubernetes' HTTPGetAction: path, port, host, scheme, httpHeaders, empty ones left out. */
function encodeHttpGet(action: HttpGetAction, port: number): Record<string, unknown> {
  return {
    ...(action.path ? { path: action.path } : {}),
    port,
    ...(action.host ? { host: action.host } : {}),
    ...(action.scheme ? { scheme: action.scheme } : {}),
    ...(action.httpHeaders && action.httpHeaders.length > 0 ? { httpHeaders: action.httpHeaders } : {}),
  };
}

/**
 * The probe with `key` replaced in place (so that its position in the manifest stays), or removed and an
 * `httpGet` put where it was.
 */
function replaceKey(probe: Probe, key: string, value: unknown, httpGet?: Record<string, unknown>): Probe {
  const result: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(probe)) {
    if (name !== key) {
      if (name !== 'httpGet' || httpGet === undefined) result[name] = entry;
    } else if (httpGet !== undefined) {
      result.httpGet = httpGet;
    } else {
      result[name] = value;
    }
  }
  return result as Probe;
}

/** Go marshals maps with sorted keys; the agent does not care, but a stable value keeps re-runs identical. */
function encodeProbers(probers: ReadonlyMap<string, Record<string, unknown>>): string {
  const sorted: Record<string, unknown> = {};
  for (const path of [...probers.keys()].sort()) sorted[path] = probers.get(path);
  return JSON.stringify(sorted);
}
