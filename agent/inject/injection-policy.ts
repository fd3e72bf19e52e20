import { describeValue, InjectionError } from './errors.ts';
import type { PodTemplate } from './pod-template.ts';
import type { WorkloadIdentity } from './workload-kinds.ts';

/** Set on every injected pod; its presence means "already injected". */
export const sidecarStatusAnnotation = 'sidecar.istio.io/status';
/** The opt-in/opt-out switch, as an annotation or (preferred by Istio when both are set) a label. */
export const sidecarInjectKey = 'sidecar.istio.io/inject';

/** Namespaces Istio never injects into (its `IgnoredNamespaces`). */
export const ignoredNamespaces: readonly string[] = Object.freeze([
  'kube-system',
  'kube-public',
  'kube-node-lease',
  'local-path-storage',
]);

export type InjectionDecision =
  | { readonly inject: true }
  /** `reason` completes "skipping injection because <workload> …"; `silent` when nothing is worth saying. */
  | { readonly inject: false; readonly reason: string; readonly silent: boolean };

/**
 * Whether a pod template gets the sidecar, following Istio's kube-inject: not twice, not with host
 * networking, not in Kubernetes' system namespaces, not when `sidecar.istio.io/inject` says "false".
 */
export function decideInjection(template: PodTemplate, workload: WorkloadIdentity): InjectionDecision {
  const annotations = template.metadata?.annotations ?? {};
  const labels = template.metadata?.labels ?? {};
  if (annotations[sidecarStatusAnnotation] !== undefined) {
    return { inject: false, reason: 'is already injected', silent: true };
  }
  if (template.spec.hostNetwork === true) {
    return { inject: false, reason: 'has host networking enabled', silent: false };
  }
  const namespace = template.metadata?.namespace || workload.namespace;
  if (ignoredNamespaces.includes(namespace)) {
    return {
      inject: false,
      reason: `is in namespace ${namespace}, where Istio never injects`,
      silent: false,
    };
  }
  const fromLabel = labels[sidecarInjectKey];
  const switchValue = fromLabel ?? annotations[sidecarInjectKey];
  if (switchValue === undefined || switchValue === '' || switchValue === 'true') return { inject: true };
  if (switchValue === 'false') {
    return { inject: false, reason: 'has sidecar injection disabled', silent: false };
  }
  throw new InjectionError(
    `metadata.${fromLabel !== undefined ? 'labels' : 'annotations'}["${sidecarInjectKey}"]`,
    `${describeValue(switchValue)} is not "true" or "false"`,
  );
}
