import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { runPilotAgent } from '../helpers/cli.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';
import { containerNamed, nginxDeployment, parseDocuments, podTemplateOf } from './manifests.ts';

async function temporaryRoot(t: { teardown(fn: () => Promise<void>): void }) {
  const root = await createTemporaryRoot('pa-inject-');
  t.teardown(() => root.remove());
  return root;
}

test('kube-inject -f - reads standard input and writes the injected manifest to standard output', async (t) => {
  const root = await temporaryRoot(t);
  const result = await runPilotAgent(['kube-inject', '-f', '-'], {
    cwd: root.directory,
    input: nginxDeployment,
  });
  t.is(result.exitCode, 0, result.all);
  t.is(result.stderr, '');
  const [deployment] = parseDocuments(result.stdout);
  t.deepEqual(
    podTemplateOf(deployment).spec.containers.map((container: { name: string }) => container.name),
    ['nginx', 'istio-proxy'],
  );
});

test('kube-inject -f file -o file writes the output file, and --image sets both containers image', async (t) => {
  const root = await temporaryRoot(t);
  await root.write('in/deployment.yaml', nginxDeployment);
  const result = await runPilotAgent(
    [
      'kube-inject',
      '-f',
      'in/deployment.yaml',
      '-o',
      'out.yaml',
      '--image',
      'registry.example/pilot-agent-ts:0.1.0',
    ],
    { cwd: root.directory },
  );
  t.is(result.exitCode, 0, result.all);
  t.is(result.stdout, '');
  const template = podTemplateOf(parseDocuments(await readFile(root.resolve('out.yaml'), 'utf8'))[0]);
  t.is(containerNamed(template, 'istio-proxy').image, 'registry.example/pilot-agent-ts:0.1.0');
  t.is(containerNamed(template, 'istio-init').image, 'registry.example/pilot-agent-ts:0.1.0');
});

test('kube-inject reads the mesh config and the revision from flags', async (t) => {
  const root = await temporaryRoot(t);
  await root.write('mesh.yaml', 'trustDomain: corp.example\ndefaultConfig:\n  concurrency: 2\n');
  const result = await runPilotAgent(
    ['kube-inject', '-f', '-', '--meshConfigFile', 'mesh.yaml', '--revision', 'canary'],
    { cwd: root.directory, input: nginxDeployment },
  );
  t.is(result.exitCode, 0, result.all);
  const template = podTemplateOf(parseDocuments(result.stdout)[0]);
  const proxy = containerNamed(template, 'istio-proxy');
  const environment = Object.fromEntries(
    proxy.env.map((entry: { name: string; value?: string }) => [entry.name, entry.value]),
  );
  t.is(environment.TRUST_DOMAIN, 'corp.example');
  t.is(environment.CA_ADDR, 'istiod-canary.istio-system.svc:15012');
  t.deepEqual(proxy.args.slice(-2), ['--concurrency', '2']);
  t.is(JSON.parse(template.metadata.annotations['sidecar.istio.io/status']).revision, 'canary');
});

test('skipped workloads are reported on standard error and written unchanged', async (t) => {
  const root = await temporaryRoot(t);
  const optedOut = nginxDeployment.replace(
    '      labels:\n        app: nginx\n',
    '      labels:\n        app: nginx\n        sidecar.istio.io/inject: "false"\n',
  );
  const result = await runPilotAgent(['kube-inject', '-f', '-'], { cwd: root.directory, input: optedOut });
  t.is(result.exitCode, 0, result.all);
  t.is(
    result.stderr,
    'Skipping injection because Deployment "shop/nginx-deployment" has sidecar injection disabled',
  );
  t.deepEqual(parseDocuments(result.stdout), parseDocuments(optedOut));
});

const errorCases: {
  name: string;
  args: string[];
  input?: string;
  files?: Record<string, string>;
  stderr: RegExp;
}[] = [
  {
    name: 'malformed YAML names the document',
    args: ['kube-inject', '-f', '-'],
    input: `${nginxDeployment}---\napiVersion: v1\nkind: Service\nmetadata: {name: broken\n`,
    stderr: /^Error: stdin: document 2: invalid YAML: .+ at line 27, column 1\n$/,
  },
  {
    name: 'an unsupported apiVersion names the document and the workload',
    args: ['kube-inject', '-f', 'apps.yaml'],
    files: {
      'apps.yaml': `${nginxDeployment}---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: extensions/v1beta1\nkind: DaemonSet\nmetadata: {name: legacy, namespace: shop}\n`,
    },
    stderr:
      /^Error: apps\.yaml: document 3 \(DaemonSet "shop\/legacy"\): apiVersion: "extensions\/v1beta1" is not supported for kind DaemonSet \(expected apps\/v1\)\n$/,
  },
  {
    name: 'a bad field names the document and the field',
    args: ['kube-inject', '-f', '-'],
    input: nginxDeployment.replace('containerPort: 80', 'containerPort: eighty'),
    stderr:
      /^Error: stdin: document 1 \(Deployment "shop\/nginx-deployment"\): spec\.template\.spec\.containers\[0\]\.ports\[0\]\.containerPort: expected a port number \(1 to 65535\), found "eighty"\n$/,
  },
  {
    name: 'a bad annotation names it',
    args: ['kube-inject', '-f', '-'],
    input: nginxDeployment.replace(
      '      labels:\n        app: nginx\n',
      '      labels:\n        app: nginx\n      annotations:\n        sidecar.istio.io/interceptionMode: IPVS\n',
    ),
    stderr:
      /^Error: stdin: document 1 \(Deployment "shop\/nginx-deployment"\): spec\.template\.metadata\.annotations\["sidecar\.istio\.io\/interceptionMode"\]: "IPVS" is not REDIRECT, TPROXY or NONE\n$/,
  },
  { name: 'no -f', args: ['kube-inject'], stderr: /^Error: --filename: is required/ },
  {
    name: 'an unreadable file',
    args: ['kube-inject', '-f', 'missing.yaml'],
    stderr: /^Error: missing\.yaml: cannot be read \(ENOENT\)\n$/,
  },
  {
    name: 'an istioctl flag this command does not have',
    args: ['kube-inject', '-f', '-', '--injectConfigFile', 'inject.yaml'],
    input: nginxDeployment,
    stderr: /^Error: --injectConfigFile: is not a kube-inject flag/,
  },
  {
    name: 'a positional argument instead of -f',
    args: ['kube-inject', 'deployment.yaml'],
    stderr:
      /^Error: kube-inject: unexpected argument "deployment\.yaml" \(the manifest is given with -f\)\n$/,
  },
  {
    name: 'a bad mesh config',
    args: ['kube-inject', '-f', '-', '--meshConfig', 'mesh.yaml'],
    input: nginxDeployment,
    files: { 'mesh.yaml': 'trustDomain: [a, b]\n' },
    stderr: /^Error: mesh\.yaml: field trustDomain: .* is not a trust domain\n$/,
  },
  {
    name: 'an output file that cannot be written',
    args: ['kube-inject', '-f', '-', '-o', 'no/such/directory/out.yaml'],
    input: nginxDeployment,
    stderr: /^Error: no\/such\/directory\/out\.yaml: cannot be written \(ENOENT\)\n$/,
  },
];

for (const errorCase of errorCases) {
  test(`kube-inject exits 255 with one line on standard error: ${errorCase.name}`, async (t) => {
    const root = await temporaryRoot(t);
    for (const [name, content] of Object.entries(errorCase.files ?? {})) await root.write(name, content);
    const result = await runPilotAgent(errorCase.args, {
      cwd: root.directory,
      ...(errorCase.input !== undefined ? { input: errorCase.input } : {}),
    });
    t.is(result.exitCode, 255, result.all);
    t.regex(`${result.stderr}\n`, errorCase.stderr);
    t.is(result.stdout, '', 'nothing is written when any document is bad');
  });
}

test('a failed injection with -o leaves no output file behind', async (t) => {
  const root = await temporaryRoot(t);
  const result = await runPilotAgent(['kube-inject', '-f', '-', '-o', 'out.yaml'], {
    cwd: root.directory,
    input: `${nginxDeployment}---\nkind: Pod\n`,
  });
  t.is(result.exitCode, 255);
  t.regex(result.stderr, /^Error: stdin: document 2 \(Pod "\(unnamed\)"\): apiVersion: missing for kind Pod/);
  t.false(existsSync(root.resolve('out.yaml')));
});
