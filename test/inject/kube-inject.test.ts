import test from 'ava';
import { parseAppProbers } from '../../agent/config/app-probers.ts';
import { ManifestError } from '../../agent/inject/errors.ts';
import { parseMeshConfig } from '../../agent/inject/injection-settings.ts';
import { istioInitArguments } from '../helpers/istio-init.ts';
import {
  containerNamed,
  environmentOf,
  inject,
  type Json,
  nginxDeployment,
  parseDocuments,
  podTemplateOf,
} from './manifests.ts';

const proxyEnvironmentNames = [
  'PILOT_CERT_PROVIDER',
  'CA_ADDR',
  'POD_NAME',
  'POD_NAMESPACE',
  'INSTANCE_IP',
  'SERVICE_ACCOUNT',
  'HOST_IP',
  'CANONICAL_SERVICE',
  'CANONICAL_REVISION',
  'ISTIO_CPU_LIMIT',
  'PROXY_CONFIG',
  'ISTIO_META_POD_PORTS',
  'ISTIO_META_APP_CONTAINERS',
  'ISTIO_META_CLUSTER_ID',
  'ISTIO_META_NODE_NAME',
  'ISTIO_META_INTERCEPTION_MODE',
  'ISTIO_META_WORKLOAD_NAME',
  'ISTIO_META_OWNER',
  'ISTIO_META_MESH_ID',
  'TRUST_DOMAIN',
];

const sidecarVolumeNames = [
  'workload-socket',
  'credential-socket',
  'workload-certs',
  'istio-envoy',
  'istio-data',
  'istio-podinfo',
  'istio-token',
  'istiod-ca-cert',
];

test('a plain nginx Deployment gains exactly the sidecar containers, variables, ports, probes and volumes', (t) => {
  const { documents, warnings, injectedCount } = inject(nginxDeployment);
  t.deepEqual(warnings, []);
  t.is(injectedCount, 1);
  t.is(documents.length, 1);
  const [deployment] = documents;
  t.is(deployment.spec.replicas, 3);
  t.deepEqual(deployment.spec.selector, { matchLabels: { app: 'nginx' } });
  const template = podTemplateOf(deployment);

  t.deepEqual(
    template.spec.containers.map((container: Json) => container.name),
    ['nginx', 'istio-proxy'],
  );
  t.deepEqual(
    template.spec.initContainers.map((container: Json) => container.name),
    ['istio-init'],
  );
  t.deepEqual(containerNamed(template, 'nginx'), {
    name: 'nginx',
    image: 'nginx:1.27.3',
    ports: [{ containerPort: 80 }],
  });

  const proxy = containerNamed(template, 'istio-proxy');
  t.is(proxy.image, 'docker.io/istio/proxyv2:1.28.0');
  t.deepEqual(proxy.args, [
    'proxy',
    'sidecar',
    '--domain',
    '$(POD_NAMESPACE).svc.cluster.local',
    '--proxyLogLevel=warning',
    '--proxyComponentLogLevel=misc:error',
    '--log_output_level=default:info',
  ]);
  t.deepEqual(
    proxy.env.map((entry: Json) => entry.name),
    proxyEnvironmentNames,
  );
  const environment = environmentOf(proxy);
  const fieldRef = (fieldPath: string) => ({ fieldRef: { fieldPath } });
  t.deepEqual(environment.POD_NAME, fieldRef('metadata.name'));
  t.deepEqual(environment.POD_NAMESPACE, fieldRef('metadata.namespace'));
  t.deepEqual(environment.INSTANCE_IP, fieldRef('status.podIP'));
  t.deepEqual(environment.SERVICE_ACCOUNT, fieldRef('spec.serviceAccountName'));
  t.deepEqual(environment.HOST_IP, fieldRef('status.hostIP'));
  t.deepEqual(environment.ISTIO_META_NODE_NAME, fieldRef('spec.nodeName'));
  t.deepEqual(environment.CANONICAL_SERVICE, fieldRef("metadata.labels['service.istio.io/canonical-name']"));
  t.deepEqual(
    environment.CANONICAL_REVISION,
    fieldRef("metadata.labels['service.istio.io/canonical-revision']"),
  );
  t.deepEqual(environment.ISTIO_CPU_LIMIT, { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } });
  t.is(environment.PILOT_CERT_PROVIDER, 'istiod');
  t.is(environment.CA_ADDR, 'istiod.istio-system.svc:15012');
  t.is(environment.PROXY_CONFIG, '{}\n');
  t.is(environment.ISTIO_META_POD_PORTS, '[\n    {"containerPort":80}\n]');
  t.is(environment.ISTIO_META_APP_CONTAINERS, 'nginx');
  t.is(environment.ISTIO_META_CLUSTER_ID, 'Kubernetes');
  t.is(environment.ISTIO_META_INTERCEPTION_MODE, 'REDIRECT');
  t.is(environment.ISTIO_META_WORKLOAD_NAME, 'nginx-deployment');
  t.is(
    environment.ISTIO_META_OWNER,
    'kubernetes://apis/apps/v1/namespaces/shop/deployments/nginx-deployment',
  );
  t.is(environment.ISTIO_META_MESH_ID, 'cluster.local');
  t.is(environment.TRUST_DOMAIN, 'cluster.local');

  t.deepEqual(proxy.ports, [{ containerPort: 15090, protocol: 'TCP', name: 'http-envoy-prom' }]);
  t.deepEqual(proxy.readinessProbe, {
    httpGet: { path: '/healthz/ready', port: 15021 },
    periodSeconds: 15,
    timeoutSeconds: 3,
    failureThreshold: 4,
  });
  t.deepEqual(proxy.startupProbe, {
    httpGet: { path: '/healthz/ready', port: 15021 },
    periodSeconds: 1,
    timeoutSeconds: 3,
    failureThreshold: 600,
  });
  t.is(proxy.livenessProbe, undefined);
  t.deepEqual(proxy.resources, {
    limits: { cpu: '2', memory: '1Gi' },
    requests: { cpu: '100m', memory: '128Mi' },
  });
  t.deepEqual(proxy.securityContext, {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    privileged: false,
    readOnlyRootFilesystem: true,
    runAsGroup: 1337,
    runAsNonRoot: true,
    runAsUser: 1337,
  });
  t.is(proxy.lifecycle, undefined);
  t.deepEqual(Object.fromEntries(proxy.volumeMounts.map((mount: Json) => [mount.name, mount.mountPath])), {
    'workload-socket': '/var/run/secrets/workload-spiffe-uds',
    'credential-socket': '/var/run/secrets/credential-uds',
    'workload-certs': '/var/run/secrets/workload-spiffe-credentials',
    'istiod-ca-cert': '/var/run/secrets/istio',
    'istio-data': '/var/lib/istio/data',
    'istio-envoy': '/etc/istio/proxy',
    'istio-token': '/var/run/secrets/tokens',
    'istio-podinfo': '/etc/istio/pod',
  });

  const init = containerNamed(template, 'istio-init');
  t.is(init.image, 'docker.io/istio/proxyv2:1.28.0');
  t.deepEqual(init.args, ['istio-iptables', ...istioInitArguments, '--log_output_level=default:info']);
  t.deepEqual(init.securityContext.capabilities, { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
  t.is(init.securityContext.runAsUser, 0);
  t.is(init.securityContext.runAsNonRoot, false);
  t.is(init.env, undefined);

  t.deepEqual(
    template.spec.volumes.map((volume: Json) => volume.name),
    sidecarVolumeNames,
  );
  const volumes = Object.fromEntries(template.spec.volumes.map((volume: Json) => [volume.name, volume]));
  t.deepEqual(volumes['istio-envoy'].emptyDir, { medium: 'Memory' });
  t.deepEqual(volumes['istio-data'].emptyDir, {});
  t.deepEqual(volumes['workload-socket'].emptyDir, {});
  t.deepEqual(volumes['istio-podinfo'].downwardAPI, {
    items: [
      { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
      { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
    ],
  });
  t.deepEqual(volumes['istiod-ca-cert'].configMap, { name: 'istio-ca-root-cert' });
  t.deepEqual(volumes['istio-token'].projected, {
    sources: [
      { serviceAccountToken: { path: 'istio-token', expirationSeconds: 43200, audience: 'istio-ca' } },
    ],
  });

  t.deepEqual(template.metadata.labels, {
    app: 'nginx',
    'security.istio.io/tlsMode': 'istio',
    'service.istio.io/canonical-name': 'nginx',
    'service.istio.io/canonical-revision': 'latest',
  });
  const annotations = template.metadata.annotations;
  t.deepEqual(JSON.parse(annotations['sidecar.istio.io/status']), {
    initContainers: ['istio-init'],
    containers: ['istio-proxy'],
    volumes: sidecarVolumeNames,
    imagePullSecrets: null,
    revision: 'default',
  });
  t.is(annotations['kubectl.kubernetes.io/default-container'], 'nginx');
  t.is(annotations['kubectl.kubernetes.io/default-logs-container'], 'nginx');
  // Metrics merge: Prometheus scrapes the agent, which has nothing of the application's to add here.
  t.is(annotations['prometheus.io/scrape'], 'true');
  t.is(annotations['prometheus.io/port'], '15020');
  t.is(annotations['prometheus.io/path'], '/stats/prometheus');
  t.is(environment.ISTIO_PROMETHEUS_ANNOTATIONS, undefined);
});

test('documents keep their order; CronJob and Pod are injected, a Service passes through unchanged', (t) => {
  const service = `apiVersion: v1
kind: Service
metadata:
  name: reports
spec:
  selector:
    app: reports
  ports:
  - port: 80
    targetPort: http
`;
  const manifest = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly-report
  namespace: batch
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: report
            image: busybox:1.36
            args: ["/bin/sh", "-c", "date"]
---
${service}---
apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: shop
spec:
  serviceAccountName: debugger
  containers:
  - name: shell
    image: busybox:1.36
`;
  const { documents, output } = inject(manifest);
  t.deepEqual(
    documents.map((document) => document.kind),
    ['CronJob', 'Service', 'Pod'],
  );

  const cronJob = documents[0];
  t.is(cronJob.spec.schedule, '0 3 * * *');
  const jobPod = podTemplateOf(cronJob);
  t.deepEqual(
    jobPod.spec.containers.map((container: Json) => container.name),
    ['report', 'istio-proxy'],
  );
  t.is(jobPod.spec.restartPolicy, 'OnFailure');
  t.truthy(jobPod.metadata.annotations['sidecar.istio.io/status']);
  t.is(cronJob.spec.jobTemplate.metadata, undefined);
  const cronEnvironment = environmentOf(containerNamed(jobPod, 'istio-proxy'));
  t.is(cronEnvironment.ISTIO_META_WORKLOAD_NAME, 'nightly-report');
  t.is(
    cronEnvironment.ISTIO_META_OWNER,
    'kubernetes://apis/batch/v1/namespaces/batch/cronjobs/nightly-report',
  );

  t.deepEqual(documents[1], parseDocuments(service)[0]);
  t.true(output.includes(service), 'the Service is written back as it was');

  const pod = documents[2];
  t.deepEqual(
    pod.spec.containers.map((container: Json) => container.name),
    ['shell', 'istio-proxy'],
  );
  t.is(pod.spec.serviceAccountName, 'debugger');
  const podEnvironment = environmentOf(containerNamed(pod, 'istio-proxy'));
  t.is(podEnvironment.ISTIO_META_OWNER, 'kubernetes://apis/v1/namespaces/shop/pods/debug');
  t.is(pod.metadata.labels['service.istio.io/canonical-name'], 'debug');
});

test('injecting an injected manifest changes nothing', (t) => {
  const manifest = `${nginxDeployment}---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9187"
    spec:
      containers:
      - name: postgres
        image: postgres:17
        ports:
        - {name: sql, containerPort: 5432}
        livenessProbe:
          tcpSocket: {port: sql}
`;
  const once = inject(manifest);
  const twice = inject(once.output);
  t.is(twice.output, once.output);
  t.is(twice.injectedCount, 0);
  t.deepEqual(twice.warnings, []);
});

test('sidecar.istio.io/inject "false" as an annotation or a label leaves the workload untouched', (t) => {
  const variants = {
    annotation: `metadata:
      annotations:
        sidecar.istio.io/inject: "false"`,
    label: `metadata:
      labels:
        sidecar.istio.io/inject: "false"`,
    // The label wins over the annotation, as in Istio.
    'label over annotation': `metadata:
      labels:
        sidecar.istio.io/inject: "false"
      annotations:
        sidecar.istio.io/inject: "true"`,
  };
  for (const [variant, metadata] of Object.entries(variants)) {
    const manifest = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
spec:
  selector:
    matchLabels: {app: node-agent}
  template:
    ${metadata}
    spec:
      containers:
      - name: agent
        image: agent:1
`;
    const { documents, warnings, injectedCount } = inject(manifest);
    t.is(injectedCount, 0, variant);
    t.deepEqual(documents, parseDocuments(manifest), variant);
    t.deepEqual(
      warnings,
      ['Skipping injection because DaemonSet "node-agent" has sidecar injection disabled'],
      variant,
    );
  }
  const enabled = inject(`apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {sidecar.istio.io/inject: "true"}
  annotations: {sidecar.istio.io/inject: "false"}
spec:
  containers: [{name: web, image: web:1}]
`);
  t.is(enabled.injectedCount, 1);
});

test('host-network pods and system namespaces are skipped with a warning', (t) => {
  const { injectedCount, warnings } = inject(`apiVersion: v1
kind: Pod
metadata: {name: node-exporter}
spec:
  hostNetwork: true
  containers: [{name: exporter, image: exporter:1}]
---
apiVersion: v1
kind: Pod
metadata: {name: dns, namespace: kube-system}
spec:
  containers: [{name: dns, image: dns:1}]
`);
  t.is(injectedCount, 0);
  t.deepEqual(warnings, [
    'Skipping injection because Pod "node-exporter" has host networking enabled',
    'Skipping injection because Pod "kube-system/dns" is in namespace kube-system, where Istio never injects',
  ]);
});

test('HTTP, TCP and gRPC probes and lifecycle handlers are taken over by the agent, named ports resolved', (t) => {
  const { documents } = inject(`apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop}
spec:
  containers:
  - name: api
    image: api:2
    ports:
    - {name: http, containerPort: 8080}
    - {name: admin, containerPort: 9901}
    - {name: grpc, containerPort: 9090}
    readinessProbe:
      httpGet:
        path: /ready
        port: http
        scheme: HTTPS
        httpHeaders: [{name: X-Probe, value: kubelet}]
      timeoutSeconds: 5
      periodSeconds: 7
    livenessProbe:
      tcpSocket: {port: admin}
      initialDelaySeconds: 3
    startupProbe:
      grpc: {port: 9090, service: api.Health}
      failureThreshold: 30
    lifecycle:
      preStop:
        httpGet: {path: /drain, port: "8080"}
      postStart:
        exec: {command: [touch, /tmp/started]}
  - name: worker
    image: worker:2
    readinessProbe:
      exec: {command: [cat, /tmp/ready]}
`);
  const pod = documents[0];
  const api = containerNamed(pod, 'api');
  t.deepEqual(api.readinessProbe, {
    httpGet: {
      path: '/app-health/api/readyz',
      port: 15020,
      scheme: 'HTTP',
      httpHeaders: [{ name: 'X-Probe', value: 'kubelet' }],
    },
    timeoutSeconds: 5,
    periodSeconds: 7,
  });
  t.deepEqual(api.livenessProbe, {
    httpGet: { path: '/app-health/api/livez', port: 15020 },
    initialDelaySeconds: 3,
  });
  t.deepEqual(api.startupProbe, {
    httpGet: { path: '/app-health/api/startupz', port: 15020 },
    failureThreshold: 30,
  });
  t.deepEqual(api.lifecycle, {
    preStop: { httpGet: { path: '/app-lifecycle/api/prestopz', port: 15020 } },
    postStart: { exec: { command: ['touch', '/tmp/started'] } },
  });
  t.deepEqual(containerNamed(pod, 'worker').readinessProbe, { exec: { command: ['cat', '/tmp/ready'] } });

  const probers = environmentOf(containerNamed(pod, 'istio-proxy')).ISTIO_KUBE_APP_PROBERS;
  t.deepEqual(JSON.parse(probers), {
    '/app-health/api/livez': { tcpSocket: { port: 9901 } },
    '/app-health/api/readyz': {
      httpGet: {
        path: '/ready',
        port: 8080,
        scheme: 'HTTPS',
        httpHeaders: [{ name: 'X-Probe', value: 'kubelet' }],
      },
      timeoutSeconds: 5,
    },
    '/app-health/api/startupz': { grpc: { port: 9090, service: 'api.Health' } },
    '/app-lifecycle/api/prestopz': { httpGet: { path: '/drain', port: 8080 } },
  });
  // Exactly what the agent's status server reads.
  const parsed = parseAppProbers('ISTIO_KUBE_APP_PROBERS', probers);
  t.deepEqual(parsed.get('/app-health/api/readyz'), {
    kind: 'http',
    port: 8080,
    path: '/ready',
    scheme: 'HTTPS',
    headers: [{ name: 'X-Probe', value: 'kubelet' }],
    timeoutSeconds: 5,
  });
  t.deepEqual(parsed.get('/app-health/api/livez'), { kind: 'tcp', port: 9901, timeoutSeconds: 1 });
  t.deepEqual(parsed.get('/app-health/api/startupz'), {
    kind: 'grpc',
    port: 9090,
    service: 'api.Health',
    timeoutSeconds: 1,
  });
  t.is(parsed.size, 4);
});

test('probes on ports the sidecar does not capture, and rewriting turned off, are left alone', (t) => {
  const pod = (annotations: string) => `apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations: {${annotations}}
spec:
  containers:
  - name: web
    image: web:1
    livenessProbe: {httpGet: {path: /live, port: 8080}}
    readinessProbe: {httpGet: {path: /ready, port: 8081}}
`;
  const excluded = inject(pod('traffic.sidecar.istio.io/excludeInboundPorts: "8081"')).documents[0];
  const web = containerNamed(excluded, 'web');
  t.is(web.livenessProbe.httpGet.path, '/app-health/web/livez');
  t.deepEqual(web.readinessProbe, { httpGet: { path: '/ready', port: 8081 } });
  t.deepEqual(
    Object.keys(JSON.parse(environmentOf(containerNamed(excluded, 'istio-proxy')).ISTIO_KUBE_APP_PROBERS)),
    ['/app-health/web/livez'],
  );
  t.is(containerNamed(excluded, 'istio-init').args.at(-2), '15090,15021,8081,15020');

  const off = inject(pod('sidecar.istio.io/rewriteAppHTTPProbers: "false"')).documents[0];
  t.deepEqual(containerNamed(off, 'web').livenessProbe, { httpGet: { path: '/live', port: 8080 } });
  t.is(environmentOf(containerNamed(off, 'istio-proxy')).ISTIO_KUBE_APP_PROBERS, undefined);
});

test("prometheus.io annotations move to ISTIO_PROMETHEUS_ANNOTATIONS and point at the agent's merged metrics", (t) => {
  const pod = (annotations: string) => `apiVersion: v1
kind: Pod
metadata:
  name: shop
  annotations:
${annotations}
spec:
  containers: [{name: shop, image: shop:1}]
`;
  const merged = inject(
    pod(`    team: payments
    prometheus.io/scrape: "true"
    prometheus.io.port: "9113"
    prometheus.io/path: /custom-metrics`),
  ).documents[0];
  t.deepEqual(JSON.parse(environmentOf(containerNamed(merged, 'istio-proxy')).ISTIO_PROMETHEUS_ANNOTATIONS), {
    scrape: 'true',
    path: '/custom-metrics',
    port: '9113',
  });
  const annotations = merged.metadata.annotations;
  t.is(annotations.team, 'payments');
  t.is(annotations['prometheus.io/scrape'], 'true');
  t.is(annotations['prometheus.io/port'], '15020');
  t.is(annotations['prometheus.io/path'], '/stats/prometheus');
  t.is(annotations['prometheus.io.port'], undefined, 'every spelling of the port annotation goes');

  const disabled = inject(pod(`    prometheus.io/scrape: "false"`)).documents[0];
  t.deepEqual(
    Object.keys(disabled.metadata.annotations).filter((key) => key.startsWith('prometheus')),
    ['prometheus.io/scrape'],
  );
  t.is(disabled.metadata.annotations['prometheus.io/scrape'], 'false');
  t.is(environmentOf(containerNamed(disabled, 'istio-proxy')).ISTIO_PROMETHEUS_ANNOTATIONS, undefined);

  const optedOut = inject(
    pod(`    prometheus.istio.io/merge-metrics: "false"
    prometheus.io/port: "9113"`),
  ).documents[0];
  t.is(optedOut.metadata.annotations['prometheus.io/port'], '9113');
  t.is(environmentOf(containerNamed(optedOut, 'istio-proxy')).ISTIO_PROMETHEUS_ANNOTATIONS, undefined);
});

test('the mesh config shapes the sidecar: hold the application, concurrency, trust domain, proxy metadata', (t) => {
  const mesh = parseMeshConfig(
    'mesh.yaml',
    `trustDomain: example.org
enablePrometheusMerge: false
defaultConfig:
  holdApplicationUntilProxyStarts: true
  concurrency: 3
  discoveryAddress: istiod.mesh.svc:15012
  proxyMetadata:
    ISTIO_META_DNS_CAPTURE: "true"
`,
  );
  const template = podTemplateOf(inject(nginxDeployment, { mesh }).documents[0]);
  t.deepEqual(
    template.spec.containers.map((container: Json) => container.name),
    ['istio-proxy', 'nginx'],
  );
  const proxy = containerNamed(template, 'istio-proxy');
  t.deepEqual(proxy.lifecycle, { postStart: { exec: { command: ['pilot-agent', 'wait'] } } });
  t.deepEqual(proxy.args.slice(-2), ['--concurrency', '3']);
  const environment = environmentOf(proxy);
  t.deepEqual(JSON.parse(environment.PROXY_CONFIG), {
    holdApplicationUntilProxyStarts: true,
    concurrency: 3,
    discoveryAddress: 'istiod.mesh.svc:15012',
    proxyMetadata: { ISTIO_META_DNS_CAPTURE: 'true' },
  });
  t.is(environment.TRUST_DOMAIN, 'example.org');
  t.is(environment.ISTIO_META_MESH_ID, 'example.org');
  t.is(environment.ISTIO_META_DNS_CAPTURE, 'true');
  t.deepEqual(environmentOf(containerNamed(template, 'istio-init')), { ISTIO_META_DNS_CAPTURE: 'true' });
  t.is(template.metadata.annotations['prometheus.io/port'], undefined, 'merge disabled by the mesh config');

  // The istio ConfigMap, as kubectl prints it, works too.
  const fromConfigMap = parseMeshConfig(
    'istio.yaml',
    `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |-
    trustDomain: corp.example
`,
  );
  t.is(fromConfigMap.trustDomain, 'corp.example');
  const error = t.throws(() => parseMeshConfig('mesh.yaml', 'defaultConfig:\n  concurrency: lots\n'));
  t.regex(
    error.message,
    /^mesh\.yaml: defaultConfig: field concurrency: "\\"lots\\"" is not a non-negative integer/,
  );
});

test('pod annotations override the defaults: image, log levels, interception, resources, readiness, capture', (t) => {
  const template = inject(`apiVersion: v1
kind: Pod
metadata:
  name: tuned
  annotations:
    sidecar.istio.io/proxyImage: registry.example/pilot-agent-ts:0.1.0
    sidecar.istio.io/logLevel: debug
    sidecar.istio.io/componentLogLevel: upstream:debug
    sidecar.istio.io/agentLogLevel: default:debug
    sidecar.istio.io/interceptionMode: TPROXY
    sidecar.istio.io/proxyCPU: 50m
    sidecar.istio.io/proxyMemoryLimit: 256Mi
    readiness.status.sidecar.istio.io/periodSeconds: "5"
    traffic.sidecar.istio.io/excludeOutboundIPRanges: 10.0.0.0/8
    traffic.sidecar.istio.io/excludeOutboundPorts: "5432"
    proxy.istio.io/config: '{"concurrency": 1}'
spec:
  containers: [{name: app, image: app:1}]
`).documents[0];
  const proxy = containerNamed(template, 'istio-proxy');
  t.is(proxy.image, 'registry.example/pilot-agent-ts:0.1.0');
  t.deepEqual(proxy.args.slice(4), [
    '--proxyLogLevel=debug',
    '--proxyComponentLogLevel=upstream:debug',
    '--log_output_level=default:debug',
    '--concurrency',
    '1',
  ]);
  t.deepEqual(proxy.resources, { limits: { memory: '256Mi' }, requests: { cpu: '50m' } });
  t.is(proxy.readinessProbe.periodSeconds, 5);
  t.deepEqual(proxy.securityContext.capabilities, { add: ['NET_ADMIN'], drop: ['ALL'] });
  t.is(proxy.securityContext.runAsUser, 0);
  t.is(environmentOf(proxy).ISTIO_META_INTERCEPTION_MODE, 'TPROXY');
  const init = containerNamed(template, 'istio-init');
  t.is(init.image, 'registry.example/pilot-agent-ts:0.1.0');
  t.deepEqual(init.args.slice(7), [
    '-m',
    'TPROXY',
    '-i',
    '*',
    '-x',
    '10.0.0.0/8',
    '-b',
    '*',
    '-d',
    '15090,15021,15020',
    '-o',
    '5432',
    '--log_output_level=default:debug',
  ]);
});

test('comments and unrelated fields survive injection; a List is injected item by item', (t) => {
  const { output, documents } = inject(`# Front end
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: ReplicaSet
  metadata:
    name: frontend # the storefront
  spec:
    replicas: 2
    selector: {matchLabels: {tier: frontend}}
    template:
      metadata:
        labels: {tier: frontend}
      spec:
        containers:
        # PHP front end
        - name: php-redis
          image: php-redis:v3
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: settings}
  data: {mode: "on"}
`);
  t.regex(output, /^# Front end\n/);
  t.regex(output, /name: frontend # the storefront\n/);
  t.regex(output, /# PHP front end\n\s*- name: php-redis\n/);
  t.regex(output, /mode: "on"/, 'YAML 1.1 booleans stay strings');
  const [replicaSet, configMap] = documents[0].items;
  t.deepEqual(
    replicaSet.spec.template.spec.containers.map((container: Json) => container.name),
    ['php-redis', 'istio-proxy'],
  );
  t.deepEqual(configMap.data, { mode: 'on' });
});

test('JSON input (kubectl get -o json) comes out injected as block YAML', (t) => {
  const { output, documents } = inject(
    JSON.stringify({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'migrate' },
      spec: {
        template: { spec: { restartPolicy: 'Never', containers: [{ name: 'migrate', image: 'm:1' }] } },
      },
    }),
  );
  t.false(output.includes('{ "apiVersion"'));
  t.regex(output, /^apiVersion: batch\/v1\nkind: Job\n/);
  t.deepEqual(
    documents[0].spec.template.spec.containers.map((container: Json) => container.name),
    ['migrate', 'istio-proxy'],
  );
});

test('bad documents are errors naming the input, the document, the workload and the field', (t) => {
  const cases: [string, RegExp][] = [
    ['a: [1\n', /^test\.yaml: document 1: invalid YAML: /],
    [
      `${nginxDeployment}---\napiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: old}\n`,
      /^test\.yaml: document 2 \(Deployment "old"\): apiVersion: "apps\/v1beta1" is not supported for kind Deployment \(expected apps\/v1\)$/,
    ],
    [
      'kind: Pod\nmetadata: {name: p}\n',
      /^test\.yaml: document 1 \(Pod "p"\): apiVersion: missing for kind Pod \(expected v1\)$/,
    ],
    ['- just\n- a list\n', /^test\.yaml: document 1: expected a Kubernetes object/],
    [
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n',
      /^test\.yaml: document 1 \(Deployment "d"\): spec\.template: expected a mapping, found nothing$/,
    ],
    [
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, ports: [{containerPort: http}]}]}\n',
      /^test\.yaml: document 1 \(Pod "p"\): spec\.containers\[0\]\.ports\[0\]\.containerPort: expected a port number/,
    ],
    [
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, livenessProbe: {httpGet: {port: web}}}]}\n',
      /^test\.yaml: document 1 \(Pod "p"\): spec\.containers\[0\]\.livenessProbe\.httpGet\.port: named port "web" is not declared/,
    ],
    [
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {version: 2}}\nspec: {containers: [{name: a}]}\n',
      /^test\.yaml: document 1 \(Pod "p"\): metadata\.labels\["version"\]: expected a string, found 2/,
    ],
    [
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {sidecar.istio.io/inject: "yes please"}}\nspec: {containers: [{name: a}]}\n',
      /^test\.yaml: document 1 \(Pod "p"\): metadata\.annotations\["sidecar\.istio\.io\/inject"\]: "yes please" is not "true" or "false"$/,
    ],
    [
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {sidecar.istio.io/logLevel: loud}}\nspec: {containers: [{name: a}]}\n',
      /^test\.yaml: document 1 \(Pod "p"\): metadata\.annotations\["sidecar\.istio\.io\/logLevel"\]: unknown log level "loud"/,
    ],
    [
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {proxy.istio.io/config: "concurrency: many"}}\nspec: {containers: [{name: a}]}\n',
      /^test\.yaml: document 1 \(Pod "p"\): metadata\.annotations\["proxy\.istio\.io\/config"\]: field concurrency: .* is not a non-negative integer$/,
    ],
    [
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {sidecar.istio.io/proxyCPU: lots}}\nspec: {containers: [{name: a}]}\n',
      /^test\.yaml: document 1 \(Pod "p"\): metadata\.annotations\["sidecar\.istio\.io\/proxyCPU"\]: "lots" is not a Kubernetes quantity/,
    ],
    [
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a}, {name: istio-proxy}]}\n',
      /^test\.yaml: document 1 \(Pod "p"\): spec\.containers\[1\]: a container named istio-proxy is already there/,
    ],
    [
      'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: apps/v2, kind: Deployment, metadata: {name: x}}\n',
      /^test\.yaml: document 1 \(List "\(unnamed\)"\): items\[0\]\.apiVersion: "apps\/v2" is not supported for kind Deployment/,
    ],
    [
      'apiVersion: v1\nkind: List\nitems:\n- {kind: Service}\n- {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: []}}\n',
      /^test\.yaml: document 1 \(Pod "p"\): items\[1\]\.spec\.containers: expected at least one container$/,
    ],
  ];
  for (const [manifest, expected] of cases) {
    const error = t.throws(() => inject(manifest), { instanceOf: ManifestError }, manifest);
    t.regex(error.message, expected, manifest);
  }
});

test('status.sidecar.istio.io/port "0" turns off the proxy probes and the takeover of application probes', (t) => {
  const template = inject(`apiVersion: v1
kind: Pod
metadata:
  name: quiet
  annotations: {status.sidecar.istio.io/port: "0"}
spec:
  containers:
  - name: app
    image: app:1
    livenessProbe: {httpGet: {path: /live, port: 8080}}
`).documents[0];
  const proxy = containerNamed(template, 'istio-proxy');
  t.is(proxy.readinessProbe, undefined);
  t.is(proxy.startupProbe, undefined);
  t.deepEqual(containerNamed(template, 'app').livenessProbe, { httpGet: { path: '/live', port: 8080 } });
  t.is(containerNamed(template, 'istio-init').args.at(-2), '15090,15021');
  t.is(template.metadata.annotations['prometheus.io/port'], undefined);
});
