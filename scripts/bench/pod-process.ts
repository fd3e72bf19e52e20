/**
 * A full pod (scripts/bench/pod.ts) in a process of its own, so that the test istiod and the sample app do
 * not share an event loop with a load generator. Prints `{"adminUrl","envoyPrometheusUrl","readinessUrl",
 * "statusUrl","agentPid"}` once ready through the stand-in's 15021 listener; stops the pod on SIGTERM.
 *
 *   node scripts/bench/pod-process.ts [--envoy-prometheus-series N]
 */
import { parseArgs } from 'node:util';
import { createBenchLifetime } from './lifetime.ts';
import { startPod, waitForOk } from './pod.ts';

const { values } = parseArgs({ options: { 'envoy-prometheus-series': { type: 'string' } } });
const lifetime = createBenchLifetime();
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await lifetime.end();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
const series = values['envoy-prometheus-series'];
const mesh = await startPod(
  lifetime,
  series === undefined ? {} : { environment: { ENVOY_STANDIN_EXTRA_PROMETHEUS_SERIES: series } },
);
await waitForOk(mesh.readinessUrl, { isAlive: () => !mesh.agent.hasExited() });
process.stdout.write(
  `${JSON.stringify({
    adminUrl: `http://127.0.0.1:${mesh.agent.ports.proxyAdmin}`,
    envoyPrometheusUrl: `http://127.0.0.1:${mesh.agent.ports.envoyPrometheus}`,
    readinessUrl: mesh.readinessUrl,
    statusUrl: mesh.statusUrl,
    agentPid: mesh.agent.pid,
  })}\n`,
);
