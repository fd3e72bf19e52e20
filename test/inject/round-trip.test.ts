import test from 'ava';
import yargs from 'yargs';
import { proxyFlagsFromArguments, withProxyFlags } from '../../agent/commands/proxy-flags.ts';
import { buildAgentConfig, type ProxyFlags } from '../../agent/config/agent-config.ts';
import { parseMeshConfig } from '../../agent/inject/injection-settings.ts';
import { prepareAgentRoot } from '../helpers/agent-root.ts';
import { startPilotAgent } from '../helpers/cli.ts';
import { startControlPlane } from '../helpers/control-plane.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { downwardApiFile, type PodFacts, startContainer } from './kubelet.ts';
import { inject, podTemplateOf } from './manifests.ts';

/** An nginx Deployment with what makes the round trip interesting: a probe on a named port and metrics. */
const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  namespace: shop
spec:
  replicas: 3
  selector:
    matchLabels: {app: nginx}
  template:
    metadata:
      labels: {app: nginx, version: v2}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9113"
    spec:
      serviceAccountName: nginx
      containers:
      - name: nginx
        image: nginx:1.27.3
        ports:
        - {name: http, containerPort: 80}
        readinessProbe:
          httpGet: {path: /, port: http}
      - name: exporter
        image: nginx/nginx-prometheus-exporter:1.4
        ports:
        - {name: metrics, containerPort: 9113}
`;

/** The pod Kubernetes creates from the Deployment. */
const pod: PodFacts = {
  name: 'nginx-deployment-7c5ddbdf54-x2x9z',
  namespace: 'shop',
  serviceAccountName: 'nginx',
  podIp: '10.244.1.17',
  hostIp: '172.18.0.3',
  nodeName: 'kind-worker',
};

/** The injected pod's istio-proxy as the kubelet starts it, and the pod's downward-API files. */
function injectedProxy(meshConfig?: string) {
  const settings = meshConfig === undefined ? {} : { mesh: parseMeshConfig('mesh.yaml', meshConfig) };
  const template = podTemplateOf(inject(deployment, settings).documents[0]);
  const started = startContainer(template, 'istio-proxy', pod);
  // The ReplicaSet controller adds its template hash to the pod's labels.
  const labels = { ...template.metadata.labels, 'pod-template-hash': '7c5ddbdf54' };
  return {
    ...started,
    labelsFile: downwardApiFile(labels),
    annotationsFile: downwardApiFile(template.metadata.annotations),
  };
}

/** The proxy's flags through the agent's own parser. */
async function proxyFlagsOf(args: readonly string[]): Promise<ProxyFlags> {
  let flags: ProxyFlags | undefined;
  await yargs([...args])
    .command(
      'proxy [type]',
      '',
      (builder) => withProxyFlags(builder),
      (argv) => {
        flags = proxyFlagsFromArguments(argv);
      },
    )
    .strict(false)
    .exitProcess(false)
    .parseAsync();
  if (flags === undefined) throw new Error(`not a proxy command: ${args.join(' ')}`);
  return flags;
}

test("the injected proxy's environment and arguments configure the agent as the pod intends", async (t) => {
  const proxy = injectedProxy();
  t.deepEqual(proxy.args, [
    'proxy',
    'sidecar',
    '--domain',
    'shop.svc.cluster.local',
    '--proxyLogLevel=warning',
    '--proxyComponentLogLevel=misc:error',
    '--log_output_level=default:info',
  ]);
  const files = new Map([
    ['/etc/istio/pod/labels', proxy.labelsFile],
    ['/etc/istio/pod/annotations', proxy.annotationsFile],
  ]);
  const config = buildAgentConfig({
    environment: proxy.environment,
    flags: await proxyFlagsOf(proxy.args),
    workingDirectory: '/',
    readFile: (file) => files.get(file),
  });

  t.is(config.nodeType, 'sidecar');
  t.is(config.domain, 'shop.svc.cluster.local');
  t.is(config.pod.name, pod.name);
  t.is(config.pod.namespace, 'shop');
  t.is(config.pod.serviceAccount, 'nginx');
  t.deepEqual(config.pod.instanceIps, ['10.244.1.17']);
  t.is(config.pod.hostIp, '172.18.0.3');
  t.is(config.pod.canonicalService, 'nginx');
  t.is(config.pod.canonicalRevision, 'v2');
  t.is(config.pod.labels['security.istio.io/tlsMode'], 'istio');
  t.is(config.pod.annotations['prometheus.io/port'], '15020');
  t.is(config.security.spiffeId, 'spiffe://cluster.local/ns/shop/sa/nginx');
  t.is(config.security.caAddress, 'istiod.istio-system.svc:15012');
  t.is(config.security.clusterId, 'Kubernetes');
  t.is(config.security.pilotCertProvider, 'istiod');
  t.is(config.xds.discoveryAddress, 'istiod.istio-system.svc:15012');
  // Concurrency from the proxy's CPU limit (2), through ISTIO_CPU_LIMIT.
  t.is(config.concurrency, 2);
  t.deepEqual(config.ports, {
    proxyAdmin: 15000,
    status: 15020,
    envoyStatus: 15021,
    envoyPrometheus: 15090,
    sts: 0,
  });
  t.deepEqual(config.proxyLogLevels, { level: 'warning', componentLevels: { misc: 'error' } });
  t.deepEqual(
    [...config.appProbers.entries()],
    [
      [
        '/app-health/nginx/readyz',
        { kind: 'http', port: 80, path: '/', scheme: 'HTTP', headers: [], timeoutSeconds: 1 },
      ],
    ],
  );
  t.deepEqual(config.applicationScrapeTargets, [{ port: 9113, path: '/metrics' }]);
  t.like(config.rawNodeMetadata, {
    CLUSTER_ID: 'Kubernetes',
    NODE_NAME: 'kind-worker',
    INTERCEPTION_MODE: 'REDIRECT',
    WORKLOAD_NAME: 'nginx-deployment',
    OWNER: 'kubernetes://apis/apps/v1/namespaces/shop/deployments/nginx-deployment',
    MESH_ID: 'cluster.local',
    APP_CONTAINERS: 'nginx,exporter',
  });
  t.deepEqual(JSON.parse(config.rawNodeMetadata.POD_PORTS as string), [
    { name: 'http', containerPort: 80 },
    { name: 'metrics', containerPort: 9113 },
  ]);
  t.deepEqual(config.unknownProxyConfigFields, []);
});

test('mesh config concurrency and holdApplicationUntilProxyStarts reach the agent through flags and PROXY_CONFIG', async (t) => {
  const proxy = injectedProxy('defaultConfig:\n  concurrency: 3\n  holdApplicationUntilProxyStarts: true\n');
  t.deepEqual(proxy.args.slice(-2), ['--concurrency', '3']);
  const config = buildAgentConfig({
    environment: proxy.environment,
    flags: await proxyFlagsOf(proxy.args),
    workingDirectory: '/',
    readFile: () => undefined,
  });
  t.is(config.concurrency, 3);
  t.true(config.proxyConfig.holdApplicationUntilProxyStarts);
});

test('the injected proxy runs the real pilot-agent in a pod-like root: identity, Envoy LIVE, ready through 15021, clean SIGTERM', async (t) => {
  const proxy = injectedProxy();
  const root = await createTemporaryRoot('pa-rt-');
  t.teardown(() => root.remove());
  await root.write('etc/istio/pod/labels', proxy.labelsFile);
  await root.write('etc/istio/pod/annotations', proxy.annotationsFile);
  // istiod: the injected CA_ADDR and discovery address name the cluster's; here they point at a test istiod.
  const controlPlane = await startControlPlane(t, root);
  const prepared = await prepareAgentRoot(root, { proxyConfig: controlPlane.proxyConfig });
  const agent = startPilotAgent(proxy.args, {
    cwd: root.directory,
    environment: { ...proxy.environment, ...prepared.environment, CA_ADDR: controlPlane.istiod.address },
  });
  // A no-op once the agent has exited.
  t.teardown(() => {
    agent.kill('SIGKILL');
  });
  let output = '';
  agent.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  await waitFor('the agent to log its start', () =>
    output.includes(
      `starting pilot-agent sidecar for ${pod.name}.shop (identity spiffe://cluster.local/ns/shop/sa/nginx)`,
    ),
  );
  await waitFor('readiness through the stand-in’s 15021', async () => {
    const response = await fetch(`http://127.0.0.1:${prepared.ports.envoyStatus}/healthz/ready`).catch(
      () => undefined,
    );
    return response?.status === 200;
  });
  t.regex(output, /first certificate held for spiffe:\/\/cluster\.local\/ns\/shop\/sa\/nginx/);
  agent.kill('SIGTERM');
  const result = await agent;
  t.is(result.exitCode, 0, output);
  t.regex(output, /\tinfo\treceived SIGTERM, draining Envoy before exiting\n/);
  t.regex(output, /\tinfo\tenvoy\tstarting Envoy epoch 0 \(initial start\): .* --concurrency 2\n/);
  t.notRegex(output, /\t(warn|error)\t/, 'no warnings: every injected flag and variable is understood');
});
