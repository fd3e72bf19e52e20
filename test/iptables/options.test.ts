import test from 'ava';
import { ConfigError } from '../../agent/config/errors.ts';
import { type CaptureInputs, parseCaptureOptions } from '../../agent/iptables/options.ts';

function parse(
  flags: CaptureInputs['flags'],
  environment: CaptureInputs['environment'] = {},
  overrides: Partial<CaptureInputs> = {},
) {
  return parseCaptureOptions({
    flags,
    environment,
    lookupUserId: () => undefined,
    localAddresses: () => ['10.0.0.5'],
    ...overrides,
  });
}

function parseError(flags: CaptureInputs['flags'], environment: CaptureInputs['environment'] = {}): string {
  const error = t_throws(() => parse(flags, environment));
  return error.message;
}

function t_throws(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

test("defaults are Istio's", (t) => {
  const options = parse({});
  t.is(options.envoyPort, 15001);
  t.is(options.inboundCapturePort, 15006);
  t.is(options.inboundTunnelPort, 15008);
  t.deepEqual(options.proxyUids, ['1337']);
  t.deepEqual(options.proxyGids, ['1337']);
  t.is(options.interceptionMode, 'REDIRECT');
  t.is(options.tproxyMark, '1337');
  t.is(options.tproxyRouteTable, '133');
  t.deepEqual(options.inboundPorts, { kind: 'list', ports: [] });
  t.deepEqual(options.outboundIpRangesInclude, { kind: 'list', ranges: [] });
  t.false(options.dryRun);
  t.false(options.cleanup);
});

test('the proxy UID defaults to the UID of ENVOY_USER, and the GID to the UID', (t) => {
  const lookups: string[] = [];
  const lookupUserId = (name: string) => {
    lookups.push(name);
    return name === 'envoy' ? '101' : undefined;
  };
  const options = parse({}, { ENVOY_USER: 'envoy' }, { lookupUserId });
  t.deepEqual(options.proxyUids, ['101']);
  t.deepEqual(options.proxyGids, ['101']);
  t.deepEqual(lookups, ['envoy']);
  t.deepEqual(parse({}, {}, { lookupUserId }).proxyUids, ['1337'], 'istio-proxy is unknown: 1337');
});

test('a flag wins over its environment variable, even when empty; empty variables are ignored', (t) => {
  const environment = {
    ISTIO_SERVICE_EXCLUDE_CIDR: '10.0.0.0/8',
    ISTIO_INBOUND_PORTS: '*',
    ENVOY_PORT: '',
    ISTIO_LOCAL_EXCLUDE_PORTS: '15090',
  };
  const options = parse({ 'istio-service-exclude-cidr': '', 'istio-inbound-ports': '80' }, environment);
  t.deepEqual(options.outboundIpRangesExclude, []);
  t.deepEqual(options.inboundPorts, { kind: 'list', ports: [80] });
  t.is(options.envoyPort, 15001);
  t.deepEqual(options.inboundPortsExclude, [15090]);
});

test("Istio's environment variables configure the capture without flags", (t) => {
  const options = parse(
    {},
    {
      ENVOY_PORT: '16001',
      INBOUND_CAPTURE_PORT: '16006',
      ISTIO_INBOUND_INTERCEPTION_MODE: 'TPROXY',
      ISTIO_INBOUND_PORTS: '*',
      ISTIO_LOCAL_EXCLUDE_PORTS: '15090, 15021',
      ISTIO_SERVICE_CIDR: '*',
      ISTIO_SERVICE_EXCLUDE_CIDR: '169.254.169.254/32',
      ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE: '3306',
      ISTIO_OUTBOUND_PORTS: '25',
      KUBE_VIRT_INTERFACES: 'virt0',
      PROXY_UID: '1000',
      INVALID_DROP: 'true',
    },
  );
  t.is(options.envoyPort, 16001);
  t.is(options.inboundCapturePort, 16006);
  t.is(options.interceptionMode, 'TPROXY');
  t.deepEqual(options.inboundPorts, { kind: 'all' });
  t.deepEqual(options.inboundPortsExclude, [15090, 15021]);
  t.deepEqual(options.outboundIpRangesInclude, { kind: 'all' });
  t.deepEqual(
    options.outboundIpRangesExclude.map((range) => range.text),
    ['169.254.169.254/32'],
  );
  t.deepEqual(options.outboundPortsExclude, [3306]);
  t.deepEqual(options.outboundPortsInclude, [25]);
  t.deepEqual(options.kubeVirtInterfaces, ['virt0']);
  t.deepEqual(options.proxyUids, ['1000']);
  t.true(options.dropInvalid);
});

test('bad input is an error naming the flag or variable it came from', (t) => {
  t.is(
    parseError({ 'envoy-port': 'abc' }),
    '-p/--envoy-port: "abc" is not a port number (expected 1 to 65535)',
  );
  t.is(
    parseError({ 'inbound-capture-port': '70000' }),
    '-z/--inbound-capture-port: "70000" is not a port number (expected 1 to 65535)',
  );
  t.regex(
    parseError({ 'istio-local-exclude-ports': '15090,http' }),
    /^-d\/--istio-local-exclude-ports: "http" in "15090,http" is not a port number/,
  );
  t.regex(
    parseError({ 'istio-inbound-ports': '*,80' }),
    /^-b\/--istio-inbound-ports: .* mixes "\*" with ports/,
  );
  t.regex(
    parseError({ 'istio-service-cidr': '10.0.0.0' }),
    /^-i\/--istio-service-cidr: "10.0.0.0" is not in CIDR form/,
  );
  t.regex(
    parseError({ 'istio-service-cidr': '10.0.0.300/8' }),
    /^-i\/--istio-service-cidr: "10.0.0.300\/8" has an invalid address/,
  );
  t.regex(
    parseError({ 'istio-service-exclude-cidr': 'fd00::/129' }),
    /^-x\/--istio-service-exclude-cidr: .* invalid prefix length "129" \(expected 0 to 128\)/,
  );
  t.regex(
    parseError({ 'istio-service-exclude-cidr': '*' }),
    /^-x\/--istio-service-exclude-cidr: "\*" is not allowed/,
  );
  t.is(
    parseError({ 'istio-inbound-interception-mode': 'redirect' }),
    '-m/--istio-inbound-interception-mode: "redirect" is not an interception mode (expected REDIRECT or TPROXY)',
  );
  t.is(
    parseError({}, { ISTIO_INBOUND_INTERCEPTION_MODE: 'NAT' }),
    'ISTIO_INBOUND_INTERCEPTION_MODE: "NAT" is not an interception mode (expected REDIRECT or TPROXY)',
  );
  t.regex(
    parseError({}, { ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE: '0' }),
    /^ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE: "0" in "0" is not a port number/,
  );
  t.regex(
    parseError({ 'proxy-uid': 'istio-proxy' }),
    /^-u\/--proxy-uid: "istio-proxy" is not a numeric user or group ID/,
  );
  t.regex(
    parseError({ 'kube-virt-interfaces': 'a-very-long-interface-name' }),
    /^-k\/--kube-virt-interfaces: .* is not a network interface name/,
  );
  t.regex(parseError({}, { DRY_RUN: 'yes' }), /^DRY_RUN: "yes" is not a boolean/);
  t.regex(parseError({}, { INSTANCE_IP: 'pod-ip' }), /^INSTANCE_IP: "pod-ip" is not an IP address/);
  t.regex(parseError({ 'run-validation': true }), /^--run-validation: is not supported/);
});

test('IPv6 is configured for an IPv6 pod, dual stack, or IPv6 ranges', (t) => {
  t.deepEqual(parse({}, { INSTANCE_IP: 'fd00::5' }).families, ['ipv4', 'ipv6']);
  t.deepEqual(parse({}, { INSTANCE_IP: '10.0.0.5' }, { localAddresses: () => ['fd00::5'] }).families, [
    'ipv4',
  ]);
  t.deepEqual(parse({}, {}, { localAddresses: () => ['fd00::5'] }).families, ['ipv4', 'ipv6']);
  t.deepEqual(parse({ 'dual-stack': true }).families, ['ipv4', 'ipv6']);
  t.deepEqual(parse({}, { ISTIO_AGENT_DUAL_STACK: 'true' }).families, ['ipv4', 'ipv6']);
  t.deepEqual(parse({ 'istio-service-exclude-cidr': 'fd00::/8' }).families, ['ipv4', 'ipv6']);
});

test('DNS capture is reported as unsupported instead of silently ignored', (t) => {
  t.deepEqual(parse({}).warnings, []);
  t.regex(parse({}, { ISTIO_META_DNS_CAPTURE: 'true' }).warnings[0] ?? '', /DNS capture .* is not supported/);
  t.regex(parse({ 'redirect-dns': true }).warnings[0] ?? '', /DNS capture .* is not supported/);
});
