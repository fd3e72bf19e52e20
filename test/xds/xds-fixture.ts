import { readFile } from 'node:fs/promises';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import { type AgentConfig, buildAgentConfig, defaultProxyFlags } from '../../agent/config/agent-config.ts';
import { readConfigFile } from '../../agent/config/load.ts';
import { writeBootstrapFile } from '../../agent/proxy/bootstrap-file.ts';
import { opaqueAdsService } from '../../agent/xds/opaque-ads.ts';
import { XdsProxy, type XdsProxyOptions } from '../../agent/xds/xds-proxy.ts';
import { buildBootstrap } from '../../bootstrap/build.ts';
import { buildEnvoyArgs } from '../../bootstrap/envoy-args.ts';
import { captureLogging } from '../helpers/captured-logging.ts';
import { freePorts } from '../helpers/ports.ts';
import { createTemporaryRoot, type TemporaryRoot } from '../helpers/temporary-root.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { type AdsResource, AdsService, adsTypeUrls } from '../istiod/ads-service.ts';
import { TestCertificateAuthority } from '../istiod/certificate-authority.ts';
import { TestIstiod } from '../istiod/test-istiod.ts';
import { adminGet, type StandinRun, startStandin } from '../standin/harness.ts';

export const istioToken = 'projected-service-account-token';
export const podName = 'reviews-v1-6f8c5d7b9-x2k4q';
export const podNamespace = 'bookinfo';
export const instanceIp = '10.1.2.3';
export const clusterId = 'Kubernetes';
/** The node id the bootstrap gives Envoy for this pod. */
export const nodeId = `sidecar~${instanceIp}~${podName}.${podNamespace}~${podNamespace}.svc.cluster.local`;

/** A pod root with the projected token in place, removed after the test (short: socket paths). */
export async function podRoot(t: ExecutionContext): Promise<TemporaryRoot> {
  const root = await createTemporaryRoot('xd-');
  t.teardown(() => root.remove());
  await root.write('var/run/secrets/tokens/istio-token', istioToken);
  return root;
}

/** Resources that take Envoy (and the stand-in) to LIVE: one cluster (CDS) and one listener (LDS). */
export function liveResources(listenerPort: number): Record<string, readonly AdsResource[]> {
  return {
    [adsTypeUrls.cluster]: [
      {
        name: 'outbound|9080||ratings.bookinfo.svc.cluster.local',
        resource: {
          '@type': adsTypeUrls.cluster,
          name: 'outbound|9080||ratings.bookinfo.svc.cluster.local',
          type: 'EDS',
          connect_timeout: { seconds: 10 },
        },
      },
    ],
    [adsTypeUrls.listener]: [
      {
        name: 'virtualInbound',
        resource: {
          '@type': adsTypeUrls.listener,
          name: 'virtualInbound',
          address: { socket_address: { address: '127.0.0.1', port_value: listenerPort } },
        },
      },
    ],
  };
}

export interface IstiodWithAds {
  readonly istiod: TestIstiod;
  readonly ads: AdsService;
}

/**
 * A test istiod on TLS whose ADS checks the bearer token (as istiod does), its root written where the agent
 * trusts it. `port` and `certificateAuthority` let a test restart "the same" istiod.
 */
export async function startIstiodWithAds(
  t: ExecutionContext,
  root: TemporaryRoot,
  options: {
    resources?: Record<string, readonly AdsResource[]>;
    port?: number;
    certificateAuthority?: TestCertificateAuthority;
  } = {},
): Promise<IstiodWithAds> {
  const acceptedToken = await root.write('accepted-token', istioToken);
  const ads = new AdsService(options.resources ? { resources: options.resources } : {});
  const istiod = await TestIstiod.start({
    rootCertFile: root.resolve('var/run/secrets/istio/root-cert.pem'),
    tokenFile: acceptedToken,
    certificateAuthority: options.certificateAuthority ?? (await TestCertificateAuthority.create()),
    ...(options.port !== undefined ? { port: options.port } : {}),
    services: [
      { definition: ads.definition, implementation: ads.implementation, options: { authenticate: true } },
    ],
  });
  t.teardown(() => istiod.stop());
  return { istiod, ads };
}

/**
 * A test istiod whose ADS is `implementation` over raw bytes (the proxy's own opaque definition), checking
 * the bearer token: for tests that need istiod to misbehave in ways the ADS service does not.
 */
export async function startIstiodWithRawAds(
  t: ExecutionContext,
  root: TemporaryRoot,
  implementation: UntypedServiceImplementation,
): Promise<TestIstiod> {
  const acceptedToken = await root.write('accepted-token', istioToken);
  const istiod = await TestIstiod.start({
    rootCertFile: root.resolve('var/run/secrets/istio/root-cert.pem'),
    tokenFile: acceptedToken,
    services: [{ definition: opaqueAdsService, implementation, options: { authenticate: true } }],
  });
  t.teardown(() => istiod.stop());
  return istiod;
}

/** The pod's environment for the agent, pointed at `discoveryAddress`, every port free. */
export async function environmentFor(
  discoveryAddress: string,
  environment: Record<string, string> = {},
): Promise<Record<string, string>> {
  const [proxyAdminPort, statusPort, envoyStatusPort, envoyPrometheusPort] = await freePorts(4);
  return {
    POD_NAME: podName,
    POD_NAMESPACE: podNamespace,
    SERVICE_ACCOUNT: 'bookinfo-reviews',
    INSTANCE_IP: instanceIp,
    ISTIO_META_CLUSTER_ID: clusterId,
    DISABLE_HOT_RESTART: 'true',
    ENVOY_STATUS_PORT: String(envoyStatusPort),
    ENVOY_PROMETHEUS_PORT: String(envoyPrometheusPort),
    PROXY_CONFIG: JSON.stringify({ discoveryAddress, proxyAdminPort, statusPort }),
    ...environment,
  };
}

/** The agent's configuration in `root`, pointed at `discoveryAddress`, every port free. */
export async function configFor(
  root: TemporaryRoot,
  discoveryAddress: string,
  environment: Record<string, string> = {},
): Promise<AgentConfig> {
  return buildAgentConfig({
    environment: await environmentFor(discoveryAddress, environment),
    flags: defaultProxyFlags,
    workingDirectory: root.directory,
    readFile: readConfigFile,
  });
}

export interface RunningProxy {
  readonly proxy: XdsProxy;
  readonly registry: Registry;
  /** The proxy's log lines (Istio text format). */
  readonly lines: string[];
  /** A counter's value (summed over label sets matching `labels`). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

/** Starts the XDS proxy in this process; stopped after the test. */
export async function startProxy(
  t: ExecutionContext,
  config: AgentConfig,
  options: Partial<Omit<XdsProxyOptions, 'config' | 'logging' | 'registry'>> = {},
): Promise<RunningProxy> {
  const { logging, lines } = captureLogging();
  const registry = new Registry();
  const proxy = new XdsProxy({ config, logging, registry, ...options });
  t.teardown(() => proxy.stop());
  await proxy.start();
  return {
    proxy,
    registry,
    lines,
    async metric(name, labels = {}) {
      const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
      return values
        .filter((value) =>
          Object.entries(labels).every(([key, expected]) => String(value.labels[key]) === expected),
        )
        .reduce((sum, value) => sum + value.value, 0);
    },
  };
}

/** The Envoy stand-in on the real bootstrap and argv of `config` (epoch 0), in the pod root. */
export async function startEnvoy(
  t: ExecutionContext,
  root: TemporaryRoot,
  config: AgentConfig,
): Promise<StandinRun> {
  await writeBootstrapFile(config.paths.bootstrapFile, buildBootstrap(config));
  return startStandin(t, buildEnvoyArgs(config, { configFile: config.paths.bootstrapFile, epoch: 0 }), {
    cwd: root.directory,
  });
}

/** Envoy's `/ready` body and status right now. */
export async function envoyReadiness(config: AgentConfig): Promise<{ status: number; body: string }> {
  const response = await adminGet(config.ports.proxyAdmin, '/ready');
  return { status: response.status, body: response.body.trim() };
}

/** Waits for Envoy's admin `/ready` to say LIVE. */
export function waitForLive(config: AgentConfig, timeoutMilliseconds = 30_000) {
  return waitFor(
    'Envoy to be LIVE',
    async () => {
      const readiness = await envoyReadiness(config);
      return readiness.status === 200 && readiness.body === 'LIVE' ? readiness : undefined;
    },
    { timeoutMilliseconds },
  );
}

/** The bootstrap's node id, as written to disk. */
export async function bootstrapNodeId(config: AgentConfig): Promise<string> {
  const bootstrap = JSON.parse(await readFile(config.paths.bootstrapFile, 'utf8')) as {
    node: { id: string };
  };
  return bootstrap.node.id;
}
