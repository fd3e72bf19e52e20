import test from 'ava';
import { validateBootstrap } from '../../bootstrap/validate.ts';
import { runPilotAgent } from '../helpers/cli.ts';
import { createTemporaryRoot, type TemporaryRoot } from '../helpers/temporary-root.ts';
import { injectedPod } from './fixtures.ts';

/** A temporary container root holding the injected pod's downward-API files and mesh config. */
async function podRoot(t: { teardown(fn: () => Promise<void>): void }): Promise<TemporaryRoot> {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  for (const [relative, text] of Object.entries(injectedPod.files)) await root.write(relative, text);
  return root;
}

const bootstrapArgs = ['bootstrap', ...injectedPod.args.slice(1)];

test('pilot-agent bootstrap prints the bootstrap for the injected pod, valid against Envoy’s API', async (t) => {
  const root = await podRoot(t);
  const result = await runPilotAgent(bootstrapArgs, {
    cwd: root.directory,
    environment: injectedPod.environment,
  });
  t.is(result.exitCode, 0, result.all);
  const bootstrap = JSON.parse(result.stdout);
  t.deepEqual(validateBootstrap(bootstrap), { valid: true, ignoredFields: [] });
  t.is(bootstrap.node.id, 'sidecar~10.244.0.12~details-v1-5974b67c8-wclnd.default~default.svc.cluster.local');
  t.is(bootstrap.node.cluster, 'details.default');
  t.is(bootstrap.node.metadata.LABELS.app, 'details');
  t.is(bootstrap.dynamic_resources.ads_config.api_type, 'DELTA_GRPC');
  t.is(
    bootstrap.static_resources.clusters.find((cluster: { name: string }) => cluster.name === 'xds-grpc')
      .load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path,
    root.resolve('etc/istio/proxy/XDS'),
  );
  t.is(result.stderr, '', 'nothing to warn about');
});

test('pilot-agent bootstrap merges ISTIO_BOOTSTRAP_OVERRIDE and reports a bad one by file and field', async (t) => {
  const root = await podRoot(t);
  await root.write('etc/istio/override.yaml', 'node:\n  metadata:\n    HOST: $(HOST_IP)\n');
  await root.write('etc/istio/bad-override.yaml', 'node:\n  metadatta: {}\n');
  const [good, bad] = await Promise.all([
    runPilotAgent(bootstrapArgs, {
      cwd: root.directory,
      environment: { ...injectedPod.environment, ISTIO_BOOTSTRAP_OVERRIDE: './etc/istio/override.yaml' },
    }),
    runPilotAgent(bootstrapArgs, {
      cwd: root.directory,
      environment: { ...injectedPod.environment, ISTIO_BOOTSTRAP_OVERRIDE: './etc/istio/bad-override.yaml' },
    }),
  ]);
  t.is(good.exitCode, 0, good.all);
  t.is(JSON.parse(good.stdout).node.metadata.HOST, '172.18.0.2');
  t.is(bad.exitCode, 255);
  t.is(bad.stdout, '');
  t.is(
    bad.stderr.trim(),
    `Error: ${root.resolve('etc/istio/bad-override.yaml')}: invalid Envoy bootstrap at node.metadatta: unknown field "metadatta" in envoy.config.core.v3.Node`,
  );
});

test('pilot-agent bootstrap --check: exit 0 for a valid file, 255 and the field path for an invalid one', async (t) => {
  const root = await podRoot(t);
  const printed = await runPilotAgent(bootstrapArgs, {
    cwd: root.directory,
    environment: injectedPod.environment,
  });
  t.is(printed.exitCode, 0, printed.all);
  await root.write('envoy-rev.json', printed.stdout);
  const bootstrap = JSON.parse(printed.stdout);
  bootstrap.static_resources.listeners[1].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].domainz =
    ['*'];
  await root.write('bad.json', JSON.stringify(bootstrap));
  await root.write(
    'bad.yaml',
    'admin:\n  address:\n    socket_address: {address: 127.0.0.1, port_value: 15000}\ndynamic_resources:\n  lds_config:\n    initial_fetch_timeout: 10\n',
  );

  const [valid, invalid, invalidYaml, lenient, missing] = await Promise.all([
    runPilotAgent(['bootstrap', '--check', 'envoy-rev.json'], { cwd: root.directory }),
    runPilotAgent(['bootstrap', '--check', 'bad.json'], { cwd: root.directory }),
    runPilotAgent(['bootstrap', '--check', root.resolve('bad.yaml')], { cwd: root.directory }),
    runPilotAgent(['bootstrap', '--check', 'bad.json', '--allow-unknown-static-fields'], {
      cwd: root.directory,
    }),
    runPilotAgent(['bootstrap', '--check', 'missing.json'], { cwd: root.directory }),
  ]);
  t.is(valid.exitCode, 0, valid.all);
  t.is(valid.stdout, 'envoy-rev.json: valid Envoy v3 bootstrap');

  t.is(invalid.exitCode, 255);
  t.is(
    invalid.stderr,
    'bad.json: invalid at static_resources.listeners[1].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].domainz: unknown field "domainz" in envoy.config.route.v3.VirtualHost',
  );
  t.is(invalidYaml.exitCode, 255);
  t.regex(
    invalidYaml.stderr,
    /bad\.yaml: invalid at dynamic_resources\.lds_config\.initial_fetch_timeout: .*Duration/,
  );

  t.is(lenient.exitCode, 0, lenient.all);
  t.is(missing.exitCode, 255);
  t.regex(missing.stderr, /missing\.json: does not exist/);
});

test('pilot-agent bootstrap stops with 255 on a configuration error, naming the variable', async (t) => {
  const root = await podRoot(t);
  const result = await runPilotAgent(['bootstrap'], { cwd: root.directory, environment: {} });
  t.is(result.exitCode, 255);
  t.regex(result.stderr, /^Error: POD_NAMESPACE: is not set/m);
  t.is(result.stdout, '');
});
