/**
 * What Kubernetes does with an injected pod before the agent sees it, for tests: resolving the containers'
 * `valueFrom` variables from the pod's fields and resources, expanding `$(VAR)` in variables and arguments,
 * and writing the downward-API files. Written from the Kubernetes documentation, not from Istio's code.
 */

export interface PodFacts {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccountName: string;
  readonly podIp: string;
  readonly hostIp: string;
  readonly nodeName: string;
}

interface EnvironmentEntry {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    resourceFieldRef?: { resource: string; divisor?: string; containerName?: string };
  };
}

interface ContainerLike {
  name: string;
  args?: string[];
  env?: EnvironmentEntry[];
  resources?: { limits?: Record<string, string>; requests?: Record<string, string> };
}

export interface PodTemplateLike {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: ContainerLike[]; initContainers?: ContainerLike[] };
}

export interface StartedContainer {
  readonly environment: Record<string, string>;
  readonly args: string[];
}

/** The variables and arguments the container's process is started with, as the kubelet computes them. */
export function startContainer(
  template: PodTemplateLike,
  containerName: string,
  pod: PodFacts,
): StartedContainer {
  const container = [...template.spec.containers, ...(template.spec.initContainers ?? [])].find(
    (candidate) => candidate.name === containerName,
  );
  if (container === undefined) throw new Error(`no container ${containerName}`);
  const labels = template.metadata?.labels ?? {};
  const annotations = template.metadata?.annotations ?? {};
  const environment: Record<string, string> = {};
  for (const entry of container.env ?? []) {
    if (entry.valueFrom?.fieldRef) {
      environment[entry.name] = fieldValue(entry.valueFrom.fieldRef.fieldPath, pod, labels, annotations);
    } else if (entry.valueFrom?.resourceFieldRef) {
      environment[entry.name] = resourceValue(entry.valueFrom.resourceFieldRef, container);
    } else {
      // Earlier variables are visible to later ones.
      environment[entry.name] = expand(entry.value ?? '', environment);
    }
  }
  return { environment, args: (container.args ?? []).map((argument) => expand(argument, environment)) };
}

/** The downward-API files: one `key="value"` line per entry, sorted, values quoted as Go's `%q`. */
export function downwardApiFile(entries: Readonly<Record<string, string>>): string {
  return Object.keys(entries)
    .sort()
    .map((key) => `${key}=${goQuote(entries[key] as string)}`)
    .join('\n');
}

function fieldValue(
  fieldPath: string,
  pod: PodFacts,
  labels: Record<string, string>,
  annotations: Record<string, string>,
): string {
  switch (fieldPath) {
    case 'metadata.name':
      return pod.name;
    case 'metadata.namespace':
      return pod.namespace;
    case 'spec.serviceAccountName':
      return pod.serviceAccountName;
    case 'spec.nodeName':
      return pod.nodeName;
    case 'status.podIP':
      return pod.podIp;
    case 'status.hostIP':
      return pod.hostIp;
  }
  const selected = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (selected) return (selected[1] === 'labels' ? labels : annotations)[selected[2] as string] ?? '';
  throw new Error(`the test kubelet does not know fieldPath ${fieldPath}`);
}

/** `limits.cpu` in units of `divisor`, rounded up (Kubernetes never hands out a fraction). */
function resourceValue(reference: { resource: string; divisor?: string }, container: ContainerLike): string {
  const [kind, resource] = reference.resource.split('.') as ['limits' | 'requests', string];
  if (resource !== 'cpu') throw new Error(`the test kubelet only resolves cpu, not ${reference.resource}`);
  const quantity = container.resources?.[kind]?.cpu;
  if (quantity === undefined) throw new Error(`container ${container.name} has no ${reference.resource}`);
  return String(Math.ceil(cpuMillis(quantity) / cpuMillis(reference.divisor ?? '1')));
}

function cpuMillis(quantity: string): number {
  return quantity.endsWith('m') ? Number(quantity.slice(0, -1)) : Number(quantity) * 1000;
}

/** `$(NAME)` is replaced by a defined variable, `$$` is a literal `$`, anything else stays. */
function expand(text: string, environment: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (name === undefined) return '$';
    return environment[name] ?? match;
  });
}

function goQuote(value: string): string {
  const escapes: Record<string, string> = {
    '\x07': '\\a',
    '\b': '\\b',
    '\f': '\\f',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
    '\v': '\\v',
    '\\': '\\\\',
    '"': '\\"',
  };
  let quoted = '"';
  for (const character of value) {
    const code = character.codePointAt(0) as number;
    if (escapes[character] !== undefined) quoted += escapes[character];
    else if (code < 0x20 || code === 0x7f) quoted += `\\x${code.toString(16).padStart(2, '0')}`;
    else quoted += character;
  }
  return `${quoted}"`;
}
