import test from 'ava';
import { execa } from 'execa';
import { startPrometheus } from '../helpers/prometheus-server.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { adsTypeUrls } from '../istiod/ads-service.ts';
import { epochPid, isRunning } from '../proxy/agent-envoy.ts';
import { get, startMesh } from './mesh.ts';

test('readiness: 503 with the reason while config has not arrived, then 200 through the Envoy stand-in’s 15021 listener', async (t) => {
  const mesh = await startMesh(t);
  await waitFor(
    'the agent’s status port',
    async () => (await get(`${mesh.statusUrl}/healthz/ready`)).status !== 0,
  );
  // Hold LDS: CDS arrives but listeners do not.
  mesh.controlPlane.ads.holdResponses(adsTypeUrls.listener);
  const notReady = await waitFor('the not-fully-received reason', async () => {
    const answer = await get(`${mesh.statusUrl}/healthz/ready`);
    return /not fully received/.test(answer.body) ? answer : undefined;
  });
  t.is(notReady.status, 503);
  mesh.controlPlane.ads.releaseResponses(adsTypeUrls.listener);
  const ready = await waitFor('readiness through 15021', async () => {
    const answer = await get(mesh.readinessUrl);
    return answer.status === 200 ? answer : undefined;
  });
  t.is(ready.status, 200);
  await mesh.agent.waitForOutput(
    'the first certificate',
    /first certificate held for spiffe:\/\/cluster\.local\/ns\/default\/sa\/productpage/,
  );
  t.is((await get(`${mesh.statusUrl}/app-health/productpage/readyz`)).status, 200);
  t.is((await get(`${mesh.statusUrl}/app-health/productpage/livez`)).status, 200);
  t.is((await get(`${mesh.statusUrl}/app-health/productpage/startupz`)).status, 400);
});

test('one scrape of the agent holds the agent’s, Envoy’s and the application’s metrics, valid for promtool and Prometheus', async (t) => {
  const mesh = await startMesh(t);
  await waitFor('readiness through 15021', async () => (await get(mesh.readinessUrl)).status === 200);
  const scrape = await get(`${mesh.statusUrl}/stats/prometheus`, {
    headers: { accept: 'text/plain;version=0.0.4' },
  });
  t.is(scrape.status, 200);
  t.regex(scrape.contentType, /^text\/plain; version=0\.0\.4/);
  for (const series of [
    /^istio_agent_scrapes_total \d+$/m,
    /^istio_agent_cert_expiry_seconds\{resource_name="default"\} [\d.e+]+$/m,
    /^istio_agent_xds_proxy_requests \d+$/m,
    /^istio_agent_envoy_epoch 0$/m,
    /^istio_agent_process_resident_memory_bytes \d+$/m,
    /^envoy_server_live\{\} 1$/m,
    /^envoy_listener_manager_workers_started\{\} 1$/m,
    /^sample_requests_total \d+$/m,
  ]) {
    t.regex(scrape.body, series);
  }
  const promtool = await execa('promtool', ['check', 'metrics'], {
    input: scrape.body,
    reject: false,
    all: true,
  });
  t.not(promtool.exitCode, 1, promtool.all);
  t.notRegex(promtool.all ?? '', /error parsing|duplicate/i);

  const prometheus = await startPrometheus(t, mesh.root, [{ job: 'sidecar', port: mesh.agent.ports.status }]);
  const [target] = await prometheus.scrapedTargets();
  t.is(target?.health, 'up', target?.lastError);
  t.is(await prometheus.firstValue('envoy_server_live{job="sidecar"}'), '1');
  t.is(await prometheus.firstValue('count(sample_requests_total{job="sidecar"})'), '1');
  t.is(await prometheus.firstValue('count(istio_agent_scrapes_total{job="sidecar"})'), '1');
});

test('SIGTERM: readiness turns 503 "server is terminated" while Envoy drains, then the agent exits 0', async (t) => {
  const mesh = await startMesh(t, { proxyConfig: { terminationDrainDuration: '3s' } });
  await waitFor('readiness through 15021', async () => (await get(mesh.readinessUrl)).status === 200);
  mesh.agent.subprocess.kill('SIGTERM');
  const draining = await waitFor('the terminated answer', async () => {
    const answer = await get(mesh.readinessUrl);
    return answer.status === 503 ? answer : undefined;
  });
  t.regex(draining.body, /server is terminated/);
  t.is((await mesh.agent.exited).exitCode, 0);
});

test('POST /quitquitquit from localhost stops Envoy and the agent at once, with exit code 0', async (t) => {
  const mesh = await startMesh(t, { proxyConfig: { terminationDrainDuration: '30s' } });
  await waitFor('readiness through 15021', async () => (await get(mesh.readinessUrl)).status === 200);
  const envoyPid = await epochPid(mesh.agent, 0);
  t.is((await get(`${mesh.statusUrl}/quitquitquit`)).status, 405);
  const answer = await get(`${mesh.statusUrl}/quitquitquit`, { method: 'POST' });
  t.is(answer.status, 200);
  const started = Date.now();
  t.is((await mesh.agent.exited).exitCode, 0);
  t.true(Date.now() - started < 20_000, 'no 30 s termination drain');
  t.false(await isRunning(envoyPid));
  t.regex(mesh.agent.output(), /\/quitquitquit: stopping Envoy and the agent without draining/);
});
