import test from 'ava';
import { liveEnvoyStats, startFakeEnvoy } from './fakes.ts';
import { httpCall, sampleValue, startStatusServer } from './status-fixture.ts';

const ready = (baseUrl: string) => httpCall(`${baseUrl}/healthz/ready`);

test('readiness reports each of Istio’s Envoy conditions in order, with its message as the body', async (t) => {
  const envoy = await startFakeEnvoy({ stats: {}, prometheus: '' });
  t.teardown(() => envoy.close());
  const { baseUrl } = await startStatusServer(t, envoy.port);
  const expect = async (stats: Record<string, number>, status: number, body: string) => {
    envoy.options.stats = stats;
    const answer = await ready(baseUrl);
    t.is(answer.status, status, body);
    t.is(answer.body.trim(), body);
  };
  await expect(
    {},
    503,
    'config not received from XDS server (is Istiod running?): cds updates: 0 successful, 0 rejected; lds updates: 0 successful, 0 rejected',
  );
  await expect(
    { 'listener_manager.lds.update_success': 1 },
    503,
    'config not fully received from XDS server: cds updates: 0 successful, 0 rejected; lds updates: 1 successful, 0 rejected',
  );
  await expect(
    { 'cluster_manager.cds.update_rejected': 1, 'listener_manager.lds.update_success': 1 },
    503,
    'config received from XDS server, but was rejected: cds updates: 0 successful, 1 rejected; lds updates: 1 successful, 0 rejected',
  );
  const configured = { 'cluster_manager.cds.update_success': 1, 'listener_manager.lds.update_success': 1 };
  await expect(configured, 503, 'failed to get readiness stats: server.state is not yet updated:');
  await expect(
    { ...configured, 'server.state': 3, 'listener_manager.workers_started': 0 },
    503,
    'server is not live, current state is: INITIALIZING',
  );
  await expect(
    { ...configured, 'server.state': 0, 'listener_manager.workers_started': 0 },
    503,
    'workers have not yet started',
  );
  await expect(liveEnvoyStats, 200, '');
});

test('both Envoy checks are cached once true: later probes do not ask Envoy, even when it stops answering', async (t) => {
  const envoy = await startFakeEnvoy({ stats: { ...liveEnvoyStats }, prometheus: '' });
  const { baseUrl, registry, logs } = await startStatusServer(t, envoy.port);
  t.is((await ready(baseUrl)).status, 200);
  const asked = envoy.requests.length;
  t.is(asked, 2, 'one config check and one state check');
  t.regex(logs.join('\n'), /info default Readiness succeeded in \d+\.\d+s/);
  const startup = sampleValue(await registry.metrics(), 'istio_agent_startup_duration_seconds');
  t.true(startup !== undefined && startup > 0, 'istio_agent_startup_duration_seconds is recorded');
  await envoy.close();
  for (let probe = 0; probe < 5; probe++) t.is((await ready(baseUrl)).status, 200);
  t.is(envoy.requests.length, asked);
});

test('the config check is cached alone while the state check keeps being asked', async (t) => {
  const envoy = await startFakeEnvoy({
    stats: {
      'cluster_manager.cds.update_success': 1,
      'listener_manager.lds.update_success': 1,
      'server.state': 2,
      'listener_manager.workers_started': 0,
    },
    prometheus: '',
  });
  t.teardown(() => envoy.close());
  const { baseUrl } = await startStatusServer(t, envoy.port);
  t.is((await ready(baseUrl)).body.trim(), 'server is not live, current state is: PRE_INITIALIZING');
  envoy.options.stats = { 'server.state': 0, 'listener_manager.workers_started': 1 };
  t.is((await ready(baseUrl)).status, 200, 'the earlier config success is remembered');
  const statsRequests = envoy.requests.filter((line) => line.includes('/stats?'));
  t.is(statsRequests.filter((line) => line.includes('cluster_manager')).length, 1);
  t.is(statsRequests.filter((line) => line.includes('server')).length, 2);
  t.true(statsRequests.every((line) => line.includes('usedonly')));
});

test('an Envoy admin port that does not answer is the reason', async (t) => {
  const envoy = await startFakeEnvoy({ stats: {}, prometheus: '' });
  const port = envoy.port;
  await envoy.close();
  const { baseUrl } = await startStatusServer(t, port);
  const answer = await ready(baseUrl);
  t.is(answer.status, 503);
  t.regex(answer.body, /ECONNREFUSED/);
});

test('the agent’s own conditions come after Envoy’s; a reason is logged once per change', async (t) => {
  const envoy = await startFakeEnvoy({ stats: { ...liveEnvoyStats }, prometheus: '' });
  t.teardown(() => envoy.close());
  let certificate: string | undefined = 'first certificate not yet held';
  const { baseUrl, logs, server } = await startStatusServer(t, envoy.port, {
    readinessConditions: [() => certificate],
  });
  for (let probe = 0; probe < 3; probe++) {
    const answer = await ready(baseUrl);
    t.is(answer.status, 503);
    t.is(answer.body.trim(), 'first certificate not yet held');
  }
  t.is(
    logs.filter((line) => line === 'warn default Envoy proxy is NOT ready: first certificate not yet held')
      .length,
    1,
  );
  certificate = undefined;
  t.is((await ready(baseUrl)).status, 200);
  t.is(logs.filter((line) => line === 'info default Envoy proxy is ready').length, 1);
  server.readiness.addCondition(() => 'SDS socket not yet serving');
  t.is((await ready(baseUrl)).body.trim(), 'SDS socket not yet serving');
});

test('once shutdown began every probe answers 503 "server is terminated"', async (t) => {
  const envoy = await startFakeEnvoy({ stats: { ...liveEnvoyStats }, prometheus: '' });
  t.teardown(() => envoy.close());
  const { baseUrl, server } = await startStatusServer(t, envoy.port);
  t.is((await ready(baseUrl)).status, 200);
  server.readiness.terminate();
  const answer = await ready(baseUrl);
  t.is(answer.status, 503);
  t.is(answer.body.trim(), 'server is terminated');
});

test('concurrent probes share one round of admin requests', async (t) => {
  const envoy = await startFakeEnvoy({ stats: { ...liveEnvoyStats }, prometheus: '' });
  t.teardown(() => envoy.close());
  const { baseUrl } = await startStatusServer(t, envoy.port);
  const answers = await Promise.all(Array.from({ length: 20 }, () => ready(baseUrl)));
  t.true(answers.every((answer) => answer.status === 200));
  t.is(envoy.requests.length, 2);
});
