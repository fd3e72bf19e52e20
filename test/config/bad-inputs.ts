import type { ProxyFlags } from '../../agent/config/agent-config.ts';

/**
 * Every kind of bad start-up input, with the message it must produce. `expected` is a regular expression
 * source; a leading `/ROOT` stands for the agent's working directory. Shared by the unit tests and the tests
 * of the real CLI process.
 */
export interface BadInput {
  readonly name: string;
  readonly environment: Record<string, string>;
  readonly flags: Partial<ProxyFlags>;
  /** The command-line form of `flags`. */
  readonly args: readonly string[];
  readonly files: Record<string, string>;
  readonly expected: string;
}

function bad(
  name: string,
  expected: string,
  input: Partial<Omit<BadInput, 'name' | 'expected'>> = {},
): BadInput {
  return { name, expected, environment: {}, flags: {}, args: [], files: {}, ...input };
}

export const badInputs: readonly BadInput[] = [
  bad('invalid PROXY_CONFIG', '^PROXY_CONFIG: invalid JSON/YAML', {
    environment: { PROXY_CONFIG: '{"drainDuration": ' },
  }),
  bad(
    'PROXY_CONFIG field of the wrong type',
    '^PROXY_CONFIG: field proxyAdminPort: .*is not a non-negative integer',
    {
      environment: { PROXY_CONFIG: '{"proxyAdminPort": "admin"}' },
    },
  ),
  bad('PROXY_CONFIG bad duration', 'field drainDuration: "soon" is not a valid duration', {
    environment: { PROXY_CONFIG: '{"drainDuration": "soon"}' },
  }),
  bad('invalid ISTIO_META_POD_PORTS', '^ISTIO_META_POD_PORTS: invalid JSON \\(expected a JSON array', {
    environment: { ISTIO_META_POD_PORTS: '[{"containerPort":80' },
  }),
  bad('ISTIO_META_POD_PORTS not an array', '^ISTIO_META_POD_PORTS: expected a JSON array', {
    environment: { ISTIO_META_POD_PORTS: '{"containerPort":80}' },
  }),
  bad('invalid ISTIO_METAJSON_*', '^ISTIO_METAJSON_LABELS: invalid JSON', {
    environment: { ISTIO_METAJSON_LABELS: '{app:reviews}' },
  }),
  bad('ISTIO_METAJSON_* not an object', '^ISTIO_METAJSON_LABELS: expected a JSON object', {
    environment: { ISTIO_METAJSON_LABELS: '[1]' },
  }),
  bad('invalid ISTIO_KUBE_APP_PROBERS', '^ISTIO_KUBE_APP_PROBERS: invalid JSON', {
    environment: { ISTIO_KUBE_APP_PROBERS: '{"/app-health/a/livez":' },
  }),
  bad('ISTIO_KUBE_APP_PROBERS with a bad path', 'invalid probe path', {
    environment: { ISTIO_KUBE_APP_PROBERS: '{"/health":{"tcpSocket":{"port":1}}}' },
  }),
  bad('invalid ISTIO_PROMETHEUS_ANNOTATIONS', '^ISTIO_PROMETHEUS_ANNOTATIONS: invalid JSON', {
    environment: { ISTIO_PROMETHEUS_ANNOTATIONS: 'scrape=true' },
  }),
  bad('reserved application scrape port', 'port 15090 is reserved for the sidecar', {
    environment: { ISTIO_PROMETHEUS_ANNOTATIONS: '{"port":"15090"}' },
  }),
  bad('non-numeric --concurrency', '^--concurrency: "two" is not an integer', {
    flags: { concurrency: 'two' },
    args: ['--concurrency', 'two'],
  }),
  bad('negative --concurrency', '^--concurrency: "-1" is not an integer \\(expected 0 or more\\)', {
    flags: { concurrency: '-1' },
    args: ['--concurrency=-1'],
  }),
  bad('unknown proxy log level', '^--proxyLogLevel: unknown log level "loud"', {
    flags: { proxyLogLevel: 'loud' },
    args: ['--proxyLogLevel=loud'],
  }),
  bad('unknown component log level', '^--proxyComponentLogLevel: unknown log level "chatty"', {
    flags: { proxyComponentLogLevel: 'misc:chatty' },
    args: ['--proxyComponentLogLevel', 'misc:chatty'],
  }),
  bad('unknown agent log level', '^--log_output_level: unknown log level "verbose"', {
    flags: { logOutputLevel: 'default:verbose' },
    args: ['--log_output_level=default:verbose'],
  }),
  bad('port out of range', '^ENVOY_STATUS_PORT: "70000" is not an integer \\(expected 1 to 65535\\)', {
    environment: { ENVOY_STATUS_PORT: '70000' },
  }),
  bad(
    'two ports that collide',
    '^ENVOY_PROMETHEUS_PORT: port 15020 is already used by ProxyConfig.statusPort',
    {
      environment: { ENVOY_PROMETHEUS_PORT: '15020' },
    },
  ),
  bad('bad duration string', '^SECRET_TTL: "24 hours" is not a valid duration', {
    environment: { SECRET_TTL: '24 hours' },
  }),
  bad('bad boolean', '^EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "yes" is not a boolean', {
    environment: { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'yes' },
  }),
  bad('bad INSTANCE_IP', '^INSTANCE_IP: "10.0.0" is not an IP address', {
    environment: { INSTANCE_IP: '10.0.0' },
  }),
  bad('invalid mesh config file', '^/ROOT/etc/istio/config/mesh: invalid JSON/YAML', {
    files: { 'etc/istio/config/mesh': 'defaultConfig: [' },
  }),
  bad('unknown PILOT_CERT_PROVIDER', '^PILOT_CERT_PROVIDER: "vault" is not one of', {
    environment: { PILOT_CERT_PROVIDER: 'vault' },
  }),
  bad(
    'badly quoted downward-API label',
    '^/ROOT/etc/istio/pod/labels:2: value of "version" is not a Go-quoted string',
    {
      files: { 'etc/istio/pod/labels': 'app="ok"\nversion="v1\n' },
    },
  ),
];
