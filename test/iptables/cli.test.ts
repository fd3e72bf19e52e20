import test from 'ava';
import { runPilotAgent } from '../helpers/cli.ts';
import { istioInitArguments } from '../helpers/istio-init.ts';
import { repositoryRoot } from '../helpers/paths.ts';

const initContainerArguments = istioInitArguments;

test("--dry-run prints the init container's rules as iptables-restore input and changes nothing", async (t) => {
  const result = await runPilotAgent(['istio-iptables', ...initContainerArguments, '--dry-run'], {
    cwd: repositoryRoot,
    // An exclusion in the environment loses against the empty -x flag.
    environment: { ISTIO_SERVICE_EXCLUDE_CIDR: '10.0.0.0/8', INSTANCE_IP: '10.244.1.7' },
  });
  t.is(result.exitCode, 0, result.all);
  t.is(result.stderr, '');
  const lines = result.stdout.trimEnd().split('\n');
  t.is(lines[0], '# iptables-restore --noflush input (IPv4)');
  t.deepEqual(lines.slice(1, 6), [
    '* nat',
    ':ISTIO_INBOUND - [0:0]',
    ':ISTIO_REDIRECT - [0:0]',
    ':ISTIO_IN_REDIRECT - [0:0]',
    ':ISTIO_OUTPUT - [0:0]',
  ]);
  t.deepEqual(
    lines.filter((line) => line.startsWith('-A ISTIO_INBOUND')),
    [
      '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 22 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
    ],
  );
  t.true(lines.includes('-A ISTIO_OUTPUT -j ISTIO_REDIRECT'));
  t.false(lines.some((line) => line.includes('10.0.0.0/8')));
  t.is(lines.at(-1), 'COMMIT');
});

test('long flags, a single-port list and IPv6 from INSTANCE_IP', async (t) => {
  const result = await runPilotAgent(
    [
      'istio-iptables',
      '--envoy-port=16001',
      '--istio-inbound-ports',
      '8080',
      '--istio-local-outbound-ports-exclude',
      '3306',
      '-n',
    ],
    { cwd: repositoryRoot, environment: { INSTANCE_IP: 'fd00::7' } },
  );
  t.is(result.exitCode, 0, result.all);
  t.true(result.stdout.includes('-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 16001\n'));
  t.true(result.stdout.includes('-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT\n'));
  t.true(result.stdout.includes('-A ISTIO_OUTPUT -p tcp --dport 3306 -j RETURN\n'));
  t.true(result.stdout.includes('# ip6tables-restore --noflush input (IPv6)\n'));
  t.true(result.stdout.includes('-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN\n'));
});

test('bad input exits 255 with an error naming the flag, before any rule is touched', async (t) => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [
      ['-d', '15090,abc'],
      {},
      /^Error: -d\/--istio-local-exclude-ports: "abc" in "15090,abc" is not a port number/m,
    ],
    [
      ['-i', '10.0.0.0/40'],
      {},
      /^Error: -i\/--istio-service-cidr: "10.0.0.0\/40" has an invalid prefix length/m,
    ],
    [
      [],
      { ISTIO_INBOUND_INTERCEPTION_MODE: 'BPF' },
      /^Error: ISTIO_INBOUND_INTERCEPTION_MODE: "BPF" is not an interception mode/m,
    ],
  ];
  await Promise.all(
    cases.map(async ([flags, environment, expected]) => {
      // Not a dry run: the error must come before iptables is ever called. Should validation ever let the
      // input through, no iptables program is on this PATH, so the host's rules stay safe either way.
      const result = await runPilotAgent(['istio-iptables', ...flags], {
        cwd: repositoryRoot,
        environment: { ...environment, PATH: '/nonexistent' },
      });
      t.is(result.exitCode, 255, result.all);
      t.regex(result.stderr, expected);
      t.is(result.stdout, '');
    }),
  );
});
