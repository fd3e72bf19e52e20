import { proxyContainerName, rewriteAppProbes } from './app-probes.ts';
import { InjectionError } from './errors.ts';
import { isInboundPortCaptured, resolveInjectionParameters } from './injection-parameters.ts';
import { decideInjection, sidecarStatusAnnotation } from './injection-policy.ts';
import type { InjectionSettings } from './injection-settings.ts';
import { type PodTemplate, readPodTemplate } from './pod-template.ts';
import { mergePrometheusAnnotations } from './prometheus-merge.ts';
import { type EnvironmentVariable, renderSidecar } from './sidecar-template.ts';
import type { WorkloadIdentity } from './workload-kinds.ts';

export type PodInjectionResult =
  | { readonly injected: true; readonly template: PodTemplate }
  /** `reason` completes "skipping injection because <workload> …"; `silent` when not worth a warning. */
  | { readonly injected: false; readonly reason: string; readonly silent: boolean };

/**
 * Injects the sidecar into one pod template (a Pod, or the template of a workload), as Istio's injector
 * does: the proxy and init containers and their volumes are added, application probes are taken over by
 * the agent, Prometheus annotations point at the agent, and `sidecar.istio.io/status` records what was
 * added. Pure: the input is not changed. Throws an {@link InjectionError} naming the field at fault,
 * relative to the pod template.
 */
export function injectPodTemplate(
  value: unknown,
  workload: WorkloadIdentity,
  settings: InjectionSettings,
): PodInjectionResult {
  const template = readPodTemplate(value);
  const decision = decideInjection(template, workload);
  if (!decision.inject) return { injected: false, reason: decision.reason, silent: decision.silent };
  for (const list of ['containers', 'initContainers'] as const) {
    const index = (template.spec[list] ?? []).findIndex((container) => container.name === proxyContainerName);
    if (index >= 0) {
      throw new InjectionError(
        `spec.${list}[${index}]`,
        `a container named ${proxyContainerName} is already there but the pod has no ${sidecarStatusAnnotation} annotation (customising the injected container is not supported; remove it)`,
      );
    }
  }

  const parameters = resolveInjectionParameters(template, settings);
  const annotations = template.metadata?.annotations ?? {};
  const prometheus = mergePrometheusAnnotations(
    annotations,
    parameters.statusPort,
    parameters.prometheusMerge,
  );
  const probes =
    parameters.rewriteAppProbes && parameters.statusPort !== 0
      ? rewriteAppProbes(template.spec, parameters.statusPort, (port) =>
          isInboundPortCaptured(parameters.traffic, port),
        )
      : {
          containers: template.spec.containers,
          initContainers: template.spec.initContainers,
          probers: undefined,
        };
  const extraEnvironment: EnvironmentVariable[] = [
    ...(prometheus.scrapeConfiguration !== undefined
      ? [{ name: 'ISTIO_PROMETHEUS_ANNOTATIONS', value: prometheus.scrapeConfiguration }]
      : []),
    ...(probes.probers !== undefined ? [{ name: 'ISTIO_KUBE_APP_PROBERS', value: probes.probers }] : []),
  ];
  const sidecar = renderSidecar({ template, workload, parameters, settings, extraEnvironment });

  const revision = settings.revision === '' ? 'default' : settings.revision;
  // Istio's SidecarInjectionStatus, in its JSON field order: what re-injection or removal has to find.
  const status = JSON.stringify({
    initContainers:
      sidecar.initContainers.length > 0 ? sidecar.initContainers.map((container) => container.name) : null,
    containers: [proxyContainerName],
    volumes: sidecar.volumes.map((volume) => volume.name),
    imagePullSecrets: null,
    revision,
  });

  const metadata = {
    ...template.metadata,
    labels: { ...template.metadata?.labels, ...sidecar.labels },
    annotations: { ...prometheus.annotations, ...sidecar.annotations, [sidecarStatusAnnotation]: status },
  };
  const spec = {
    ...template.spec,
    // The proxy goes last so that `kubectl exec` and `logs` default to the application, unless the
    // application must wait for it (holdApplicationUntilProxyStarts): containers start in order.
    containers: parameters.holdApplicationUntilProxyStarts
      ? [sidecar.proxyContainer, ...probes.containers]
      : [...probes.containers, sidecar.proxyContainer],
    // istio-init goes last, so that the pod's own init containers run before traffic is captured.
    initContainers: [...(probes.initContainers ?? []), ...sidecar.initContainers],
    volumes: [...(template.spec.volumes ?? []), ...sidecar.volumes],
  };
  if (spec.initContainers.length === 0) delete (spec as Partial<typeof spec>).initContainers;
  // A template without metadata gets it first, where people expect it.
  const injected =
    template.metadata === undefined ? { metadata, ...template, spec } : { ...template, metadata, spec };
  return { injected: true, template: injected as PodTemplate };
}
