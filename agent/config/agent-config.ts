import { isIP } from 'node:net';
import path from 'node:path';
import { type AppProbe, parseAppProbers } from './app-probers.ts';
import { parseDownwardApiFile } from './downward-api.ts';
import { requireDurationMilliseconds } from './duration.ts';
import {
  EnvironmentReader,
  type EnvironmentSnapshot,
  normaliseEnvironment,
  parseInteger,
} from './environment.ts';
import { ConfigError, quoteForError } from './errors.ts';
import {
  type AgentLogLevel,
  type ProxyLogLevels,
  parseAgentOutputLevels,
  parseProxyLogLevels,
} from './log-levels.ts';
import { buildRawNodeMetadata } from './node-metadata.ts';
import { type ApplicationScrapeTarget, resolveApplicationScrapeTargets } from './prometheus-scrape.ts';
import {
  defaultProxyConfig,
  mergeProxyConfigLayers,
  type ProxyConfig,
  type ProxyConfigLayer,
  parseProxyConfigLayer,
} from './proxy-config.ts';
import { isPlainObject, parseJsonOrYaml } from './structured-text.ts';

/** The version of Istio whose agent this one stands in for; sent to istiod as `ISTIO_VERSION`. */
export const istioCompatibilityVersion = '1.28.0';

export type NodeType = 'sidecar' | 'router';

/** The `proxy` command's flags, as Istio's `pilot-agent proxy` names them. */
export interface ProxyFlags {
  readonly nodeType: NodeType;
  readonly domain: string;
  /** Empty when the flag was not given (ProxyConfig's `serviceCluster` then applies). */
  readonly serviceCluster: string;
  readonly proxyLogLevel: string;
  readonly proxyComponentLogLevel: string;
  /** As typed on the command line; validated here so that the error names the flag. */
  readonly concurrency: string;
  readonly meshConfig: string;
  readonly templateFile: string;
  readonly outlierLogPath: string;
  readonly stsPort: string;
  readonly tokenManagerPlugin: string;
  readonly logOutputLevel: string;
  readonly logAsJson: boolean;
}

export const defaultProxyFlags: ProxyFlags = Object.freeze({
  nodeType: 'sidecar',
  domain: '',
  serviceCluster: '',
  proxyLogLevel: 'warning',
  proxyComponentLogLevel: '',
  concurrency: '0',
  meshConfig: './etc/istio/config/mesh',
  templateFile: '',
  outlierLogPath: '',
  stsPort: '0',
  tokenManagerPlugin: '',
  logOutputLevel: 'default:info',
  logAsJson: false,
});

/** Reads a file by absolute path: its text, undefined when it does not exist; throws when it exists but cannot be read. */
export type FileReader = (absolutePath: string) => string | undefined;

/** Everything the configuration is computed from: a snapshot, so that loading is a pure function. */
export interface ConfigInputs {
  readonly environment: EnvironmentSnapshot;
  readonly flags: ProxyFlags;
  readonly workingDirectory: string;
  readonly readFile: FileReader;
}

/** Absolute paths of every file and socket the agent reads, writes or serves (Istio's relative defaults, resolved). */
export interface AgentPaths {
  readonly workingDirectory: string;
  readonly configDirectory: string;
  readonly bootstrapFile: string;
  readonly meshConfigFile: string;
  readonly podLabelsFile: string;
  readonly podAnnotationsFile: string;
  readonly istiodRootCertFile: string;
  readonly fileMountedCertsDirectory: string;
  readonly tokenFile: string;
  readonly dataDirectory: string;
  readonly sdsSocket: string;
  readonly xdsSocket: string;
  readonly bootstrapOverrideFile?: string;
  readonly templateFile?: string;
  readonly outputCertsDirectory?: string;
}

export interface AgentPorts {
  readonly proxyAdmin: number;
  readonly status: number;
  readonly envoyStatus: number;
  readonly envoyPrometheus: number;
  readonly sts: number;
}

export interface SecurityConfig {
  /** Where CSRs go: `CA_ADDR`, else the discovery address. */
  readonly caAddress: string;
  readonly pilotCertProvider: 'istiod' | 'kubernetes' | 'custom' | 'none';
  readonly jwtPolicy: 'third-party-jwt' | 'first-party-jwt';
  readonly trustDomain: string;
  /** The SPIFFE identity the CSR asks for. */
  readonly spiffeId: string;
  readonly secretTtlMilliseconds: number;
  readonly secretGracePeriodRatio: number;
  readonly keyAlgorithm:
    | { readonly kind: 'RSA'; readonly size: number }
    | { readonly kind: 'ECDSA'; readonly curve: 'P256' | 'P384' };
  readonly pkcs8Key: boolean;
  readonly fileMountedCerts: boolean;
  /** `ISTIOD_SAN`: the TLS server name to expect instead of the address's host. */
  readonly istiodSan?: string;
  readonly caHeaders: Readonly<Record<string, string>>;
  readonly certSigner?: string;
  /** `ISTIO_META_CLUSTER_ID`, sent as the `ClusterID` header. */
  readonly clusterId: string;
}

export interface PodIdentity {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** `INSTANCE_IP` first; never empty. */
  readonly instanceIps: readonly string[];
  readonly hostIp?: string;
  readonly canonicalService?: string;
  readonly canonicalRevision?: string;
  /** From the downward-API labels file (`pod-template-hash` kept here; the bootstrap drops it). */
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface DrainConfig {
  readonly drainDurationMilliseconds: number;
  readonly parentShutdownDurationMilliseconds: number;
  readonly terminationDrainDurationMilliseconds: number;
  readonly minimumDrainDurationMilliseconds: number;
  readonly exitOnZeroActiveConnections: boolean;
}

/** The agent's whole configuration, immutable; a new one is built whenever a watched input changes. */
export interface AgentConfig {
  readonly nodeType: NodeType;
  readonly domain: string;
  readonly serviceCluster: string;
  readonly pod: PodIdentity;
  readonly proxyConfig: ProxyConfig;
  readonly unknownProxyConfigFields: readonly string[];
  /** Envoy's `--concurrency`; 0 means the flag is not passed and Envoy uses every CPU. */
  readonly concurrency: number;
  readonly proxyLogLevels: ProxyLogLevels;
  readonly agentLogLevels: Readonly<Record<string, AgentLogLevel>>;
  readonly logAsJson: boolean;
  readonly ports: AgentPorts;
  readonly paths: AgentPaths;
  readonly security: SecurityConfig;
  readonly xds: {
    readonly discoveryAddress: string;
    readonly headers: Readonly<Record<string, string>>;
    readonly delta: boolean;
  };
  /** Node metadata from `proxyMetadata`, `ISTIO_META_*` (raw strings) and `ISTIO_METAJSON_*` (parsed). */
  readonly rawNodeMetadata: Readonly<Record<string, unknown>>;
  readonly appProbers: ReadonlyMap<string, AppProbe>;
  readonly applicationScrapeTargets: readonly ApplicationScrapeTarget[];
  readonly metricsLocalhostAccessOnly: boolean;
  readonly drain: DrainConfig;
  readonly fileDebounceMilliseconds: number;
  readonly hotRestartEnabled: boolean;
  /** How often a failing Envoy is restarted before the agent gives up, and the first delay (doubling). */
  readonly envoyRestart: { readonly budget: number; readonly initialBackoffMilliseconds: number };
  readonly outlierLogPath?: string;
  readonly istioVersion: string;
}

/**
 * Builds the agent's configuration from one snapshot of its inputs, as Istio layers them. Throws a
 * {@link ConfigError} naming the offending variable, file or flag.
 */
export function buildAgentConfig(inputs: ConfigInputs): AgentConfig {
  const { flags, workingDirectory } = inputs;
  const resolve = (relative: string) => path.resolve(workingDirectory, relative);
  const initialEnvironment = new EnvironmentReader(normaliseEnvironment(inputs.environment));

  const podNamespace = initialEnvironment.optionalString('POD_NAMESPACE');
  if (podNamespace === undefined) {
    throw new ConfigError(
      'POD_NAMESPACE',
      'is not set (expected the pod namespace, from the downward API metadata.namespace)',
    );
  }

  const podLabelsFile = resolve('./etc/istio/pod/labels');
  const podAnnotationsFile = resolve('./etc/istio/pod/annotations');
  const labels = readDownwardApi(inputs.readFile, podLabelsFile);
  const annotations = readDownwardApi(inputs.readFile, podAnnotationsFile);

  // ProxyConfig layers: defaults → mesh config defaultConfig → PROXY_CONFIG → pod annotations.
  const meshConfigFile = resolve(flags.meshConfig);
  const layers: ProxyConfigLayer[] = [];
  const meshConfigText = inputs.readFile(meshConfigFile);
  if (meshConfigText !== undefined) {
    const meshConfig = parseJsonOrYaml(meshConfigFile, meshConfigText);
    if (meshConfig !== null && meshConfig !== undefined && !isPlainObject(meshConfig)) {
      throw new ConfigError(meshConfigFile, 'expected a MeshConfig mapping');
    }
    if (isPlainObject(meshConfig) && meshConfig.defaultConfig !== undefined) {
      layers.push(parseProxyConfigLayer(`${meshConfigFile}: defaultConfig`, meshConfig.defaultConfig));
    }
  }
  const proxyConfigVariable = initialEnvironment.optionalString('PROXY_CONFIG');
  if (proxyConfigVariable !== undefined)
    layers.push(parseProxyConfigLayer('PROXY_CONFIG', proxyConfigVariable));
  const proxyConfigAnnotation = annotations['proxy.istio.io/config'];
  if (proxyConfigAnnotation !== undefined) {
    layers.push(
      parseProxyConfigLayer(`${podAnnotationsFile}: annotation proxy.istio.io/config`, proxyConfigAnnotation),
    );
  }
  const discoveryAddressAnnotation = annotations['sidecar.istio.io/discoveryAddress'];
  const statusPortAnnotation = annotations['status.sidecar.istio.io/port'];
  if (discoveryAddressAnnotation !== undefined || statusPortAnnotation !== undefined) {
    layers.push(
      parseProxyConfigLayer(`${podAnnotationsFile}: annotations`, {
        ...(discoveryAddressAnnotation !== undefined ? { discoveryAddress: discoveryAddressAnnotation } : {}),
        ...(statusPortAnnotation !== undefined ? { statusPort: statusPortAnnotation } : {}),
      }),
    );
  }
  const proxyConfig = mergeProxyConfigLayers(defaultProxyConfig, layers);

  // Istio exports proxyMetadata into the agent's environment, where it wins over the pod's own variables.
  const environment = new EnvironmentReader({
    ...initialEnvironment.variables,
    ...proxyConfig.proxyMetadata,
  });

  const instanceIps = resolveInstanceIps(environment);
  const ports = resolvePorts(environment, proxyConfig, flags);
  const security = resolveSecurity(environment, proxyConfig, podNamespace);
  const nodeMetadata = buildRawNodeMetadata(environment, proxyConfig.proxyMetadata);

  const proxyLogLevels = parseProxyLogLevels(
    {
      source:
        annotations['sidecar.istio.io/logLevel'] !== undefined
          ? `${podAnnotationsFile}: annotation sidecar.istio.io/logLevel`
          : '--proxyLogLevel',
      value: annotations['sidecar.istio.io/logLevel'] ?? flags.proxyLogLevel,
    },
    {
      source:
        annotations['sidecar.istio.io/componentLogLevel'] !== undefined
          ? `${podAnnotationsFile}: annotation sidecar.istio.io/componentLogLevel`
          : '--proxyComponentLogLevel',
      value: annotations['sidecar.istio.io/componentLogLevel'] ?? flags.proxyComponentLogLevel,
    },
  );

  const outputCertsDirectory = environment.optionalString('OUTPUT_CERTS');
  const bootstrapOverrideFile = environment.optionalString('ISTIO_BOOTSTRAP_OVERRIDE');
  const templateFile =
    flags.templateFile ||
    proxyConfig.proxyBootstrapTemplatePath ||
    environment.optionalString('ISTIO_BOOTSTRAP');
  const configDirectory = resolve(proxyConfig.configPath);
  const paths: AgentPaths = Object.freeze({
    workingDirectory,
    configDirectory,
    bootstrapFile: path.join(configDirectory, 'envoy-rev.json'),
    meshConfigFile,
    podLabelsFile,
    podAnnotationsFile,
    istiodRootCertFile: resolve(
      security.pilotCertProvider === 'custom'
        ? './etc/certs/root-cert.pem'
        : './var/run/secrets/istio/root-cert.pem',
    ),
    fileMountedCertsDirectory: resolve('./etc/certs'),
    tokenFile: resolve('./var/run/secrets/tokens/istio-token'),
    dataDirectory: resolve('./var/lib/istio/data'),
    sdsSocket: resolve('./var/run/secrets/workload-spiffe-uds/socket'),
    xdsSocket: path.join(configDirectory, 'XDS'),
    ...(bootstrapOverrideFile !== undefined ? { bootstrapOverrideFile: resolve(bootstrapOverrideFile) } : {}),
    ...(templateFile ? { templateFile: resolve(templateFile) } : {}),
    ...(outputCertsDirectory !== undefined ? { outputCertsDirectory: resolve(outputCertsDirectory) } : {}),
  });

  const hostIp = environment.optionalString('HOST_IP');
  const canonicalService = environment.optionalString('CANONICAL_SERVICE');
  const canonicalRevision = environment.optionalString('CANONICAL_REVISION');
  const pod: PodIdentity = Object.freeze({
    name: environment.string('POD_NAME', ''),
    namespace: podNamespace,
    serviceAccount: environment.string('SERVICE_ACCOUNT', 'default'),
    instanceIps,
    ...(hostIp !== undefined ? { hostIp } : {}),
    ...(canonicalService !== undefined ? { canonicalService } : {}),
    ...(canonicalRevision !== undefined ? { canonicalRevision } : {}),
    labels,
    annotations,
  });

  return Object.freeze({
    nodeType: flags.nodeType,
    domain: flags.domain || `${podNamespace}.svc.cluster.local`,
    serviceCluster: flags.serviceCluster || proxyConfig.serviceCluster,
    pod,
    proxyConfig,
    unknownProxyConfigFields: Object.freeze(layers.flatMap((layer) => layer.unknownFields)),
    concurrency: resolveConcurrency(environment, proxyConfig, flags.concurrency),
    proxyLogLevels,
    agentLogLevels: parseAgentOutputLevels('--log_output_level', flags.logOutputLevel),
    logAsJson: flags.logAsJson,
    ports,
    paths,
    security,
    xds: Object.freeze({
      discoveryAddress: proxyConfig.discoveryAddress,
      headers: Object.freeze(environment.withPrefix('XDS_HEADER_')),
      delta: environment.boolean('ISTIO_DELTA_XDS', true),
    }),
    rawNodeMetadata: nodeMetadata,
    appProbers: parseAppProbers(
      'ISTIO_KUBE_APP_PROBERS',
      environment.optionalString('ISTIO_KUBE_APP_PROBERS'),
    ),
    applicationScrapeTargets: Object.freeze(
      resolveApplicationScrapeTargets(environment.lookup('ISTIO_PROMETHEUS_ANNOTATIONS'), annotations),
    ),
    metricsLocalhostAccessOnly: environment.boolean('METRICS_LOCALHOST_ACCESS_ONLY', false),
    drain: Object.freeze({
      drainDurationMilliseconds: requireDurationMilliseconds(
        'ProxyConfig.drainDuration',
        proxyConfig.drainDuration,
      ),
      parentShutdownDurationMilliseconds: requireDurationMilliseconds(
        'ProxyConfig.parentShutdownDuration',
        typeof proxyConfig.parentShutdownDuration === 'string' ? proxyConfig.parentShutdownDuration : '60s',
      ),
      terminationDrainDurationMilliseconds:
        environment.lookup('TERMINATION_DRAIN_DURATION_SECONDS') !== undefined
          ? environment.integer('TERMINATION_DRAIN_DURATION_SECONDS', 5, { min: 0 }) * 1000
          : requireDurationMilliseconds(
              'ProxyConfig.terminationDrainDuration',
              proxyConfig.terminationDrainDuration,
            ),
      minimumDrainDurationMilliseconds: environment.durationMilliseconds('MINIMUM_DRAIN_DURATION', '5s'),
      exitOnZeroActiveConnections: environment.boolean('EXIT_ON_ZERO_ACTIVE_CONNECTIONS', false),
    }),
    fileDebounceMilliseconds: environment.durationMilliseconds('FILE_DEBOUNCE_DURATION', '100ms'),
    hotRestartEnabled: !environment.boolean('DISABLE_HOT_RESTART', false),
    envoyRestart: Object.freeze({
      budget: environment.integer('ENVOY_RESTART_BUDGET', 10, { min: 0, max: 1000 }),
      initialBackoffMilliseconds: environment.durationMilliseconds('ENVOY_RESTART_INITIAL_BACKOFF', '200ms'),
    }),
    ...(flags.outlierLogPath ? { outlierLogPath: flags.outlierLogPath } : {}),
    istioVersion: environment.string('ISTIO_META_ISTIO_VERSION', istioCompatibilityVersion),
  });
}

function readDownwardApi(readFile: FileReader, file: string): Readonly<Record<string, string>> {
  const content = readFile(file);
  return Object.freeze(content === undefined ? {} : parseDownwardApiFile(file, content));
}

function resolveInstanceIps(environment: EnvironmentReader): readonly string[] {
  const addresses: string[] = [];
  const add = (source: string, address: string) => {
    const trimmed = address.trim();
    if (trimmed === '') return;
    if (isIP(trimmed) === 0) throw new ConfigError(source, `${quoteForError(trimmed)} is not an IP address`);
    if (!addresses.includes(trimmed)) addresses.push(trimmed);
  };
  const instanceIp = environment.optionalString('INSTANCE_IP');
  if (instanceIp !== undefined) add('INSTANCE_IP', instanceIp);
  for (const extra of (environment.optionalString('ISTIO_META_INSTANCE_IPS') ?? '').split(',')) {
    add('ISTIO_META_INSTANCE_IPS', extra);
  }
  if (addresses.length === 0) addresses.push('127.0.0.1');
  return Object.freeze(addresses);
}

function resolvePorts(
  environment: EnvironmentReader,
  proxyConfig: ProxyConfig,
  flags: ProxyFlags,
): AgentPorts {
  const portBounds = { min: 1, max: 65535 };
  const ports: AgentPorts = Object.freeze({
    proxyAdmin: proxyConfig.proxyAdminPort,
    status: proxyConfig.statusPort,
    envoyStatus: environment.integer('ENVOY_STATUS_PORT', 15021, portBounds),
    envoyPrometheus: environment.integer('ENVOY_PROMETHEUS_PORT', 15090, portBounds),
    sts: parseInteger('--stsPort', flags.stsPort, { min: 0, max: 65535 }),
  });
  const named: [string, number][] = [
    ['ProxyConfig.proxyAdminPort', ports.proxyAdmin],
    ['ProxyConfig.statusPort', ports.status],
    ['ENVOY_STATUS_PORT', ports.envoyStatus],
    ['ENVOY_PROMETHEUS_PORT', ports.envoyPrometheus],
    ...(ports.sts !== 0 ? ([['--stsPort', ports.sts]] as [string, number][]) : []),
  ];
  for (const [index, [name, port]] of named.entries()) {
    const clash = named.slice(0, index).find(([, other]) => other === port);
    if (clash)
      throw new ConfigError(name, `port ${port} is already used by ${clash[0]} (expected distinct ports)`);
  }
  return ports;
}

function resolveConcurrency(environment: EnvironmentReader, proxyConfig: ProxyConfig, flag: string): number {
  const flagValue = parseInteger('--concurrency', flag === '' ? '0' : flag, { min: 0 });
  if (flagValue > 0) return flagValue;
  if (proxyConfig.concurrency !== undefined) return proxyConfig.concurrency;
  return environment.integer('ISTIO_CPU_LIMIT', 0, { min: 0 });
}

function resolveSecurity(
  environment: EnvironmentReader,
  proxyConfig: ProxyConfig,
  namespace: string,
): SecurityConfig {
  const pilotCertProvider = environment.string('PILOT_CERT_PROVIDER', 'istiod');
  if (!['istiod', 'kubernetes', 'custom', 'none'].includes(pilotCertProvider)) {
    throw new ConfigError(
      'PILOT_CERT_PROVIDER',
      `${quoteForError(pilotCertProvider)} is not one of istiod, kubernetes, custom, none`,
    );
  }
  const jwtPolicy = environment.string('JWT_POLICY', 'third-party-jwt');
  if (jwtPolicy !== 'third-party-jwt' && jwtPolicy !== 'first-party-jwt') {
    throw new ConfigError(
      'JWT_POLICY',
      `${quoteForError(jwtPolicy)} is not third-party-jwt or first-party-jwt`,
    );
  }
  const eccAlgorithm = environment.string('ECC_SIGNATURE_ALGORITHM', '');
  if (eccAlgorithm !== '' && eccAlgorithm !== 'ECDSA') {
    throw new ConfigError(
      'ECC_SIGNATURE_ALGORITHM',
      `${quoteForError(eccAlgorithm)} is not supported (expected ECDSA or unset for RSA)`,
    );
  }
  const curve = environment.string('ECC_CURVE', 'P256');
  if (curve !== 'P256' && curve !== 'P384') {
    throw new ConfigError('ECC_CURVE', `${quoteForError(curve)} is not supported (expected P256 or P384)`);
  }
  const trustDomain = environment.string('TRUST_DOMAIN', 'cluster.local');
  const serviceAccount = environment.string('SERVICE_ACCOUNT', 'default');
  const keyAlgorithm: SecurityConfig['keyAlgorithm'] =
    eccAlgorithm === 'ECDSA'
      ? { kind: 'ECDSA', curve }
      : { kind: 'RSA', size: environment.integer('WORKLOAD_RSA_KEY_SIZE', 2048, { min: 2048, max: 8192 }) };
  const istiodSan = environment.optionalString('ISTIOD_SAN');
  const certSigner = environment.optionalString('ISTIO_META_CERT_SIGNER');
  return Object.freeze({
    caAddress: environment.optionalString('CA_ADDR') ?? proxyConfig.discoveryAddress,
    pilotCertProvider: pilotCertProvider as SecurityConfig['pilotCertProvider'],
    jwtPolicy,
    trustDomain,
    spiffeId: `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`,
    secretTtlMilliseconds: environment.durationMilliseconds('SECRET_TTL', '24h'),
    secretGracePeriodRatio: environment.number('SECRET_GRACE_PERIOD_RATIO', 0.5, { min: 0, max: 1 }),
    keyAlgorithm,
    pkcs8Key: environment.boolean('PKCS8_KEY', false),
    fileMountedCerts: environment.boolean('FILE_MOUNTED_CERTS', false),
    ...(istiodSan !== undefined ? { istiodSan } : {}),
    caHeaders: Object.freeze(environment.withPrefix('CA_HEADER_')),
    ...(certSigner !== undefined ? { certSigner } : {}),
    clusterId: environment.string('ISTIO_META_CLUSTER_ID', 'Kubernetes'),
  });
}
