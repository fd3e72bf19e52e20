import { joinField as at, describeValue, InjectionError } from './errors.ts';

/**
 * The parts of Kubernetes' PodTemplateSpec that injection reads or changes, as plain JSON values. Every
 * other field is kept as it is (the index signatures), so that injection never drops what it does not know.
 */
export interface PodTemplate {
  metadata?: PodMetadata;
  spec: PodSpec;
  [field: string]: unknown;
}

export interface PodMetadata {
  name?: string;
  namespace?: string;
  generateName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  [field: string]: unknown;
}

export interface OwnerReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  controller?: boolean;
  [field: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Record<string, unknown>[];
  hostNetwork?: boolean;
  serviceAccountName?: string;
  [field: string]: unknown;
}

export interface Container {
  name: string;
  ports?: ContainerPort[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: Lifecycle;
  [field: string]: unknown;
}

export interface ContainerPort {
  name?: string;
  hostPort?: number;
  containerPort: number;
  protocol?: string;
  hostIP?: string;
  [field: string]: unknown;
}

/** A probe or lifecycle handler: at most one action, plus the probe's timing fields. */
export interface Probe {
  httpGet?: HttpGetAction;
  tcpSocket?: TcpSocketAction;
  grpc?: GrpcAction;
  timeoutSeconds?: number;
  [field: string]: unknown;
}

export interface Lifecycle {
  postStart?: Probe;
  preStop?: Probe;
  [field: string]: unknown;
}

export interface HttpGetAction {
  path?: string;
  port: number | string;
  host?: string;
  scheme?: string;
  httpHeaders?: { name: string; value: string }[];
  [field: string]: unknown;
}

export interface TcpSocketAction {
  port: number | string;
  host?: string;
  [field: string]: unknown;
}

export interface GrpcAction {
  port: number;
  service?: string;
  [field: string]: unknown;
}

export const probeFields = ['readinessProbe', 'livenessProbe', 'startupProbe'] as const;
export const lifecycleHandlerFields = ['postStart', 'preStop'] as const;

/**
 * Checks that `value` is a pod template whose fields injection relies on
 * have the types Kubernetes requires, and returns a deep copy to work on. Throws an {@link InjectionError}
 * naming the offending field.
 */
export function readPodTemplate(value: unknown): PodTemplate {
  const path = '';
  const template = requireMapping(value, path);
  if (template.metadata !== undefined && template.metadata !== null) {
    readMetadata(template.metadata, at(path, 'metadata'));
  }
  const spec = requireMapping(template.spec, at(path, 'spec'));
  const containers = requireList(spec.containers, at(path, 'spec.containers'));
  if (containers.length === 0) {
    throw new InjectionError(at(path, 'spec.containers'), 'expected at least one container');
  }
  containers.forEach((container, index) => {
    readContainer(container, at(path, `spec.containers[${index}]`));
  });
  if (spec.initContainers !== undefined && spec.initContainers !== null) {
    requireList(spec.initContainers, at(path, 'spec.initContainers')).forEach((container, index) => {
      readContainer(container, at(path, `spec.initContainers[${index}]`));
    });
  }
  if (spec.volumes !== undefined && spec.volumes !== null) {
    requireList(spec.volumes, at(path, 'spec.volumes')).forEach((volume, index) => {
      const where = at(path, `spec.volumes[${index}]`);
      requireString(requireMapping(volume, where).name, `${where}.name`);
    });
  }
  if (spec.hostNetwork !== undefined && spec.hostNetwork !== null && typeof spec.hostNetwork !== 'boolean') {
    throw new InjectionError(
      at(path, 'spec.hostNetwork'),
      `expected true or false, found ${describeValue(spec.hostNetwork)}`,
    );
  }
  if (spec.serviceAccountName !== undefined && spec.serviceAccountName !== null) {
    requireString(spec.serviceAccountName, at(path, 'spec.serviceAccountName'));
  }
  const copy = structuredClone(template) as PodTemplate;
  // Null lists and maps mean "absent" to Kubernetes; normalise them so the rest of injection has one case.
  if (copy.metadata === null) delete copy.metadata;
  for (const key of ['labels', 'annotations'] as const) {
    if (copy.metadata?.[key] === null) delete copy.metadata[key];
  }
  for (const key of ['initContainers', 'volumes'] as const) {
    if (copy.spec[key] === null) delete copy.spec[key];
  }
  return copy;
}

function readMetadata(value: unknown, path: string): void {
  const metadata = requireMapping(value, path);
  for (const key of ['name', 'namespace', 'generateName']) {
    if (metadata[key] !== undefined && metadata[key] !== null) requireString(metadata[key], at(path, key));
  }
  for (const key of ['labels', 'annotations']) {
    const map = metadata[key];
    if (map === undefined || map === null) continue;
    for (const [name, entry] of Object.entries(requireMapping(map, at(path, key)))) {
      if (typeof entry !== 'string') {
        throw new InjectionError(
          at(path, `${key}["${name}"]`),
          `expected a string, found ${describeValue(entry)} (quote the value)`,
        );
      }
    }
  }
  if (metadata.ownerReferences !== undefined && metadata.ownerReferences !== null) {
    requireList(metadata.ownerReferences, at(path, 'ownerReferences')).forEach((reference, index) => {
      requireMapping(reference, at(path, `ownerReferences[${index}]`));
    });
  }
}

function readContainer(value: unknown, path: string): void {
  const container = requireMapping(value, path);
  const name = requireString(container.name, at(path, 'name'));
  if (name === '') throw new InjectionError(at(path, 'name'), 'expected a container name, found ""');
  if (container.ports !== undefined && container.ports !== null) {
    requireList(container.ports, at(path, 'ports')).forEach((port, index) => {
      const where = at(path, `ports[${index}]`);
      const entry = requireMapping(port, where);
      requirePortNumber(entry.containerPort, `${where}.containerPort`);
      if (entry.name !== undefined && entry.name !== null) requireString(entry.name, `${where}.name`);
    });
  }
  for (const field of probeFields) {
    if (container[field] !== undefined && container[field] !== null) {
      readHandler(container[field], at(path, field));
    }
  }
  if (container.lifecycle !== undefined && container.lifecycle !== null) {
    const lifecycle = requireMapping(container.lifecycle, at(path, 'lifecycle'));
    for (const field of lifecycleHandlerFields) {
      if (lifecycle[field] !== undefined && lifecycle[field] !== null) {
        readHandler(lifecycle[field], at(path, `lifecycle.${field}`));
      }
    }
  }
}

function readHandler(value: unknown, path: string): void {
  const handler = requireMapping(value, path);
  for (const action of ['httpGet', 'tcpSocket'] as const) {
    if (handler[action] === undefined || handler[action] === null) continue;
    const entry = requireMapping(handler[action], at(path, action));
    const port = entry.port;
    if (typeof port === 'string' && port !== '' && !/^\d+$/.test(port)) continue; // a named port
    requirePortNumber(typeof port === 'string' ? Number(port) : port, at(path, `${action}.port`));
  }
  if (handler.grpc !== undefined && handler.grpc !== null) {
    requirePortNumber(requireMapping(handler.grpc, at(path, 'grpc')).port, at(path, 'grpc.port'));
  }
  if (handler.timeoutSeconds !== undefined && handler.timeoutSeconds !== null) {
    const timeout = handler.timeoutSeconds;
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0) {
      throw new InjectionError(
        at(path, 'timeoutSeconds'),
        `expected a whole number of seconds, found ${describeValue(timeout)}`,
      );
    }
  }
}

export function requireMapping(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InjectionError(path, `expected a mapping, found ${describeValue(value)}`);
  }
  return value as Record<string, unknown>;
}

function requireList(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new InjectionError(path, `expected a list, found ${describeValue(value)}`);
  return value;
}

function requireString(value: unknown, path: string): string {
  if (typeof value !== 'string') {
    throw new InjectionError(path, `expected a string, found ${describeValue(value)}`);
  }
  return value;
}

function requirePortNumber(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new InjectionError(path, `expected a port number (1 to 65535), found ${describeValue(value)}`);
  }
  return value;
}
