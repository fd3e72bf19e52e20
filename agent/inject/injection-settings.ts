import { istioCompatibilityVersion } from '../config/agent-config.ts';
import { ConfigError, quoteForError } from '../config/errors.ts';
import { type ProxyConfigLayer, parseProxyConfigLayer } from '../config/proxy-config.ts';
import { isPlainObject, parseJsonOrYaml } from '../config/structured-text.ts';

/**
 * The image of the injected containers when `--image` is not given: Istio's proxy image at the version this
 * agent is compatible with, pinned so that the same manifest always injects the same thing.
 */
export const defaultProxyImage = `docker.io/istio/proxyv2:${istioCompatibilityVersion}`;

/** The parts of Istio's MeshConfig that shape injection. */
export interface MeshSettings {
  readonly trustDomain: string;
  /** Envoy's outbound capture port, the init container's `-p`. */
  readonly proxyListenPort: number;
  /** Whether `prometheus.io/*` annotations are moved to the agent (`enablePrometheusMerge`, default on). */
  readonly enablePrometheusMerge: boolean;
  /** `defaultConfig`: only the fields the mesh config sets (the agent applies Istio's defaults itself). */
  readonly defaultConfig: ProxyConfigLayer;
}

export const defaultMeshSettings: MeshSettings = Object.freeze({
  trustDomain: 'cluster.local',
  proxyListenPort: 15001,
  enablePrometheusMerge: true,
  defaultConfig: Object.freeze({ fields: Object.freeze({}), unknownFields: Object.freeze([]) }),
});

/** Everything injection depends on besides the manifest itself. */
export interface InjectionSettings {
  readonly image: string;
  /** The control plane revision (`istio.io/rev`); empty for the default revision. */
  readonly revision: string;
  /** Where istiod runs; the CA address is `istiod[-<revision>].<istioNamespace>.svc:15012`. */
  readonly istioNamespace: string;
  /** `ISTIO_META_CLUSTER_ID`. */
  readonly clusterId: string;
  readonly mesh: MeshSettings;
}

export const defaultInjectionSettings: InjectionSettings = Object.freeze({
  image: defaultProxyImage,
  revision: '',
  istioNamespace: 'istio-system',
  clusterId: 'Kubernetes',
  mesh: defaultMeshSettings,
});

/**
 * Reads a mesh config file: a MeshConfig (YAML or JSON) or the `istio` ConfigMap that holds one under
 * `data.mesh` (as `kubectl get configmap istio -o yaml` prints it). Throws a {@link ConfigError} naming the
 * file and field.
 */
export function parseMeshConfig(source: string, text: string): MeshSettings {
  let value = parseJsonOrYaml(source, text);
  let where = source;
  if (isPlainObject(value) && value.kind === 'ConfigMap') {
    const data = value.data;
    const mesh = isPlainObject(data) ? data.mesh : undefined;
    if (typeof mesh !== 'string') {
      throw new ConfigError(
        source,
        'is a ConfigMap without data.mesh (expected the mesh config as a string)',
      );
    }
    where = `${source}: data.mesh`;
    value = parseJsonOrYaml(where, mesh);
  }
  if (value === null || value === undefined) return defaultMeshSettings;
  if (!isPlainObject(value)) throw new ConfigError(where, 'expected a MeshConfig mapping');

  const trustDomain = value.trustDomain ?? defaultMeshSettings.trustDomain;
  if (typeof trustDomain !== 'string' || trustDomain === '') {
    throw new ConfigError(
      `${where}: field trustDomain`,
      `${quoteForError(JSON.stringify(trustDomain))} is not a trust domain`,
    );
  }
  const proxyListenPort = value.proxyListenPort ?? defaultMeshSettings.proxyListenPort;
  if (
    typeof proxyListenPort !== 'number' ||
    !Number.isInteger(proxyListenPort) ||
    proxyListenPort < 1 ||
    proxyListenPort > 65535
  ) {
    throw new ConfigError(
      `${where}: field proxyListenPort`,
      `${quoteForError(JSON.stringify(proxyListenPort))} is not a port (1 to 65535)`,
    );
  }
  const enablePrometheusMerge = value.enablePrometheusMerge ?? defaultMeshSettings.enablePrometheusMerge;
  if (typeof enablePrometheusMerge !== 'boolean') {
    throw new ConfigError(
      `${where}: field enablePrometheusMerge`,
      `${quoteForError(JSON.stringify(enablePrometheusMerge))} is not true or false`,
    );
  }
  return Object.freeze({
    trustDomain,
    proxyListenPort,
    enablePrometheusMerge,
    defaultConfig: parseProxyConfigLayer(`${where}: defaultConfig`, value.defaultConfig),
  });
}
