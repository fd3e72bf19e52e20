import test from 'ava';
import { baseIdFile, buildEnvoyArgs, parseBaseId } from '../../bootstrap/envoy-args.ts';
import { configFor, injectedPodConfig } from './fixtures.ts';

const configFile = '/pod/etc/istio/proxy/envoy-rev.json';

test('epoch 0 asks Envoy for a dynamic base id and records it', (t) => {
  const config = configFor({ environment: { INSTANCE_IP: '10.0.0.5' } });
  t.deepEqual(buildEnvoyArgs(config, { configFile, epoch: 0 }), [
    '-c',
    configFile,
    '--restart-epoch',
    '0',
    '--use-dynamic-base-id',
    '--base-id-path',
    '/pod/etc/istio/proxy/envoy-base-id',
    '--drain-time-s',
    '45',
    '--drain-strategy',
    'immediate',
    '--parent-shutdown-time-s',
    '60',
    '--local-address-ip-version',
    'v4',
    '--file-flush-interval-msec',
    '1000',
    '-l',
    'warning',
  ]);
  t.is(baseIdFile(config), '/pod/etc/istio/proxy/envoy-base-id');
});

test('later epochs join the base id of epoch 0', (t) => {
  const config = configFor();
  const args = buildEnvoyArgs(config, { configFile, epoch: 1, baseId: 7 });
  t.deepEqual(args.slice(0, 6), ['-c', configFile, '--restart-epoch', '1', '--base-id', '7']);
  t.false(args.includes('--use-dynamic-base-id'));
  t.false(args.includes('--base-id-path'));
  t.deepEqual(buildEnvoyArgs(config, { configFile, epoch: 2, baseId: 7 }).slice(2, 6), [
    '--restart-epoch',
    '2',
    '--base-id',
    '7',
  ]);
  t.throws(() => buildEnvoyArgs(config, { configFile, epoch: 1 }), { message: /needs the base id/ });
  t.throws(() => buildEnvoyArgs(config, { configFile, epoch: -1 }), { instanceOf: RangeError });
});

test('with hot restart disabled Envoy gets --disable-hot-restart and no epoch flags', (t) => {
  const config = configFor({ environment: { DISABLE_HOT_RESTART: 'true' } });
  const args = buildEnvoyArgs(config, { configFile, epoch: 0 });
  t.deepEqual(args.slice(0, 3), ['-c', configFile, '--disable-hot-restart']);
  for (const flag of ['--restart-epoch', '--base-id', '--use-dynamic-base-id', '--base-id-path']) {
    t.false(args.includes(flag), flag);
  }
  t.throws(() => buildEnvoyArgs(config, { configFile, epoch: 1, baseId: 3 }), { instanceOf: RangeError });
});

test('the first instance IP decides the local address IP version', (t) => {
  const version = (environment: Record<string, string>) => {
    const args = buildEnvoyArgs(configFor({ environment }), { configFile, epoch: 0 });
    return args[args.indexOf('--local-address-ip-version') + 1];
  };
  t.is(version({ INSTANCE_IP: 'fd00:10:244::12' }), 'v6');
  t.is(version({ INSTANCE_IP: '10.0.0.5', ISTIO_META_INSTANCE_IPS: 'fd00::5' }), 'v4');
  t.is(version({ INSTANCE_IP: 'fd00::5', ISTIO_META_INSTANCE_IPS: '10.0.0.5' }), 'v6');
  t.is(version({}), 'v4');
});

test('concurrency 0 leaves Envoy to use every CPU; N is passed', (t) => {
  t.false(buildEnvoyArgs(configFor(), { configFile, epoch: 0 }).includes('--concurrency'));
  const withTwo = buildEnvoyArgs(configFor({ flags: { concurrency: '2' } }), { configFile, epoch: 0 });
  t.deepEqual(withTwo.slice(-2), ['--concurrency', '2']);
  const fromProxyConfig = buildEnvoyArgs(configFor({ environment: { PROXY_CONFIG: '{"concurrency":4}' } }), {
    configFile,
    epoch: 0,
  });
  t.deepEqual(fromProxyConfig.slice(-2), ['--concurrency', '4']);
});

test('log levels, drain durations and the file flush interval come from the configuration', (t) => {
  const args = buildEnvoyArgs(
    configFor({
      environment: {
        PROXY_CONFIG: '{"drainDuration":"20s","parentShutdownDuration":"30s","fileFlushInterval":"250ms"}',
      },
      flags: { proxyLogLevel: 'debug', proxyComponentLogLevel: 'misc:error,upstream:trace' },
    }),
    { configFile, epoch: 0 },
  );
  const value = (flag: string) => args[args.indexOf(flag) + 1];
  t.is(value('--drain-time-s'), '20');
  t.is(value('--parent-shutdown-time-s'), '30');
  t.is(value('--file-flush-interval-msec'), '250');
  t.is(value('-l'), 'debug');
  t.is(value('--component-log-level'), 'misc:error,upstream:trace');
});

test('an injected pod: the injector flags become Envoy flags', (t) => {
  const args = buildEnvoyArgs(injectedPodConfig(), { configFile, epoch: 0 });
  t.deepEqual(args.slice(-6), ['-l', 'warning', '--component-log-level', 'misc:error', '--concurrency', '2']);
});

test('the base id file Envoy writes is read back strictly', (t) => {
  t.is(parseBaseId('/f', '123456\n'), 123456);
  t.is(parseBaseId('/f', '0'), 0);
  t.throws(() => parseBaseId('/f', ''), { message: /^\/f: "" is not a base id/ });
  t.throws(() => parseBaseId('/f', '12a'), { message: /is not a base id/ });
});
