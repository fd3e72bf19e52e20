import { InjectionError, ManifestError } from './errors.ts';
import type { InjectionSettings } from './injection-settings.ts';
import { readManifestDocuments, renderManifestDocuments, updateDocument } from './manifest-documents.ts';
import { injectPodTemplate } from './pod-injector.ts';
import { describeObject, formatPath, locatePodTemplates, type ObjectPath } from './workload-kinds.ts';

export interface KubeInjectResult {
  /** The manifest with the sidecar added, documents in their original order. */
  readonly output: string;
  /** One line per workload left as it was for a reason worth telling (Istio's "Skipping injection …"). */
  readonly warnings: readonly string[];
  readonly injectedCount: number;
}

/**
 * `kube-inject` over a whole manifest: every workload's pod template gets the sidecar, every other document
 * is written back unchanged. `source` names the input in errors (`deploy.yaml: document 2 (Deployment
 * "default/web"): spec.template.spec.containers: …`). Throws a {@link ManifestError}; nothing is returned
 * for a manifest with any bad document.
 */
export function injectManifests(text: string, settings: InjectionSettings, source: string): KubeInjectResult {
  const documents = readManifestDocuments(source, text);
  const warnings: string[] = [];
  let injectedCount = 0;
  for (const manifestDocument of documents) {
    const { number } = manifestDocument;
    const fail = (description: string | undefined, error: unknown): never => {
      if (!(error instanceof InjectionError)) throw error;
      const where = `${source}: document ${number}${description ? ` (${description})` : ''}`;
      throw new ManifestError(where, number, error.message);
    };
    let locations: ReturnType<typeof locatePodTemplates> = [];
    try {
      locations = locatePodTemplates(manifestDocument.value);
    } catch (error) {
      fail(describeObject(manifestDocument.value), error);
    }
    let value = manifestDocument.value;
    let changed = false;
    for (const location of locations) {
      let result: ReturnType<typeof injectPodTemplate> | undefined;
      try {
        result = injectPodTemplate(valueAt(value, location.path), location.workload, settings);
      } catch (error) {
        fail(
          location.description,
          error instanceof InjectionError ? error.within(formatPath(location.path)) : error,
        );
      }
      if (result === undefined) continue;
      if (!result.injected) {
        if (!result.silent)
          warnings.push(`Skipping injection because ${location.description} ${result.reason}`);
        continue;
      }
      value = withValueAt(value, location.path, result.template);
      changed = true;
      injectedCount++;
    }
    if (changed) updateDocument(manifestDocument.document, value);
  }
  return { output: renderManifestDocuments(documents), warnings, injectedCount };
}

function valueAt(root: unknown, path: ObjectPath): unknown {
  let value = root;
  for (const segment of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string | number, unknown>)[segment];
  }
  return value;
}

/** A copy of `root` with `replacement` at `path` (whose parents exist: the template was read from there). */
function withValueAt(root: unknown, path: ObjectPath, replacement: unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return replacement;
  const copy = (Array.isArray(root) ? [...root] : { ...(root as object) }) as Record<
    string | number,
    unknown
  >;
  copy[head] = withValueAt(copy[head], rest, replacement);
  return copy;
}
