import { parseAllDocuments } from 'yaml';
import { defaultInjectionSettings, type InjectionSettings } from '../../agent/inject/injection-settings.ts';
import { injectManifests } from '../../agent/inject/kube-inject.ts';

/** Manifests are free-form JSON; the tests assert their shape field by field. */
// biome-ignore lint/suspicious/noExplicitAny: see above.
export type Json = any;

/** A plain nginx Deployment, as in Kubernetes' documentation. */
export const nginxDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  namespace: shop
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.27.3
        ports:
        - containerPort: 80
`;

/** Injects with the given settings and returns the output and the documents as plain values. */
export function inject(text: string, settings: Partial<InjectionSettings> = {}) {
  const result = injectManifests(text, { ...defaultInjectionSettings, ...settings }, 'test.yaml');
  return { ...result, documents: parseDocuments(result.output) };
}

export function parseDocuments(text: string): Json[] {
  return parseAllDocuments(text, { version: '1.1' }).map((document) => {
    if (document.errors.length > 0) throw document.errors[0];
    return document.toJS();
  });
}

/** The pod template of a Deployment-like document. */
export function podTemplateOf(document: Json): Json {
  return document.kind === 'Pod'
    ? document
    : document.kind === 'CronJob'
      ? document.spec.jobTemplate.spec.template
      : document.spec.template;
}

export function containerNamed(template: Json, name: string): Json {
  return [...template.spec.containers, ...(template.spec.initContainers ?? [])].find(
    (container: Json) => container.name === name,
  );
}

export function environmentOf(container: Json): Record<string, Json> {
  return Object.fromEntries(container.env.map((entry: Json) => [entry.name, entry.value ?? entry.valueFrom]));
}
