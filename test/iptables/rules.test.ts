import test from 'ava';
import { dryRunInput } from '../../agent/iptables/applier.ts';
import type { IpFamily } from '../../agent/iptables/ip-ranges.ts';
import { type CaptureOptions, parseCaptureOptions } from '../../agent/iptables/options.ts';

/** Options as the CLI would build them from these flags, with no environment. */
function optionsFrom(flags: Record<string, string | boolean>): CaptureOptions {
  return parseCaptureOptions({
    flags,
    environment: {},
    lookupUserId: () => undefined,
    localAddresses: () => ['10.0.0.5'],
  });
}

function restoreInput(flags: Record<string, string | boolean>, family: IpFamily = 'ipv4'): string[] {
  return dryRunInput(optionsFrom(flags), family).restoreInput.trimEnd().split('\n');
}

const initContainerFlags = {
  'envoy-port': '15001',
  'inbound-capture-port': '15006',
  'proxy-uid': '1337',
  'istio-inbound-interception-mode': 'REDIRECT',
  'istio-service-cidr': '*',
  'istio-service-exclude-cidr': '',
  'istio-inbound-ports': '*',
  'istio-local-exclude-ports': '15090,15021,15020',
};

// The nat rules istio-init logs for these arguments in a real pod, in the same order.
const initContainerNatRules = [
  '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
  '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
  '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
  '-A PREROUTING -p tcp -j ISTIO_INBOUND',
  '-A ISTIO_INBOUND -p tcp --dport 22 -j RETURN',
  '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
  '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN',
  '-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN',
  '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
  '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
  '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
  '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
  '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
  '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
  '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
];

test("the init container's arguments give exactly the nat table of a real sidecar pod", (t) => {
  t.deepEqual(restoreInput(initContainerFlags), [
    '* nat',
    ':ISTIO_INBOUND - [0:0]',
    ':ISTIO_REDIRECT - [0:0]',
    ':ISTIO_IN_REDIRECT - [0:0]',
    ':ISTIO_OUTPUT - [0:0]',
    ...initContainerNatRules,
    'COMMIT',
  ]);
});

test('only the IPv4 family is configured for an IPv4 pod without IPv6 ranges', (t) => {
  t.deepEqual(optionsFrom(initContainerFlags).families, ['ipv4']);
  t.is(dryRunInput(optionsFrom(initContainerFlags), 'ipv4').plan.routes, null);
});

test('listed inbound ports are the only ones captured, and SSH is not special then', (t) => {
  const lines = restoreInput({ ...initContainerFlags, 'istio-inbound-ports': '8080,9090' });
  t.deepEqual(
    lines.filter((line) => line.includes('ISTIO_INBOUND') && !line.startsWith(':')),
    [
      '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_INBOUND -p tcp --dport 9090 -j ISTIO_IN_REDIRECT',
    ],
  );
});

test('an empty inbound port list captures no inbound traffic', (t) => {
  const lines = restoreInput({ ...initContainerFlags, 'istio-inbound-ports': '' });
  t.false(lines.some((line) => line.startsWith('-A PREROUTING')));
  t.true(lines.includes('-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN'));
});

test('outbound ranges, ports and virtual interfaces are placed where Istio puts them', (t) => {
  const lines = restoreInput({
    ...initContainerFlags,
    'istio-service-cidr': '10.96.0.0/12,fd00::/8,10.244.0.0/16',
    'istio-service-exclude-cidr': '10.96.0.10/32',
    'istio-outbound-ports': '25',
    'istio-local-outbound-ports-exclude': '3306,5432',
    'kube-virt-interfaces': 'virt0,virt1',
    'istio-exclude-interfaces': 'eth9',
  });
  t.deepEqual(
    lines.filter((line) => /^-[AI] (PREROUTING|OUTPUT)/.test(line)),
    [
      '-A PREROUTING -i eth9 -j RETURN',
      '-A OUTPUT -o eth9 -j RETURN',
      '-I PREROUTING 1 -i virt0 -j RETURN',
      '-I PREROUTING 1 -i virt1 -j RETURN',
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
      '-I PREROUTING 1 -i virt0 -d 10.96.0.0/12 -j ISTIO_REDIRECT',
      '-I PREROUTING 1 -i virt1 -d 10.96.0.0/12 -j ISTIO_REDIRECT',
      '-I PREROUTING 1 -i virt0 -d 10.244.0.0/16 -j ISTIO_REDIRECT',
      '-I PREROUTING 1 -i virt1 -d 10.244.0.0/16 -j ISTIO_REDIRECT',
    ],
  );
  t.deepEqual(
    lines.filter((line) => line.startsWith('-A ISTIO_OUTPUT')),
    [
      '-A ISTIO_OUTPUT -p tcp --dport 3306 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN',
      '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.96.0.10/32 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp --dport 25 -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -d 10.244.0.0/16 -j ISTIO_REDIRECT',
    ],
  );
});

test('IPv6 rules use ::6 and ::1 and only the IPv6 ranges', (t) => {
  const flags = {
    ...initContainerFlags,
    'istio-service-cidr': '10.96.0.0/12,fd00:10:96::/112',
    'istio-service-exclude-cidr': 'fd00:10:96::a/128',
  };
  t.deepEqual(optionsFrom(flags).families, ['ipv4', 'ipv6']);
  const lines = restoreInput(flags, 'ipv6');
  t.deepEqual(
    lines.filter((line) => line.startsWith('-A ISTIO_OUTPUT')),
    [
      '-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d ::1/128 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d ::1/128 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -d ::1/128 -j RETURN',
      '-A ISTIO_OUTPUT -d fd00:10:96::a/128 -j RETURN',
      '-A ISTIO_OUTPUT -d fd00:10:96::/112 -j ISTIO_REDIRECT',
    ],
  );
  t.is(dryRunInput(optionsFrom(flags), 'ipv6').plan.passthroughAddressOnLoopback, '::6/128');
  t.false(restoreInput(flags, 'ipv4').some((line) => line.includes('fd00')));
});

test('an explicitly included loopback range keeps the application-to-itself traffic captured', (t) => {
  const lines = restoreInput({ ...initContainerFlags, 'istio-service-cidr': '127.0.0.0/8,10.0.0.0/8' });
  t.false(lines.some((line) => line.includes('! --uid-owner') || line.includes('! --gid-owner')));
  t.true(lines.includes('-A ISTIO_OUTPUT -d 127.0.0.0/8 -j ISTIO_REDIRECT'));
});

test('every proxy UID and GID gets its own triple of owner rules', (t) => {
  const lines = restoreInput({ ...initContainerFlags, 'proxy-uid': '1337,1338', 'proxy-gid': '2000' });
  t.deepEqual(
    lines.filter((line) => line.includes('-owner')).map((line) => line.replace(/.*-owner (\d+).*/, '$1')),
    ['1337', '1337', '1337', '1338', '1338', '1338', '2000', '2000', '2000'],
  );
});

test('TPROXY mode captures inbound in the mangle table as Istio does, with its policy routing', (t) => {
  const options = optionsFrom({ ...initContainerFlags, 'istio-inbound-interception-mode': 'TPROXY' });
  const { plan, restoreInput: input } = dryRunInput(options, 'ipv4');
  const lines = input.trimEnd().split('\n');
  const mangle = lines.slice(0, lines.indexOf('COMMIT') + 1);
  t.deepEqual(mangle, [
    '* mangle',
    ':ISTIO_DIVERT - [0:0]',
    ':ISTIO_TPROXY - [0:0]',
    ':ISTIO_INBOUND - [0:0]',
    '-A ISTIO_DIVERT -j MARK --set-mark 1337',
    '-A ISTIO_DIVERT -j ACCEPT',
    '-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006',
    '-A PREROUTING -p tcp -j ISTIO_INBOUND',
    '-A ISTIO_INBOUND -p tcp --dport 22 -j RETURN',
    '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
    '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN',
    '-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN',
    '-A ISTIO_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT',
    '-A ISTIO_INBOUND -p tcp -j ISTIO_TPROXY',
    '-A PREROUTING -p tcp -m mark --mark 1337 -j CONNMARK --save-mark',
    '-A OUTPUT -p tcp -o lo -m mark --mark 1337 -j RETURN',
    '-A OUTPUT ! -d 127.0.0.1/32 -p tcp -o lo -m owner --uid-owner 1337 -j MARK --set-mark 1338',
    '-A OUTPUT ! -d 127.0.0.1/32 -p tcp -o lo -m owner --gid-owner 1337 -j MARK --set-mark 1338',
    '-A OUTPUT -p tcp -m connmark --mark 1337 -j CONNMARK --restore-mark',
    '-I ISTIO_INBOUND 1 -p tcp -m mark --mark 1337 -j RETURN',
    '-I ISTIO_INBOUND 2 -p tcp -s 127.0.0.6/32 -i lo -j RETURN',
    '-I ISTIO_INBOUND 3 -p tcp -i lo -m mark ! --mark 1338 -j RETURN',
    'COMMIT',
  ]);
  // The nat table keeps the outbound capture; inbound no longer jumps there.
  const nat = lines.slice(lines.indexOf('* nat'));
  t.false(nat.includes('-A PREROUTING -p tcp -j ISTIO_INBOUND'));
  t.true(nat.includes('-A ISTIO_OUTPUT -j ISTIO_REDIRECT'));
  t.deepEqual(plan.routes, {
    rule: ['-f', 'inet', 'rule', 'add', 'fwmark', '1337', 'lookup', '133'],
    route: ['-f', 'inet', 'route', 'add', 'local', 'default', 'dev', 'lo', 'table', '133'],
  });
});

test('TPROXY with listed ports, a custom mark and route table', (t) => {
  const options = optionsFrom({
    ...initContainerFlags,
    'istio-inbound-interception-mode': 'TPROXY',
    'istio-inbound-ports': '8080',
    'istio-inbound-tproxy-mark': '7',
    'istio-inbound-tproxy-route-table': '200',
  });
  const { plan, restoreInput: input } = dryRunInput(options, 'ipv6');
  const lines = input.split('\n');
  t.true(
    lines.includes(
      '-A ISTIO_INBOUND -p tcp --dport 8080 -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT',
    ),
  );
  t.true(lines.includes('-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_TPROXY'));
  t.true(
    lines.includes(
      '-A ISTIO_TPROXY ! -d ::1/128 -p tcp -j TPROXY --tproxy-mark 7/0xffffffff --on-port 15006',
    ),
  );
  t.true(lines.includes('-I ISTIO_INBOUND 2 -p tcp -s ::6/128 -i lo -j RETURN'));
  t.deepEqual(plan.routes?.rule, ['-f', 'inet6', 'rule', 'add', 'fwmark', '7', 'lookup', '200']);
});

test('--drop-invalid drops out-of-window packets in the mangle table', (t) => {
  const lines = restoreInput({ ...initContainerFlags, 'drop-invalid': true });
  t.deepEqual(lines.slice(0, 5), [
    '* mangle',
    ':ISTIO_DROP - [0:0]',
    '-A PREROUTING -m conntrack --ctstate INVALID -j ISTIO_DROP',
    '-A ISTIO_DROP -j DROP',
    'COMMIT',
  ]);
});
