import { mkdir } from 'node:fs/promises';
import test from 'ava';
import { prepareAgentRoot } from '../helpers/agent-root.ts';
import { runPilotAgent, startPilotAgent } from '../helpers/cli.ts';
import { createTemporaryRoot, type TemporaryRoot } from '../helpers/temporary-root.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { badInputs } from './bad-inputs.ts';
import { injectedPodArgs, injectedPodEnvironment } from './injected-pod.ts';

async function temporaryRoot(t: { teardown(fn: () => Promise<void>): void }): Promise<TemporaryRoot> {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  return root;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

for (const input of badInputs) {
  test(`the CLI stops with exit code 255 and one clear line: ${input.name}`, async (t) => {
    const root = await temporaryRoot(t);
    for (const [relative, content] of Object.entries(input.files)) await root.write(relative, content);
    const result = await runPilotAgent(['proxy', 'sidecar', ...input.args], {
      cwd: root.directory,
      environment: { POD_NAMESPACE: 'shop', ...input.environment },
    });
    t.is(result.exitCode, 255);
    const lines = result.stderr.trim().split('\n');
    t.is(lines.length, 1, result.stderr);
    const anchored = input.expected.startsWith('^');
    const expected = input.expected.replace(/^\^/, '').replace(/^\/ROOT/, escapeRegExp(root.directory));
    t.regex(lines[0] ?? '', new RegExp(`^Error: ${anchored ? '' : '.*'}${expected}`));
  });
}

test('a missing POD_NAMESPACE stops the proxy with exit code 255', async (t) => {
  const root = await temporaryRoot(t);
  const result = await runPilotAgent(['proxy', 'sidecar'], { cwd: root.directory });
  t.is(result.exitCode, 255);
  t.regex(result.stderr, /^Error: POD_NAMESPACE: is not set/);
});

test('a downward-API file that exists but cannot be read stops the proxy with exit code 255', async (t) => {
  const root = await temporaryRoot(t);
  // A directory in place of the file: unreadable as a file even for root.
  await mkdir(root.resolve('etc/istio/pod/annotations'), { recursive: true });
  const result = await runPilotAgent(['proxy'], {
    cwd: root.directory,
    environment: { POD_NAMESPACE: 'shop' },
  });
  t.is(result.exitCode, 255);
  t.is(result.stderr.trim(), `Error: ${root.resolve('etc/istio/pod/annotations')}: cannot be read (EISDIR)`);
});

test('an unknown proxy type is a start-up error', async (t) => {
  const root = await temporaryRoot(t);
  const result = await runPilotAgent(['proxy', 'waypoint'], {
    cwd: root.directory,
    environment: { POD_NAMESPACE: 'shop' },
  });
  t.is(result.exitCode, 255);
  t.regex(result.stderr, /^Error: proxy type: "waypoint" is not supported \(expected sidecar or router\)/);
});

test('the args and environment of a real injected pod start the agent, which stops with exit 0 on SIGTERM', async (t) => {
  const root = await temporaryRoot(t);
  await root.write('etc/istio/pod/labels', 'app="nginx"\npod-template-hash="7c5ddbdf54"\n');
  await root.write('etc/istio/pod/annotations', 'sidecar.istio.io/status="{\\"version\\":\\"x\\"}"\n');
  const prepared = await prepareAgentRoot(root);
  const agent = startPilotAgent([...injectedPodArgs, '--someFutureFlag=1'], {
    cwd: root.directory,
    environment: { ...injectedPodEnvironment, ...prepared.environment, PILOT_CERT_PROVIDER: 'none' },
  });
  t.teardown(() => void agent.kill('SIGKILL'));
  let output = '';
  agent.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor('the agent to log its start', () => /starting pilot-agent sidecar/.test(output));
  agent.kill('SIGTERM');
  const result = await agent;
  t.is(result.exitCode, 0, output);
  t.regex(output, /\twarn\tunknown flag --someFutureFlag ignored/);
  t.regex(
    output,
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\tinfo\tstarting pilot-agent sidecar for nginx-7c5ddbdf54-x2x9k\.shop/m,
  );
  t.regex(output, /identity spiffe:\/\/cluster\.local\/ns\/shop\/sa\/nginx/);
});

test('--log_as_json writes JSON lines and --log_output_level filters by level', async (t) => {
  const root = await temporaryRoot(t);
  const agent = startPilotAgent(
    ['proxy', '--log_as_json', '--log_output_level=default:warn', '--unknownThing'],
    {
      cwd: root.directory,
      environment: { POD_NAMESPACE: 'shop', PILOT_CERT_PROVIDER: 'none' },
    },
  );
  t.teardown(() => void agent.kill('SIGKILL'));
  let output = '';
  let errors = '';
  agent.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  agent.stderr?.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  await waitFor('the warning line', () => output.includes('\n')).catch((error: Error) => {
    throw new Error(
      `${error.message}; stdout so far: ${JSON.stringify(output)}; stderr: ${JSON.stringify(errors)}`,
    );
  });
  agent.kill('SIGTERM');
  t.is((await agent).exitCode, 0);
  const lines = output
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  t.true(lines.length >= 1);
  for (const line of lines) {
    t.not(line.level, 'info', `info lines are filtered out at default:warn: ${JSON.stringify(line)}`);
    t.regex(String(line.time), /Z$/);
  }
  t.regex(String(lines[0]?.msg), /unknown flag --unknownThing/);
});

test('help describes every command and the proxy flags', async (t) => {
  const root = await temporaryRoot(t);
  const help = await runPilotAgent(['--help'], { cwd: root.directory });
  t.is(help.exitCode, 0);
  for (const command of [
    'proxy',
    'bootstrap',
    'wait',
    'request',
    'istio-iptables',
    'kube-inject',
    'version',
  ]) {
    t.regex(help.stdout, new RegExp(`pilot-agent ${command}`));
  }
  const proxyHelp = await runPilotAgent(['proxy', '--help'], { cwd: root.directory });
  for (const flag of [
    '--domain',
    '--serviceCluster',
    '--proxyLogLevel',
    '--proxyComponentLogLevel',
    '--concurrency',
    '--meshConfig',
    '--templateFile',
    '--outlierLogPath',
    '--stsPort',
    '--tokenManagerPlugin',
    '--log_output_level',
    '--log_as_json',
  ]) {
    t.true(proxyHelp.stdout.includes(flag), flag);
  }
});

test('no command is a usage error', async (t) => {
  const root = await temporaryRoot(t);
  const result = await runPilotAgent([], { cwd: root.directory });
  t.is(result.exitCode, 255);
  t.regex(result.stderr, /a command is required/);
});

test('version prints the agent and Istio versions', async (t) => {
  const root = await temporaryRoot(t);
  const result = await runPilotAgent(['version', '-o', 'json'], { cwd: root.directory });
  t.is(result.exitCode, 0);
  const info = JSON.parse(result.stdout) as { version: string; istioVersion: string };
  t.regex(info.version, /^\d+\.\d+\.\d+/);
  t.regex(info.istioVersion, /^1\.\d+\.\d+$/);
});
