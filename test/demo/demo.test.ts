import { access } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { get } from '../agent/mesh.ts';
import { repositoryRoot } from '../helpers/paths.ts';
import { freePorts } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { isRunning, serverInfo } from '../proxy/agent-envoy.ts';

const demoScript = path.join(repositoryRoot, 'scripts/demo/demo.ts');

/** `npm run demo -- args` as a child process, its output collected. */
function startDemo(t: ExecutionContext, args: readonly string[]) {
  const demo = execa(process.execPath, [demoScript, ...args], {
    cwd: repositoryRoot,
    reject: false,
    all: true,
    buffer: false,
  });
  let output = '';
  demo.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = demo.then((result) => result.exitCode);
  t.teardown(async () => {
    // The demo stops its agent on SIGTERM as on Ctrl-C.
    demo.kill('SIGTERM');
    await exited;
    if (!t.passed) t.log(`demo output:\n${output.split('\n').slice(-80).join('\n')}`);
  });
  // waitFor keeps polling through errors, so an early exit fails the wait through the race instead.
  const printed = (description: string, pattern: RegExp) =>
    Promise.race([
      waitFor(description, () => pattern.exec(output) ?? undefined, { timeoutMilliseconds: 120_000 }),
      exited.then((code) => {
        throw new Error(`the demo exited (${code}) before printing ${description}:\n${output}`);
      }),
    ]);
  return { demo, exited, output: () => output, printed };
}

const urlAfter = (label: string) => new RegExp(`^  ${label}:\\s+(http://127\\.0\\.0\\.1:\\d+\\S*)`, 'm');

test('npm run demo: ready through the printed URLs, merged metrics, a hot restart from the printed command, Ctrl-C leaves nothing behind', async (t) => {
  const [admin, status, envoyStatus, envoyPrometheus, istiod, app] = (await freePorts(6)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const run = startDemo(t, [
    `--admin-port=${admin}`,
    `--status-port=${status}`,
    `--envoy-status-port=${envoyStatus}`,
    `--envoy-prometheus-port=${envoyPrometheus}`,
    `--istiod-port=${istiod}`,
    `--app-port=${app}`,
  ]);
  await run.printed('the ready banner', /Ctrl-C stops everything\./);
  const output = run.output();
  const root = /^ {2}root:\s+(\S+)/m.exec(output)?.[1] ?? '';
  const readinessUrl = urlAfter('readiness \\(through Envoy\\)').exec(output)?.[1];
  const metricsUrl = urlAfter('merged metrics').exec(output)?.[1];
  const adminUrl = urlAfter('Envoy admin').exec(output)?.[1];
  const probeUrl = urlAfter('application probe').exec(output)?.[1];
  t.is(readinessUrl, `http://127.0.0.1:${envoyStatus}/healthz/ready`);
  t.is(metricsUrl, `http://127.0.0.1:${status}/stats/prometheus`);
  t.is(adminUrl, `http://127.0.0.1:${admin}/`);
  t.is(probeUrl, `http://127.0.0.1:${status}/app-health/productpage/readyz`);
  t.regex(output, new RegExp(`istiod:\\s+\\S+:${istiod} `));
  t.regex(output, new RegExp(`application:\\s+http://127\\.0\\.0\\.1:${app}/`));
  t.regex(
    output,
    /certificate:\s+spiffe:\/\/cluster\.local\/ns\/default\/sa\/productpage \(expires \d{4}-\d\d-\d\dT/,
  );
  const bootstrap = /^ {2}bootstrap:\s+(\S+)/m.exec(output)?.[1] ?? '';
  t.is(bootstrap, path.join(root, 'etc/istio/proxy/envoy-rev.json'));
  await access(bootstrap);

  t.is((await get(readinessUrl ?? '')).status, 200);
  t.is((await get(probeUrl ?? '')).status, 200);
  const metrics = await get(metricsUrl ?? '');
  t.is(metrics.status, 200);
  t.regex(metrics.body, /^envoy_server_live\{\} 1$/m);
  t.regex(metrics.body, /^istio_agent_scrapes_total \d+$/m);
  t.regex(metrics.body, /^sample_requests_total \d+$/m);

  // The printed command, run as a user would paste it.
  const command = /^ {2}(printf .* > .*labels')$/m.exec(output)?.[1];
  t.truthy(command, 'a hot-restart command is printed');
  const before = await serverInfo(admin);
  t.deepEqual([before.state, before.epoch], ['LIVE', 0]);
  await execa('sh', ['-c', command ?? 'false']);
  await waitFor(
    'epoch 1 LIVE in /server_info',
    async () => {
      const info = await serverInfo(admin);
      return info.state === 'LIVE' && info.epoch === 1;
    },
    { timeoutMilliseconds: 60_000 },
  );
  t.is((await get(readinessUrl ?? '')).status, 200);

  const pids = [...run.output().matchAll(/Envoy epoch \d+ running as pid (\d+)/g)].map((match) =>
    Number(match[1]),
  );
  const agentPid = Number(/\(pid (\d+)\)/.exec(output)?.[1]);
  t.is(pids.length, 2);
  run.demo.kill('SIGINT');
  t.is(await run.exited, 0);
  t.regex(run.output(), /demo: stopped/);
  await t.throwsAsync(access(root), { code: 'ENOENT' });
  for (const pid of [agentPid, ...pids]) t.false(await isRunning(pid), `pid ${pid} is gone`);
});

test('npm run demo: an agent that dies is reported, and the demo exits non-zero after cleaning up', async (t) => {
  const run = startDemo(t, []);
  await run.printed('the ready banner', /Ctrl-C stops everything\./);
  const root = /^ {2}root:\s+(\S+)/m.exec(run.output())?.[1] ?? '';
  const agentPid = Number(/\(pid (\d+)\)/.exec(run.output())?.[1]);
  const envoyPid = Number(/Envoy epoch 0 running as pid (\d+)/.exec(run.output())?.[1]);
  process.kill(agentPid, 'SIGKILL');
  t.is(await run.exited, 1);
  t.regex(run.output(), /the agent exited unexpectedly \(signal SIGKILL\)/);
  await t.throwsAsync(access(root), { code: 'ENOENT' });
  // The stand-in follows its parent (Envoy's PR_SET_PDEATHSIG).
  await waitFor('the stand-in to follow the agent', async () => !(await isRunning(envoyPid)));
});

test('npm run demo: bad flags and busy ports fail before anything starts, naming the flag', async (t) => {
  const help = await execa(process.execPath, [demoScript, '--help'], { reject: false });
  t.is(help.exitCode, 0);
  t.regex(help.stdout, /--envoy-status-port/);
  const notAPort = await execa(process.execPath, [demoScript, '--status-port', 'fifteen'], { reject: false });
  t.is(notAPort.exitCode, 2);
  t.regex(notAPort.stderr, /--status-port: "fifteen" is not a port \(1-65535\)/);
  const unknown = await execa(process.execPath, [demoScript, '--statusport', '1'], { reject: false });
  t.is(unknown.exitCode, 2);
  t.regex(unknown.stderr, /Unknown argument: statusport/);
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const busy = (holder.address() as { port: number }).port;
  const inUse = await execa(process.execPath, [demoScript, '--admin-port', String(busy)], { reject: false });
  t.is(inUse.exitCode, 2);
  t.regex(inUse.stderr, new RegExp(`--admin-port ${busy}: already in use`));
});
