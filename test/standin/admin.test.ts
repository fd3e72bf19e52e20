import { Agent, request } from 'node:http';
import test from 'ava';
import {
  adminGet,
  adminPost,
  baseBootstrap,
  freePort,
  httpListener,
  httpRequest,
  readJsonLines,
  startStandin,
  statValue,
  temporaryRoot,
  waitFor,
  waitForLive,
  writeBootstrap,
} from './harness.ts';

const okRoute = [{ prefix: '/', directResponse: { status: 200, body: 'ok' } }];

test('a LIVE stand-in answers the admin API as Envoy does', async (t) => {
  const root = await temporaryRoot(t);
  const [adminPort, listenerPort] = [await freePort(), await freePort()];
  const bootstrap = baseBootstrap(adminPort);
  bootstrap.static_resources = {
    listeners: [httpListener('0.0.0.0_test', listenerPort, okRoute)],
    clusters: [],
  };
  const file = await writeBootstrap(root, bootstrap);
  const requestLog = root.resolve('admin-requests.jsonl');
  const envoy = startStandin(t, ['-c', file, '--disable-hot-restart', '-l', 'warning'], {
    environment: { ENVOY_STANDIN_ADMIN_REQUEST_LOG: requestLog },
  });
  t.deepEqual(await waitForLive(adminPort).then((r) => r.body), 'LIVE\n');

  const info = JSON.parse((await adminGet(adminPort, '/server_info')).body) as {
    state: string;
    hot_restart_version: string;
    version: string;
    uptime_current_epoch: string;
    node: { id: string };
    command_line_options: Record<string, unknown>;
  };
  t.is(info.state, 'LIVE');
  t.is(info.hot_restart_version, 'disabled');
  t.is(info.command_line_options.restart_epoch, 0);
  t.is(info.command_line_options.base_id, '0');
  t.is(info.command_line_options.config_path, file);
  t.is(info.command_line_options.drain_strategy, 'Gradual');
  t.regex(info.uptime_current_epoch, /^\d+s$/);
  t.regex(info.version, /^[0-9a-f]{40}\/1\.37\.0\/Clean\/RELEASE\/BoringSSL$/);
  t.is(info.node.id, 'sidecar~10.1.2.3~app-1.default~default.svc.cluster.local');

  // The agent's own readiness queries.
  const state = await adminGet(
    adminPort,
    '/stats?usedonly&filter=^(server\\.state|listener_manager\\.workers_started)',
  );
  t.is(state.body, 'listener_manager.workers_started: 1\nserver.state: 0\n');
  const config = await adminGet(
    adminPort,
    '/stats?usedonly&filter=^(cluster_manager\\.cds|listener_manager\\.lds)\\.(update_success|update_rejected)$',
  );
  t.is(config.body, '', 'no xDS, so no update counters were ever written');
  const all = await adminGet(adminPort, '/stats');
  t.regex(all.body, /^cluster_manager\.active_clusters: 0$/m);
  t.regex(all.body, /^server\.hot_restart_epoch: 0$/m);
  t.regex(all.body, /^server\.initialization_time_ms: P0\(nan,\d+\) P25\(nan,/m);
  const json = JSON.parse((await adminGet(adminPort, '/stats?format=json&filter=^server\\.state$')).body);
  t.deepEqual(json, { stats: [{ name: 'server.state', value: 0 }] });
  t.is((await adminGet(adminPort, '/stats?filter=(')).status, 400);

  const prometheus = await adminGet(adminPort, '/stats/prometheus');
  t.regex(String(prometheus.headers['content-type']), /^text\/plain/);
  const lines = prometheus.body.split('\n');
  t.false(lines.some((line) => line.startsWith('# HELP')));
  const types = lines.filter((line) => line.startsWith('# TYPE '));
  t.is(new Set(types.map((line) => line.split(' ')[2])).size, types.length, 'one # TYPE per family');
  t.true(
    lines
      .filter((line) => line !== '' && !line.startsWith('#'))
      .every((line) => /^envoy_[a-zA-Z0-9_]+\{/.test(line)),
  );
  t.true(lines.includes('# TYPE envoy_server_state gauge'));
  t.true(lines.includes('envoy_server_state{} 0'));
  t.true(lines.includes('# TYPE envoy_server_initialization_time_ms histogram'));
  t.true(lines.some((line) => /^envoy_server_initialization_time_ms_bucket\{le="0\.5"\} \d+$/.test(line)));
  t.true(lines.some((line) => /^envoy_server_initialization_time_ms_bucket\{le="3600000"\} 1$/.test(line)));
  t.true(lines.includes('envoy_server_initialization_time_ms_bucket{le="+Inf"} 1'));
  t.true(lines.some((line) => /^envoy_server_initialization_time_ms_sum\{\} \d+$/.test(line)));
  t.true(lines.includes('envoy_server_initialization_time_ms_count{} 1'));
  t.true(
    lines.includes(`envoy_listener_downstream_cx_active{envoy_listener_address="0.0.0.0_${listenerPort}"} 0`),
    'listener stats are tagged with the listener address',
  );

  t.deepEqual(
    await adminGet(adminPort, '/listeners').then((r) => r.body),
    `0.0.0.0_test::0.0.0.0:${listenerPort}\n`,
  );
  t.deepEqual(JSON.parse((await adminGet(adminPort, '/listeners?format=json')).body), {
    listener_statuses: [
      {
        name: '0.0.0.0_test',
        local_address: { socket_address: { address: '0.0.0.0', port_value: listenerPort } },
      },
    ],
  });
  t.deepEqual(JSON.parse((await adminGet(adminPort, '/certs')).body), { certificates: [] });
  t.is((await adminGet(adminPort, '/hot_restart_version')).body, 'disabled');

  const notFound = await adminGet(adminPort, '/no_such_thing');
  t.is(notFound.status, 404);
  t.regex(notFound.body, /^invalid path\. admin commands are:\n {2}\/: Admin home page\n/);
  const getQuit = await adminGet(adminPort, '/quitquitquit');
  t.is(getQuit.status, 405);
  t.is(getQuit.body, 'Method GET not allowed, POST required.');
  t.is((await adminGet(adminPort, '/logging')).status, 405);

  // Logging levels change live: an info line appears only once the level allows it.
  const listing = await adminPost(adminPort, '/logging');
  t.regex(listing.body, /^active loggers:\n {2}admin: warning\n/);
  t.false(envoy.logs.some((line) => line.includes('[info]')));
  t.regex((await adminPost(adminPort, '/logging?level=info')).body, / {2}upstream: info\n/);
  await envoy.waitForLog(/\[info\]\[admin\] .*change all log levels: level='info'/);
  const paths = await adminPost(adminPort, '/logging?paths=upstream:error,misc:trace');
  t.regex(paths.body, / {2}misc: trace\n/);
  t.regex(paths.body, / {2}upstream: error\n/);
  t.regex((await adminPost(adminPort, '/logging?router=critical')).body, / {2}router: critical\n/);
  const badLogger = await adminPost(adminPort, '/logging?bogus=debug');
  t.is(badLogger.status, 400);
  t.regex(badLogger.body, /^error: unknown logger name\n\nusage: \/logging\?<name>=<level>/);

  // /healthcheck/fail turns LIVE into DRAINING for /ready and server.state, and back.
  t.is((await adminPost(adminPort, '/healthcheck/fail')).body, 'OK\n');
  const draining = await adminGet(adminPort, '/ready');
  t.deepEqual([draining.status, draining.body], [503, 'DRAINING\n']);
  t.is(await statValue(adminPort, 'server.state'), 1);
  await adminPost(adminPort, '/healthcheck/ok');
  t.is((await adminGet(adminPort, '/ready')).status, 200);

  const quit = await adminPost(adminPort, '/quitquitquit');
  t.is(quit.body, 'OK\n');
  t.deepEqual(await envoy.exited, { exitCode: 0, signal: undefined });

  const logged = readJsonLines(requestLog).map((entry) => `${entry.method} ${entry.path}`);
  t.is(logged.at(-1), 'POST /quitquitquit');
  t.true(logged.includes('POST /healthcheck/fail'));
  t.true(logged.indexOf('POST /healthcheck/fail') < logged.indexOf('POST /healthcheck/ok'));
  t.true(readJsonLines(requestLog).every((entry) => entry.pid === envoy.pid && entry.epoch === 0));
});

const refused = (port: number) =>
  httpRequest({ port }, 'GET', '/').then(
    () => false,
    (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED',
  );

test('drain_listeners stops listeners; inboundonly only those with traffic_direction INBOUND', async (t) => {
  const root = await temporaryRoot(t);
  const [adminPort, inboundPort, outboundPort] = [await freePort(), await freePort(), await freePort()];
  const bootstrap = baseBootstrap(adminPort);
  bootstrap.static_resources = {
    clusters: [],
    listeners: [
      httpListener('virtualInbound', inboundPort, okRoute, { trafficDirection: 'INBOUND' }),
      httpListener('virtualOutbound', outboundPort, okRoute, { trafficDirection: 'OUTBOUND' }),
    ],
  };
  const file = await writeBootstrap(root, bootstrap);
  startStandin(t, ['-c', file, '--disable-hot-restart']);
  await waitForLive(adminPort);
  t.is((await httpRequest({ port: inboundPort }, 'GET', '/')).body, 'ok');

  const skipExitAlone = await adminPost(adminPort, '/drain_listeners?skip_exit');
  t.deepEqual([skipExitAlone.status, skipExitAlone.body], [400, 'skip_exit requires graceful\n']);

  t.is((await adminPost(adminPort, '/drain_listeners?inboundonly')).body, 'OK\n');
  t.true(await refused(inboundPort));
  t.is((await httpRequest({ port: outboundPort }, 'GET', '/')).body, 'ok');

  await adminPost(adminPort, '/drain_listeners');
  t.true(await refused(outboundPort));
  t.is(
    (await adminGet(adminPort, '/ready')).status,
    200,
    'draining listeners does not change the server state',
  );
});

/** Sends requests over one kept-alive connection, returning each response's Connection header. */
function keepAliveClient(port: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return {
    get: () =>
      new Promise<{ connection: string | undefined; status: number }>((resolve, reject) => {
        const outgoing = request({ host: '127.0.0.1', port, path: '/', agent }, (response) => {
          response.resume();
          response.on('end', () =>
            resolve({ connection: response.headers.connection, status: response.statusCode ?? 0 }),
          );
        });
        outgoing.on('error', reject);
        outgoing.end();
      }),
    close: () => agent.destroy(),
  };
}

for (const skipExit of [false, true]) {
  test(`graceful drain${skipExit ? ' with skip_exit' : ''}: connections are asked to close, then listeners ${skipExit ? 'stay up' : 'stop'}`, async (t) => {
    const root = await temporaryRoot(t);
    const [adminPort, inboundPort] = [await freePort(), await freePort()];
    const bootstrap = baseBootstrap(adminPort);
    bootstrap.static_resources = {
      clusters: [],
      listeners: [httpListener('virtualInbound', inboundPort, okRoute, { trafficDirection: 'INBOUND' })],
    };
    const file = await writeBootstrap(root, bootstrap);
    const events = root.resolve('events.jsonl');
    startStandin(
      t,
      ['-c', file, '--disable-hot-restart', '--drain-time-s', '1', '--drain-strategy', 'immediate'],
      {
        environment: { ENVOY_STANDIN_EVENT_LOG: events },
      },
    );
    await waitForLive(adminPort);
    const client = keepAliveClient(inboundPort);
    t.teardown(() => client.close());
    t.is((await client.get()).connection, 'keep-alive');

    await adminPost(adminPort, `/drain_listeners?inboundonly&graceful${skipExit ? '&skip_exit' : ''}`);
    // During the drain the listener still accepts, but responses close their connection.
    const during = await httpRequest({ port: inboundPort }, 'GET', '/');
    t.is(during.headers.connection, 'close');
    await waitFor('the drain sequence to end', () =>
      readJsonLines(events).some((entry) => entry.event === 'drain_sequence_complete'),
    );
    if (skipExit) t.is((await httpRequest({ port: inboundPort }, 'GET', '/')).status, 200);
    else t.true(await refused(inboundPort));
  });
}
