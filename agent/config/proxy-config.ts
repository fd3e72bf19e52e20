import { requireDurationMilliseconds } from './duration.ts';
import { ConfigError, quoteForError } from './errors.ts';
import { isPlainObject, parseJsonOrYaml } from './structured-text.ts';

/**
 * Istio's `istio.mesh.v1alpha1.ProxyConfig`, in its camelCase JSON form. Durations stay strings as in the
 * JSON mapping ("45s"); the agent converts the ones it uses. Fields the agent does not interpret are kept
 * (they still reach istiod through the `PROXY_CONFIG` node metadata).
 */
export interface ProxyConfig {
  readonly configPath: string;
  readonly binaryPath: string;
  readonly serviceCluster: string;
  readonly drainDuration: string;
  readonly terminationDrainDuration: string;
  readonly discoveryAddress: string;
  readonly proxyAdminPort: number;
  readonly statusPort: number;
  readonly controlPlaneAuthPolicy: string;
  readonly statNameLength: number;
  readonly concurrency?: number;
  readonly customConfigFile?: string;
  readonly proxyBootstrapTemplatePath?: string;
  readonly meshId?: string;
  readonly interceptionMode?: string;
  readonly holdApplicationUntilProxyStarts?: boolean;
  readonly proxyMetadata: Readonly<Record<string, string>>;
  readonly runtimeValues?: Readonly<Record<string, string>>;
  readonly extraStatTags?: readonly string[];
  readonly proxyStatsMatcher?: ProxyStatsMatcher;
  readonly fileFlushInterval?: string;
  readonly [field: string]: unknown;
}

export interface ProxyStatsMatcher {
  readonly inclusionPrefixes?: readonly string[];
  readonly inclusionSuffixes?: readonly string[];
  readonly inclusionRegexps?: readonly string[];
}

export const defaultProxyConfig: ProxyConfig = Object.freeze({
  configPath: './etc/istio/proxy',
  binaryPath: '/usr/local/bin/envoy',
  serviceCluster: 'istio-proxy',
  drainDuration: '45s',
  terminationDrainDuration: '5s',
  discoveryAddress: 'istiod.istio-system.svc:15012',
  proxyAdminPort: 15000,
  statusPort: 15020,
  controlPlaneAuthPolicy: 'MUTUAL_TLS',
  statNameLength: 189,
  proxyMetadata: Object.freeze({}),
});

type FieldKind =
  | 'string'
  | 'port'
  | 'integer'
  | 'duration'
  | 'boolean'
  | 'stringMap'
  | 'stringList'
  | 'statsMatcher';

const fieldKinds: Record<string, FieldKind> = {
  configPath: 'string',
  binaryPath: 'string',
  serviceCluster: 'string',
  drainDuration: 'duration',
  parentShutdownDuration: 'duration',
  terminationDrainDuration: 'duration',
  discoveryAddress: 'string',
  proxyAdminPort: 'port',
  statusPort: 'port',
  controlPlaneAuthPolicy: 'string',
  statNameLength: 'integer',
  concurrency: 'integer',
  customConfigFile: 'string',
  proxyBootstrapTemplatePath: 'string',
  meshId: 'string',
  interceptionMode: 'string',
  holdApplicationUntilProxyStarts: 'boolean',
  proxyMetadata: 'stringMap',
  runtimeValues: 'stringMap',
  extraStatTags: 'stringList',
  proxyStatsMatcher: 'statsMatcher',
  fileFlushInterval: 'duration',
  fileFlushMinSizeKb: 'integer',
};

/** ProxyConfig fields Istio has but this agent only passes through; named so they draw no warning. */
const passThroughFields = new Set([
  'tracing',
  'sds',
  'envoyAccessLogService',
  'envoyMetricsService',
  'envoyMetricsServiceAddress',
  'gatewayTopology',
  'readinessProbe',
  'caCertificatesPem',
  'image',
  'privateKeyProvider',
  'proxyHeaders',
  'statsCompression',
  'availabilityZone',
  'zipkinAddress',
  'tracingServiceName',
  'connectTimeout',
]);

export interface ProxyConfigLayer {
  readonly fields: Readonly<Record<string, unknown>>;
  /** Field names Istio's ProxyConfig does not have; reported as a warning (Istio ignores them too). */
  readonly unknownFields: readonly string[];
}

/**
 * Parses one ProxyConfig layer (mesh config `defaultConfig`, `PROXY_CONFIG`, or the
 * `proxy.istio.io/config` annotation) and checks the type of every field the agent interprets.
 */
export function parseProxyConfigLayer(source: string, input: string | unknown): ProxyConfigLayer {
  const value = typeof input === 'string' ? parseJsonOrYaml(source, input) : input;
  if (value === null || value === undefined) return { fields: {}, unknownFields: [] };
  if (!isPlainObject(value)) {
    throw new ConfigError(source, 'expected a ProxyConfig object (JSON or YAML mapping)');
  }
  const unknownFields: string[] = [];
  const fields: Record<string, unknown> = {};
  for (const [name, fieldValue] of Object.entries(value)) {
    const kind = fieldKinds[name];
    if (kind === undefined) {
      if (!passThroughFields.has(name)) unknownFields.push(name);
      fields[name] = fieldValue;
      continue;
    }
    // An explicit null clears nothing and sets nothing, as with proto JSON.
    if (fieldValue === null) continue;
    fields[name] = checkField(`${source}: field ${name}`, kind, fieldValue);
  }
  return { fields, unknownFields };
}

function checkField(source: string, kind: FieldKind, value: unknown): unknown {
  const fail = (expected: string): never => {
    throw new ConfigError(source, `${quoteForError(JSON.stringify(value))} is not ${expected}`);
  };
  switch (kind) {
    case 'string':
      return typeof value === 'string' ? value : fail('a string');
    case 'boolean':
      return typeof value === 'boolean' ? value : fail('a boolean');
    case 'integer':
    case 'port': {
      const integer = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
      if (typeof integer !== 'number' || !Number.isSafeInteger(integer) || integer < 0) {
        return fail('a non-negative integer');
      }
      if (kind === 'port' && (integer < 1 || integer > 65535)) return fail('a port (1 to 65535)');
      return integer;
    }
    case 'duration': {
      if (typeof value !== 'string') return fail('a duration string such as "45s"');
      requireDurationMilliseconds(source, value);
      return value;
    }
    case 'stringMap': {
      if (!isPlainObject(value)) return fail('a map of strings');
      for (const entry of Object.values(value)) if (typeof entry !== 'string') fail('a map of strings');
      return Object.freeze({ ...value });
    }
    case 'stringList':
      if (!Array.isArray(value) || value.some((entry) => typeof entry !== 'string'))
        return fail('a list of strings');
      return Object.freeze([...value]);
    case 'statsMatcher': {
      if (!isPlainObject(value)) return fail('a stats matcher object');
      for (const key of ['inclusionPrefixes', 'inclusionSuffixes', 'inclusionRegexps']) {
        const list = value[key];
        if (list !== undefined && (!Array.isArray(list) || list.some((entry) => typeof entry !== 'string'))) {
          fail(`a stats matcher whose ${key} is a list of strings`);
        }
      }
      return Object.freeze({ ...value });
    }
  }
}

/**
 * Layers ProxyConfig as Istio does: each later layer replaces the fields it sets, except
 * `proxyMetadata`, whose entries are merged key by key (Istio's `MergeProxyConfig`).
 */
export function mergeProxyConfigLayers(base: ProxyConfig, layers: readonly ProxyConfigLayer[]): ProxyConfig {
  let merged: Record<string, unknown> = { ...base };
  for (const layer of layers) {
    const previousMetadata = merged.proxyMetadata as Record<string, string>;
    merged = { ...merged, ...layer.fields };
    merged.proxyMetadata = Object.freeze({
      ...previousMetadata,
      ...((layer.fields.proxyMetadata as Record<string, string> | undefined) ?? {}),
    });
  }
  return Object.freeze(merged) as ProxyConfig;
}
