import { describeValue, InjectionError } from './errors.ts';

/** Where a pod template sits in a workload kind, and the API version Kubernetes serves that kind at. */
interface WorkloadKind {
  readonly apiVersion: string;
  /** From the object to its pod template; empty for a Pod, which is its own template. */
  readonly templatePath: readonly string[];
}

/**
 * The kinds that carry a pod template, as `istioctl kube-inject` handles them. CronJob's template is inside
 * its job template. Other kinds pass through unchanged.
 */
export const workloadKinds: Readonly<Record<string, WorkloadKind>> = Object.freeze({
  Deployment: { apiVersion: 'apps/v1', templatePath: ['spec', 'template'] },
  StatefulSet: { apiVersion: 'apps/v1', templatePath: ['spec', 'template'] },
  DaemonSet: { apiVersion: 'apps/v1', templatePath: ['spec', 'template'] },
  ReplicaSet: { apiVersion: 'apps/v1', templatePath: ['spec', 'template'] },
  ReplicationController: { apiVersion: 'v1', templatePath: ['spec', 'template'] },
  Job: { apiVersion: 'batch/v1', templatePath: ['spec', 'template'] },
  CronJob: { apiVersion: 'batch/v1', templatePath: ['spec', 'jobTemplate', 'spec', 'template'] },
  Pod: { apiVersion: 'v1', templatePath: [] },
});

/** The workload a pod belongs to, as Istio names it in `ISTIO_META_WORKLOAD_NAME` and `ISTIO_META_OWNER`. */
export interface WorkloadIdentity {
  readonly kind: string;
  readonly apiVersion: string;
  readonly name: string;
  /** Empty when the manifest does not say (kubectl then uses the current namespace). */
  readonly namespace: string;
}

export type ObjectPath = readonly (string | number)[];

export interface PodTemplateLocation {
  /** From the document's root to the pod template (to the object itself for a Pod). */
  readonly path: ObjectPath;
  readonly workload: WorkloadIdentity;
  /** For messages: `Deployment "default/nginx"`. */
  readonly description: string;
}

/**
 * Finds the pod templates of one manifest object: one for a workload kind, one per workload item of a List,
 * none for other kinds. Throws an {@link InjectionError} for a workload kind at an API version Kubernetes
 * does not serve it at, or for an object that is not a mapping.
 */
export function locatePodTemplates(object: unknown, basePath: ObjectPath = []): PodTemplateLocation[] {
  if (object === null || object === undefined) return [];
  if (typeof object !== 'object' || Array.isArray(object)) {
    throw new InjectionError(
      formatPath(basePath),
      `expected a Kubernetes object (a mapping with apiVersion and kind), found ${describeValue(object)}`,
    );
  }
  const record = object as Record<string, unknown>;
  const kind = typeof record.kind === 'string' ? record.kind : undefined;
  if (kind === 'List') {
    checkApiVersion(record, 'List', 'v1', basePath);
    if (record.items === undefined || record.items === null) return [];
    if (!Array.isArray(record.items)) {
      throw new InjectionError(formatPath([...basePath, 'items']), 'expected a list of objects');
    }
    return record.items.flatMap((item, index) => locatePodTemplates(item, [...basePath, 'items', index]));
  }
  const workloadKind = kind === undefined ? undefined : workloadKinds[kind];
  if (kind === undefined || workloadKind === undefined) return [];
  const apiVersion = checkApiVersion(record, kind, workloadKind.apiVersion, basePath);

  const metadata = record.metadata;
  const name = readMetadataString(metadata, 'name');
  const namespace = readMetadataString(metadata, 'namespace');
  const workload = kind === 'Pod' ? podOwner(record, name, namespace) : { kind, apiVersion, name, namespace };
  return [
    {
      path: [...basePath, ...workloadKind.templatePath],
      workload,
      description: describeObject(record) ?? kind,
    },
  ];
}

/** `Deployment "default/nginx"` for messages; undefined when the value has no kind. */
export function describeObject(object: unknown): string | undefined {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) return undefined;
  const record = object as Record<string, unknown>;
  if (typeof record.kind !== 'string') return undefined;
  const name = readMetadataString(record.metadata, 'name');
  const namespace = readMetadataString(record.metadata, 'namespace');
  const displayName = name === '' ? '(unnamed)' : namespace === '' ? name : `${namespace}/${name}`;
  return `${record.kind} ${JSON.stringify(displayName)}`;
}

/** `spec.template.spec.containers[0]`, the way error messages name a field. */
export function formatPath(path: ObjectPath): string {
  let text = '';
  for (const segment of path) {
    text += typeof segment === 'number' ? `[${segment}]` : text === '' ? segment : `.${segment}`;
  }
  return text;
}

function checkApiVersion(
  record: Record<string, unknown>,
  kind: string,
  expected: string,
  basePath: ObjectPath,
): string {
  const apiVersion = record.apiVersion;
  const where = formatPath([...basePath, 'apiVersion']);
  if (apiVersion === undefined || apiVersion === null || apiVersion === '') {
    throw new InjectionError(where, `missing for kind ${kind} (expected ${expected})`);
  }
  if (apiVersion !== expected) {
    throw new InjectionError(
      where,
      `${describeValue(apiVersion)} is not supported for kind ${kind} (expected ${expected})`,
    );
  }
  return expected;
}

function readMetadataString(metadata: unknown, key: string): string {
  if (typeof metadata !== 'object' || metadata === null) return '';
  const value = (metadata as Record<string, unknown>)[key];
  return typeof value === 'string' ? value : '';
}

/**
 * A pod created by a controller is named after it, as Istio's webhook does: a generated name plus a
 * controller reference points to the controller, and a ReplicaSet with the pod's template hash to its
 * Deployment.
 */
function podOwner(pod: Record<string, unknown>, name: string, namespace: string): WorkloadIdentity {
  const standalone: WorkloadIdentity = { kind: 'Pod', apiVersion: 'v1', name, namespace };
  const metadata = pod.metadata as Record<string, unknown> | undefined;
  const generateName = readMetadataString(metadata, 'generateName');
  const references = metadata?.ownerReferences;
  if (generateName === '' || !Array.isArray(references)) return standalone;
  const controller = references.find(
    (reference): reference is Record<string, unknown> =>
      typeof reference === 'object' && reference !== null && reference.controller === true,
  );
  if (
    controller === undefined ||
    typeof controller.name !== 'string' ||
    typeof controller.kind !== 'string'
  ) {
    return standalone;
  }
  const labels = metadata?.labels as Record<string, unknown> | undefined;
  const templateHash = typeof labels?.['pod-template-hash'] === 'string' ? labels['pod-template-hash'] : '';
  if (
    controller.kind === 'ReplicaSet' &&
    templateHash !== '' &&
    controller.name.endsWith(`-${templateHash}`)
  ) {
    return {
      kind: 'Deployment',
      apiVersion: 'apps/v1',
      name: controller.name.slice(0, -templateHash.length - 1),
      namespace,
    };
  }
  return {
    kind: controller.kind,
    apiVersion: typeof controller.apiVersion === 'string' ? controller.apiVersion : '',
    name: controller.name,
    namespace,
  };
}
