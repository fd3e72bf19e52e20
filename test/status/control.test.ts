import test from 'ava';
import { waitFor } from '../helpers/wait-for.ts';
import { liveEnvoyStats, startFakeEnvoy } from './fakes.ts';
import { httpCall, nonLoopbackAddress, startStatusServer } from './status-fixture.ts';

async function setup(t: Parameters<typeof startStatusServer>[0]) {
  const envoy = await startFakeEnvoy({ stats: { ...liveEnvoyStats }, prometheus: '' });
  t.teardown(() => envoy.close());
  return startStatusServer(t, envoy.port);
}

test('POST /quitquitquit from localhost answers OK, then asks the agent to quit; readiness reports termination', async (t) => {
  const { baseUrl, quits } = await setup(t);
  t.is((await httpCall(`${baseUrl}/healthz/ready`)).status, 200);
  const wrongMethod = await httpCall(`${baseUrl}/quitquitquit`);
  t.is(wrongMethod.status, 405);
  t.is(wrongMethod.body, 'Method Not Allowed\n');
  t.is(quits.length, 0);
  const answer = await httpCall(`${baseUrl}/quitquitquit`, { method: 'POST' });
  t.is(answer.status, 200);
  t.is(answer.body, 'OK');
  await waitFor('the quit callback', () => quits.length === 1);
  const ready = await httpCall(`${baseUrl}/healthz/ready`);
  t.is(ready.status, 503);
  t.is(ready.body.trim(), 'server is terminated: /quitquitquit called');
});

test('POST /drain from localhost answers OK and starts a drain without quitting', async (t) => {
  const { baseUrl, drains, quits } = await setup(t);
  t.is((await httpCall(`${baseUrl}/drain`, { method: 'PUT' })).status, 405);
  const answer = await httpCall(`${baseUrl}/drain`, { method: 'POST' });
  t.is(answer.status, 200);
  t.is(answer.body, 'OK');
  await waitFor('the drain callback', () => drains.length === 1);
  t.is(quits.length, 0);
  t.is((await httpCall(`${baseUrl}/healthz/ready`)).status, 200, 'draining is not shutting down');
});

test('the control endpoints refuse callers that are not on loopback, whatever the method', async (t) => {
  const { server, quits, drains } = await setup(t);
  const address = nonLoopbackAddress();
  if (address === undefined) {
    t.log('this machine has no non-loopback IPv4 address: the remote-caller assertions cannot be made here');
    t.is(quits.length, 0);
    return;
  }
  for (const path of ['/quitquitquit', '/drain']) {
    for (const method of ['POST', 'GET']) {
      const answer = await httpCall(`http://${address}:${server.port}${path}`, { method });
      t.is(answer.status, 403, `${method} ${path}`);
      t.is(answer.body, 'Only requests from localhost are allowed\n');
    }
  }
  t.is(quits.length, 0);
  t.is(drains.length, 0);
});
