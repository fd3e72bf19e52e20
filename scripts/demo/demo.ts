#!/usr/bin/env node
// `npm run demo`: the agent end to end on this machine, with nothing to set up beyond `npm ci`.
// A temporary pod root, a test istiod (CA + ADS) and a sample application in this process, and the real
// `pilot-agent proxy sidecar` as a child with the Envoy stand-in as its Envoy. See `--help`.
import { createServer } from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { type SampleApp, startSampleApp } from '../../test/fixtures/sample-app.ts';
import {
  samplePod,
  samplePodAnnotations,
  samplePodAppEnvironment,
  samplePodArgs,
  samplePodIdentityEnvironment,
  samplePodLabels,
} from '../../test/fixtures/sample-pod.ts';
import { prepareAgentRoot } from '../../test/helpers/agent-root.ts';
import { startPilotAgent } from '../../test/helpers/cli.ts';
import { type ControlPlane, launchControlPlane } from '../../test/helpers/control-plane.ts';
import { writeKubeletVolume } from '../../test/helpers/kubelet-volume.ts';
import { createTemporaryRoot, type TemporaryRoot } from '../../test/helpers/temporary-root.ts';
import { type DemoOptions, type DemoPorts, parseDemoCommandLine, portFlagOf } from './options.ts';

const readyTimeoutMilliseconds = 120_000;
const out = (line = '') => process.stdout.write(`${line}\n`);
const fail = (line: string) => process.stderr.write(`demo: ${line}\n`);

/** A given port that something else holds fails here, naming its flag, rather than deep inside a part. */
async function checkPortsFree(ports: DemoPorts): Promise<string | undefined> {
  for (const [key, port] of Object.entries(ports) as [keyof DemoPorts, number][]) {
    const problem = await new Promise<string | undefined>((resolve) => {
      const server = createServer();
      server.once('error', (error: NodeJS.ErrnoException) =>
        resolve(
          `${portFlagOf(key)} ${port}: ${error.code === 'EADDRINUSE' ? 'already in use' : error.message}`,
        ),
      );
      server.listen(port, () => server.close(() => resolve(undefined)));
    });
    if (problem) return problem;
  }
  return undefined;
}

/** Passes a child's output through line by line with a prefix; calls `onLine` for each line. */
function passThrough(stream: Readable, prefix: string, onLine: (line: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      process.stdout.write(`${prefix}${line}\n`);
      onLine(line);
    }
  });
  stream.on('end', () => {
    if (pending) process.stdout.write(`${prefix}${pending}\n`);
  });
}

const shellQuote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

async function run(options: DemoOptions): Promise<number> {
  const portProblem = await checkPortsFree(options.ports);
  if (portProblem) {
    fail(portProblem);
    return 2;
  }

  const stops: (() => Promise<unknown>)[] = [];
  let root: TemporaryRoot | undefined;
  const cleanUp = async () => {
    for (const stop of stops.reverse()) await stop().catch((error: Error) => fail(error.message));
    if (root) {
      if (options.keep) out(`demo: kept ${root.directory}`);
      else await root.remove();
    }
  };

  // Signals are taken from the start so that Ctrl-C during start-up also cleans up.
  let stopRequested: NodeJS.Signals | undefined;
  let onStopRequest: (signal: NodeJS.Signals) => void = () => {};
  const stopRequest = new Promise<NodeJS.Signals>((resolve) => (onStopRequest = resolve));
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      if (stopRequested) return;
      stopRequested = signal;
      onStopRequest(signal);
    });

  try {
    root = await createTemporaryRoot('pa-demo-');
    const podDirectory = root.resolve('etc/istio/pod');
    const labelsFile = path.join(podDirectory, 'labels');

    const app: SampleApp = await startSampleApp(
      options.ports.app !== undefined ? { port: options.ports.app } : {},
    );
    stops.push(() => app.stop());
    const controlPlane: ControlPlane = await launchControlPlane(
      root,
      options.ports.istiod !== undefined ? { port: options.ports.istiod } : {},
    );
    stops.push(() => controlPlane.istiod.stop());

    const prepared = await prepareAgentRoot(root, {
      ports: {
        ...(options.ports.proxyAdmin !== undefined ? { proxyAdmin: options.ports.proxyAdmin } : {}),
        ...(options.ports.status !== undefined ? { status: options.ports.status } : {}),
        ...(options.ports.envoyStatus !== undefined ? { envoyStatus: options.ports.envoyStatus } : {}),
        ...(options.ports.envoyPrometheus !== undefined
          ? { envoyPrometheus: options.ports.envoyPrometheus }
          : {}),
      },
      // Short drains so that Ctrl-C and a hot restart finish within a second or two.
      proxyConfig: { ...controlPlane.proxyConfig, drainDuration: '1s', parentShutdownDuration: '1s' },
    });
    const { ports } = prepared;
    await writeKubeletVolume(podDirectory, {
      labels: samplePodLabels(),
      annotations: samplePodAnnotations(ports.status),
    });

    out('pilot-agent demo');
    out(
      `  root:         ${root.directory}${options.keep ? ' (kept on exit)' : ' (removed on exit; --keep keeps it)'}`,
    );
    out(
      `  istiod:       ${controlPlane.istiod.address} (CA + ADS over TLS, token ${root.resolve('var/run/secrets/tokens/istio-token')})`,
    );
    out(`  application:  http://127.0.0.1:${app.port}/ (/metrics, /healthz)`);

    const agent = startPilotAgent(samplePodArgs, {
      cwd: root.directory,
      detached: true,
      environment: {
        ...samplePodIdentityEnvironment,
        ...samplePodAppEnvironment(app.port),
        ...prepared.environment,
      },
    });
    out(`  agent:        pilot-agent ${samplePodArgs.join(' ')} (pid ${agent.pid})`);
    out();
    let agentExited = false;
    // The agent has its own process group (Ctrl-C reaches only this process); never leave it behind.
    const killAgentOnExit = () => {
      if (!agentExited) agent.kill('SIGKILL');
    };
    process.once('exit', killAgentOnExit);
    let firstCertificate: RegExpExecArray | undefined;
    if (agent.all)
      passThrough(agent.all, '[agent] ', (line) => {
        firstCertificate ??= /first certificate held for (\S+?),? .*expires ([^,)]+)/.exec(line) ?? undefined;
      });
    const agentExit = agent.then((result) => {
      agentExited = true;
      return { exitCode: result.exitCode, signal: result.signal };
    });
    stops.push(async () => {
      if (!agentExited) agent.kill('SIGTERM');
      await agentExit;
    });

    const readinessUrl = `http://127.0.0.1:${ports.envoyStatus}/healthz/ready`;
    const started = Date.now();
    const ready = (async () => {
      while (Date.now() - started < readyTimeoutMilliseconds) {
        const status = await fetch(readinessUrl, { signal: AbortSignal.timeout(2_000) }).then(
          (response) => response.status,
          () => 0,
        );
        if (status === 200 && firstCertificate) return true;
        await delay(100);
      }
      return false;
    })();
    const outcome = await Promise.race([
      ready.then((isReady) => ({ kind: isReady ? ('ready' as const) : ('timeout' as const) })),
      agentExit.then((exit) => ({ kind: 'agent-exited' as const, exit })),
      stopRequest.then((signal) => ({ kind: 'signal' as const, signal })),
    ]);
    if (outcome.kind === 'timeout') {
      fail(
        `the sidecar was not ready within ${readyTimeoutMilliseconds / 1000} s (${readinessUrl}); stopping`,
      );
      await cleanUp();
      return 1;
    }
    if (outcome.kind === 'agent-exited') {
      fail(`the agent exited before it was ready (${describeExit(outcome.exit)})`);
      await cleanUp();
      return 1;
    }
    if (outcome.kind === 'ready') {
      const statusUrl = `http://127.0.0.1:${ports.status}`;
      const adminUrl = `http://127.0.0.1:${ports.proxyAdmin}`;
      out();
      out(`The sidecar is ready after ${((Date.now() - started) / 1000).toFixed(1)} s. Where to look:`);
      out(`  readiness (through Envoy):  ${readinessUrl}`);
      out(`  merged metrics:             ${statusUrl}/stats/prometheus`);
      out(`  Envoy admin:                ${adminUrl}/  (${adminUrl}/server_info, /stats, /certs)`);
      out(`  application probe:          ${statusUrl}/app-health/${samplePod.app}/readyz`);
      out(`  bootstrap:                  ${root.resolve('etc/istio/proxy/envoy-rev.json')}`);
      out(`  certificate:                ${firstCertificate?.[1]} (expires ${firstCertificate?.[2]})`);
      out('To watch a hot restart, change the pod’s labels in another terminal:');
      out(`  printf 'app="${samplePod.app}"\\nversion="v2"\\n' > ${shellQuote(labelsFile)}`);
      out(
        `  (editing ${labelsFile} by hand works too: the agent watches it), then see restart_epoch 1 in ${adminUrl}/server_info`,
      );
      out('Ctrl-C stops everything.');
    }

    // Running (or a signal came during start-up): wait for Ctrl-C/SIGTERM or the agent's death.
    const end = await Promise.race([
      agentExit.then((exit) => ({ kind: 'agent-exited' as const, exit })),
      stopRequest.then((signal) => ({ kind: 'signal' as const, signal })),
    ]);
    if (end.kind === 'agent-exited') {
      fail(`the agent exited unexpectedly (${describeExit(end.exit)}); stopping`);
      await cleanUp();
      return 1;
    }
    out(`demo: ${end.signal}: stopping the agent (SIGTERM, drain), istiod and the application`);
    agent.kill('SIGTERM');
    const exit = await agentExit;
    await cleanUp();
    process.off('exit', killAgentOnExit);
    if (exit.exitCode !== 0) {
      fail(`the agent exited with ${describeExit(exit)}`);
      return 1;
    }
    out('demo: stopped');
    return 0;
  } catch (error) {
    fail(`start-up failed: ${(error as Error).message}`);
    await cleanUp();
    return 1;
  }
}

function describeExit(exit: { exitCode?: number | undefined; signal?: string | undefined }): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}`;
}

const commandLine = await parseDemoCommandLine(process.argv.slice(2));
if (commandLine.kind === 'help') {
  out(commandLine.text);
} else if (commandLine.kind === 'error') {
  fail(commandLine.message);
  process.stderr.write(`\n${commandLine.help}\n`);
  process.exitCode = 2;
} else {
  process.exitCode = await run(commandLine.options);
  // Nothing the demo started is left; exit even if a handle (a gRPC channel) lingers.
  process.exit();
}
