// The capture applied for real by `pilot-agent istio-iptables` inside network namespaces the tests create,
// proven with real TCP connections. Needs root, iproute2 and iptables.
import test, { type ExecutionContext } from 'ava';
import { istioInitArguments } from '../helpers/istio-init.ts';
import { createPodNetwork, networkNamespacesUnavailable } from './network-namespace.ts';

const unavailable = await networkNamespacesUnavailable();

/** A test that needs network namespaces; where the machine forbids them it is skipped, saying why. */
function namespaceTest(title: string, implementation: (t: ExecutionContext) => Promise<void>): void {
  if (unavailable === undefined) test(title, implementation);
  else test.skip(`${title} [skipped: ${unavailable}]`, implementation);
}

const initContainerArguments = istioInitArguments;

const emptyNatTable = [
  '-P PREROUTING ACCEPT',
  '-P INPUT ACCEPT',
  '-P OUTPUT ACCEPT',
  '-P POSTROUTING ACCEPT',
];

// `iptables -t nat -S` in a real sidecar pod injected with the init container's arguments.
const sidecarNatTable = [
  ...emptyNatTable,
  '-N ISTIO_INBOUND',
  '-N ISTIO_IN_REDIRECT',
  '-N ISTIO_OUTPUT',
  '-N ISTIO_REDIRECT',
  '-A PREROUTING -p tcp -j ISTIO_INBOUND',
  '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
  '-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN',
  '-A ISTIO_INBOUND -p tcp -m tcp --dport 22 -j RETURN',
  '-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN',
  '-A ISTIO_INBOUND -p tcp -m tcp --dport 15021 -j RETURN',
  '-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN',
  '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
  '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
  '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
  '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
  '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
  '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
  '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
  '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
];

namespaceTest(
  "the init container's capture redirects outbound to 15001 and inbound to 15006, except the proxy's own and excluded traffic",
  async (t) => {
    const network = await createPodNetwork(t);
    const applied = await network.istioIptables(initContainerArguments);
    t.is(applied.exitCode, 0, applied.stderr);
    t.deepEqual(await network.rules('nat'), sidecarNatTable);

    // Envoy's listeners and an application port that is excluded from capture, in the pod; the real
    // destinations on the peer.
    await Promise.all([
      network.listen(network.pod, 'pod', [15001, 15006, 15021, 22]),
      network.listen(network.peer, 'peer', [80]),
    ]);
    const [outbound, fromProxy, localhost, inbound, inboundExcluded, ssh] = await Promise.all([
      network.connect(network.pod, '10.1.2.3', 80),
      network.connect(network.pod, '10.1.2.3', 80, 1337),
      network.connect(network.pod, '127.0.0.1', 15021),
      network.connect(network.peer, network.podAddress, 8080),
      network.connect(network.peer, network.podAddress, 15021),
      network.connect(network.peer, network.podAddress, 22),
    ]);
    t.is(outbound, 'pod:15001', 'an application connection to a remote address lands on Envoy outbound');
    t.is(fromProxy, 'peer:80', "the proxy user's connection goes to its real destination");
    t.is(localhost, 'pod:15021', 'localhost is not captured');
    t.is(inbound, 'pod:15006', 'inbound traffic to any port lands on Envoy inbound');
    t.is(inboundExcluded, 'pod:15021', 'an excluded inbound port is not captured');
    t.is(ssh, 'pod:22', 'SSH is not captured');

    // Re-running (an init container restart) leaves exactly the same rules: nothing duplicated.
    const again = await network.istioIptables(initContainerArguments);
    t.is(again.exitCode, 0, again.stderr);
    t.deepEqual(await network.rules('nat'), sidecarNatTable);
    t.is(await network.connect(network.pod, '10.1.2.3', 80), 'pod:15001');

    const cleaned = await network.istioIptables(['--cleanup']);
    t.is(cleaned.exitCode, 0, cleaned.stderr);
    t.deepEqual(await network.rules('nat'), emptyNatTable);
    t.false((await network.rules('mangle')).some((line) => line.includes('ISTIO')));
    t.is(await network.connect(network.pod, '10.1.2.3', 80), 'peer:80', 'nothing is captured after cleanup');
    t.is(await network.connect(network.peer, network.podAddress, 8080), 'error: ECONNREFUSED');
  },
);

namespaceTest(
  're-running with other flags replaces the capture; excluded ranges and ports are not redirected',
  async (t) => {
    const network = await createPodNetwork(t);
    t.is((await network.istioIptables(initContainerArguments)).exitCode, 0);
    const replaced = await network.istioIptables([
      '-u',
      '1337',
      '-i',
      '*',
      '-x',
      '10.1.2.0/24',
      '-b',
      '8080',
      '-o',
      '9090',
    ]);
    t.is(replaced.exitCode, 0, replaced.stderr);
    t.deepEqual(await network.rules('nat'), [
      ...emptyNatTable,
      '-N ISTIO_INBOUND',
      '-N ISTIO_IN_REDIRECT',
      '-N ISTIO_OUTPUT',
      '-N ISTIO_REDIRECT',
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
      '-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -m tcp --dport 8080 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 9090 -j RETURN',
      '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
      '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.1.2.0/24 -j RETURN',
      '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
    ]);

    await Promise.all([
      network.listen(network.pod, 'pod', [15001, 15006, 9000]),
      network.listen(network.peer, 'peer', [80, 9090]),
    ]);
    const [excludedRange, excludedPort, captured, inboundListed, inboundOther] = await Promise.all([
      network.connect(network.pod, '10.1.2.3', 80),
      network.connect(network.pod, '10.1.4.4', 9090),
      network.connect(network.pod, '10.1.4.4', 80),
      network.connect(network.peer, network.podAddress, 8080),
      network.connect(network.peer, network.podAddress, 9000),
    ]);
    t.is(excludedRange, 'peer:80');
    t.is(excludedPort, 'peer:9090');
    t.is(captured, 'pod:15001');
    t.is(inboundListed, 'pod:15006');
    t.is(inboundOther, 'pod:9000', 'only the listed inbound ports are captured');
  },
);

namespaceTest('bad input exits 255 before any rule is touched', async (t) => {
  const network = await createPodNetwork(t);
  t.is((await network.istioIptables(initContainerArguments)).exitCode, 0);
  const results = await Promise.all(
    [
      ['-p', 'http'],
      ['-x', '10.0.0.0/8,not-a-cidr'],
      ['-m', 'EBPF'],
    ].map((args) => network.istioIptables([...initContainerArguments, ...args])),
  );
  t.deepEqual(
    results.map((result) => [result.exitCode, result.stderr.split('\n')[0]]),
    [
      [255, 'Error: -p/--envoy-port: "http" is not a port number (expected 1 to 65535)'],
      [
        255,
        'Error: -x/--istio-service-exclude-cidr: "not-a-cidr" is not in CIDR form (expected address/prefix, e.g. 10.0.0.0/8)',
      ],
      [
        255,
        'Error: -m/--istio-inbound-interception-mode: "EBPF" is not an interception mode (expected REDIRECT or TPROXY)',
      ],
    ],
  );
  t.deepEqual(await network.rules('nat'), sidecarNatTable);
});

namespaceTest(
  'TPROXY mode is accepted by the kernel, re-runs without duplicates and is removed by --cleanup',
  async (t) => {
    const network = await createPodNetwork(t);
    const tproxyArguments = [
      '-p',
      '15001',
      '-z',
      '15006',
      '-u',
      '1337',
      '-m',
      'TPROXY',
      '-i',
      '*',
      '-b',
      '*',
      '-d',
      '15020',
    ];
    for (let run = 0; run < 2; run++) {
      const applied = await network.istioIptables(tproxyArguments);
      t.is(applied.exitCode, 0, applied.stderr);
    }
    const mangle = await network.rules('mangle');
    t.deepEqual(
      mangle.filter((line) => line.startsWith('-A PREROUTING') || line.startsWith('-N')),
      [
        '-N ISTIO_DIVERT',
        '-N ISTIO_INBOUND',
        '-N ISTIO_TPROXY',
        '-A PREROUTING -p tcp -j ISTIO_INBOUND',
        '-A PREROUTING -p tcp -m mark --mark 0x539 -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff',
      ],
    );
    t.is(mangle.filter((line) => line.includes('-j TPROXY')).length, 1);
    t.false(
      (await network.rules('nat')).includes('-A PREROUTING -p tcp -j ISTIO_INBOUND'),
      'inbound is not NATed',
    );
    const policy = await network.run(network.pod, 'ip', ['-f', 'inet', 'rule', 'show']);
    t.is(policy.split('\n').filter((line) => line.includes('fwmark 0x539 lookup 133')).length, 1);
    t.regex(
      await network.run(network.pod, 'ip', ['-f', 'inet', 'route', 'show', 'table', '133']),
      /^local default dev lo/m,
    );

    const cleaned = await network.istioIptables(['--cleanup']);
    t.is(cleaned.exitCode, 0, cleaned.stderr);
    t.false((await network.rules('mangle')).some((line) => line.includes('ISTIO') || line.includes('MARK')));
    t.deepEqual(await network.rules('nat'), emptyNatTable);
    t.false((await network.run(network.pod, 'ip', ['-f', 'inet', 'rule', 'show'])).includes('fwmark'));
  },
);

namespaceTest('an IPv6 pod (INSTANCE_IP) is captured with ip6tables too', async (t) => {
  const network = await createPodNetwork(t);
  const applied = await network.istioIptables(initContainerArguments, { INSTANCE_IP: network.podAddress6 });
  t.is(applied.exitCode, 0, applied.stderr);
  const nat6 = await network.rules('nat', 'ip6tables');
  t.true(nat6.includes('-A PREROUTING -p tcp -j ISTIO_INBOUND'));
  t.true(nat6.includes('-A ISTIO_OUTPUT -s ::6/128 -o lo -j RETURN'));
  t.true(nat6.includes('-A ISTIO_OUTPUT -d ::1/128 -j RETURN'));
  t.true(nat6.includes('-A ISTIO_OUTPUT -j ISTIO_REDIRECT'));
  t.regex(await network.run(network.pod, 'ip', ['-6', 'addr', 'show', 'dev', 'lo']), /inet6 ::6\/128/);
  t.deepEqual(await network.rules('nat'), sidecarNatTable);

  await Promise.all([
    network.listen(network.pod, 'pod', [15001, 15006]),
    network.listen(network.peer, 'peer', [80]),
  ]);
  const [outbound, fromProxy, inbound] = await Promise.all([
    network.connect(network.pod, 'fd00:1::3', 80),
    network.connect(network.pod, 'fd00:1::3', 80, 1337),
    network.connect(network.peer, network.podAddress6, 8080),
  ]);
  t.is(outbound, 'pod:15001');
  t.is(fromProxy, 'peer:80');
  t.is(inbound, 'pod:15006');

  const cleaned = await network.istioIptables(['--cleanup']);
  t.is(cleaned.exitCode, 0, cleaned.stderr);
  t.false((await network.rules('nat', 'ip6tables')).some((line) => line.includes('ISTIO')));
  t.deepEqual(await network.rules('nat'), emptyNatTable);
});
