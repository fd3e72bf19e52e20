import test from 'ava';
import { execa } from 'execa';
import { MalformedArgvError, parseCommandLine } from '../envoy-standin/flags.ts';
import { baseBootstrap, freePort, standinExecutable, temporaryRoot, writeBootstrap } from './harness.ts';

const run = (argv: string[]) => {
  const parsed = parseCommandLine(argv);
  if (parsed.kind !== 'run') throw new Error('expected options');
  return parsed.options;
};

const malformed = (argv: string[]) => {
  try {
    parseCommandLine(argv);
  } catch (error) {
    if (error instanceof MalformedArgvError) return error;
    throw error;
  }
  throw new Error(`expected ${argv.join(' ')} to be rejected`);
};

test("Istio's Envoy argv parses with Envoy's defaults for the rest", (t) => {
  const options = run([
    '-c',
    'etc/istio/proxy/envoy-rev.json',
    '--drain-time-s',
    '45',
    '--drain-strategy',
    'immediate',
    '--local-address-ip-version',
    'v4',
    '--file-flush-interval-msec',
    '1000',
    '--disable-hot-restart',
    '--allow-unknown-static-fields',
    '-l',
    'warning',
    '--component-log-level',
    'misc:error',
    '--concurrency',
    '2',
  ]);
  t.is(options.configPath, 'etc/istio/proxy/envoy-rev.json');
  t.is(options.drainTimeSeconds, 45);
  t.is(options.drainStrategy, 'immediate');
  t.is(options.fileFlushIntervalMilliseconds, 1000);
  t.true(options.disableHotRestart);
  t.true(options.allowUnknownStaticFields);
  t.is(options.logLevel, 3);
  t.deepEqual(options.componentLogLevels, [['misc', 4]]);
  t.is(options.concurrency, 2);
  t.is(options.restartEpoch, 0);
  t.is(options.baseId, 0);
  t.is(options.parentShutdownTimeSeconds, 900);
  t.is(options.socketPath, '@envoy_domain_socket');
  t.is(options.mode, 'serve');
});

test('an unknown flag is a TCLAP parse error', (t) => {
  const error = malformed(['--bogus']);
  t.true(
    error.output.startsWith(
      "PARSE ERROR: Argument: --bogus\n             Couldn't find match for argument\n",
    ),
  );
  t.regex(error.output, /Brief USAGE: \n {3}envoy {2}\[--base-id <uint32>\]/);
  t.regex(error.output, /For complete USAGE and HELP type: \n {3}envoy --help\n/);
});

test('--flag=value is not a TCLAP form (Envoy uses a space delimiter)', (t) => {
  t.regex(malformed(['--restart-epoch=1']).output, /Argument: --restart-epoch=1\n.*Couldn't find match/);
});

test('value errors: missing, unreadable, set twice', (t) => {
  t.regex(
    malformed(['--restart-epoch']).output,
    /Argument: \(--restart-epoch\)\n\s+Missing a value for this argument!/,
  );
  t.regex(
    malformed(['--base-id', 'abc']).output,
    /Argument: \(--base-id\)\n\s+Couldn't read argument value from string 'abc'/,
  );
  t.regex(
    malformed(['-c', 'a', '-c', 'b']).output,
    /Argument: -c \(--config-path\)\n\s+Argument already set!/,
  );
});

test('Envoy option checks after parsing', (t) => {
  t.is(malformed(['--mode', 'bogus']).message, "error: unknown mode 'bogus'");
  t.is(malformed(['--local-address-ip-version', 'v5']).message, "error: unknown IP address version 'v5'");
  t.is(malformed(['-l', 'loud']).message, "error: invalid log level specified 'loud'");
  t.is(
    malformed(['--component-log-level', 'nope:debug']).message,
    "error: invalid component specified 'nope'",
  );
  t.is(
    malformed(['--component-log-level', 'upstream']).message,
    "error: component log level not correctly specified 'upstream'",
  );
  t.is(
    malformed(['--use-dynamic-base-id', '--restart-epoch', '1']).message,
    'error: cannot use --restart-epoch=1 with --use-dynamic-base-id',
  );
  t.is(malformed(['--drain-strategy', 'slow']).message, "error: unknown drain-strategy 'slow'");
  t.is(malformed(['--stats-tag', 'novalue']).message, "error: misformatted stats-tag 'novalue'");
  t.is(run(['-l', 'warn']).logLevel, 3);
});

test('--version, --help and --hot-restart-version print and exit 0', (t) => {
  const version = parseCommandLine(['--version']);
  t.is(version.kind, 'exit');
  if (version.kind === 'exit')
    t.regex(version.stdout, /^\nenvoy {2}version: [0-9a-f]{40}\/1\.\d+\.\d+\/Clean\/RELEASE\/BoringSSL\n\n$/);
  const hotRestart = parseCommandLine(['--hot-restart-version']);
  if (hotRestart.kind === 'exit') t.is(hotRestart.stderr, '11.104');
  const disabled = parseCommandLine(['--hot-restart-version', '--disable-hot-restart']);
  if (disabled.kind === 'exit') t.is(disabled.stderr, 'disabled');
  const help = parseCommandLine(['--help']);
  if (help.kind === 'exit') t.regex(help.stdout, /USAGE:/);
});

test('the launcher runs from any directory with Node 20 first on PATH', async (t) => {
  const root = await temporaryRoot(t);
  const result = await execa(standinExecutable, ['--version'], {
    cwd: root.directory,
    env: { PATH: '/usr/bin:/bin' },
    extendEnv: false,
    reject: false,
  });
  t.is(result.exitCode, 0);
  t.regex(result.stdout, /envoy {2}version: .*\/1\.37\.0\//);
});

test('an unknown flag exits 1 with the parse error on stderr', async (t) => {
  const result = await execa(standinExecutable, ['--not-an-envoy-flag'], { reject: false });
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /^PARSE ERROR: Argument: --not-an-envoy-flag/);
});

test('--mode validate checks the bootstrap and exits 0 or 1', async (t) => {
  const root = await temporaryRoot(t);
  const good = await writeBootstrap(root, baseBootstrap(await freePort()));
  const valid = await execa(standinExecutable, ['--mode', 'validate', '-c', good], { reject: false });
  t.is(valid.exitCode, 0, valid.stderr);
  t.is(valid.stdout, `configuration '${good}' OK`);

  const bad = await writeBootstrap(root, { ...baseBootstrap(1), bogus_field: true }, 'bad.json');
  const invalid = await execa(standinExecutable, ['--mode', 'validate', '-c', bad], { reject: false });
  t.is(invalid.exitCode, 1);
  t.regex(
    invalid.stderr,
    /\[critical\]\[main\] .* error initializing configuration '.*bad\.json': Protobuf message \(type envoy\.config\.bootstrap\.v3\.Bootstrap reason INVALID_ARGUMENT:bogus_field: Cannot find field\.\) has unknown fields/,
  );
  const allowed = await execa(
    standinExecutable,
    ['--mode', 'validate', '-c', bad, '--allow-unknown-static-fields'],
    {
      reject: false,
    },
  );
  t.is(allowed.exitCode, 0);
});
