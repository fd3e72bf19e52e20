import { ConfigError, quoteForError } from '../config/errors.ts';
import { addressFamily, type IpFamily, type IpRange, parseIpRange } from './ip-ranges.ts';

/**
 * Istio's `istio-iptables` flags. As in Istio (viper's AutomaticEnv with `-` → `_`), every flag can also come
 * from the environment variable named after its long form in upper case (`--istio-inbound-ports` →
 * `ISTIO_INBOUND_PORTS`); a flag on the command line wins, even when empty (`-x ""`), then the variable
 * (when not empty), then the default.
 */
export interface CaptureFlagDefinition {
  readonly name: string;
  readonly short?: string;
  readonly type: 'string' | 'boolean';
  readonly description: string;
  /** A variable read when neither the flag nor its own variable is set (Istio's registered defaults). */
  readonly fallbackVariable?: string;
  /** No environment variable (flags this agent adds: Istio has none for them). */
  readonly flagOnly?: boolean;
}

export const captureFlagDefinitions: readonly CaptureFlagDefinition[] = [
  {
    name: 'envoy-port',
    short: 'p',
    type: 'string',
    description: 'Envoy port receiving all outbound TCP traffic (default 15001)',
  },
  {
    name: 'inbound-capture-port',
    short: 'z',
    type: 'string',
    description: 'Port receiving all inbound TCP traffic (default 15006)',
  },
  {
    name: 'inbound-tunnel-port',
    short: 'e',
    type: 'string',
    description: 'Istio tunnel port for inbound TCP, never captured (default 15008)',
  },
  {
    name: 'proxy-uid',
    short: 'u',
    type: 'string',
    description: "UIDs whose traffic is not captured (default: ENVOY_USER's UID, else 1337)",
  },
  {
    name: 'proxy-gid',
    short: 'g',
    type: 'string',
    description: 'GIDs whose traffic is not captured (default: the UIDs)',
  },
  {
    name: 'istio-inbound-interception-mode',
    short: 'm',
    type: 'string',
    description: 'Inbound capture mode: REDIRECT (default) or TPROXY',
  },
  {
    name: 'istio-inbound-tproxy-mark',
    short: 't',
    type: 'string',
    description: 'Packet mark of TPROXY mode (default 1337)',
  },
  {
    name: 'istio-inbound-tproxy-route-table',
    short: 'r',
    type: 'string',
    description: 'Routing table of TPROXY mode (default 133)',
  },
  {
    name: 'istio-inbound-ports',
    short: 'b',
    type: 'string',
    description: 'Inbound ports to capture, comma separated; "*" for all, empty for none',
  },
  {
    name: 'istio-local-exclude-ports',
    short: 'd',
    type: 'string',
    description: 'Inbound ports never captured when -b is "*"',
  },
  {
    name: 'istio-exclude-interfaces',
    short: 'c',
    type: 'string',
    description: 'Interfaces whose traffic is never captured',
  },
  {
    name: 'istio-service-cidr',
    short: 'i',
    type: 'string',
    description: 'Outbound IP ranges (CIDR) to capture; "*" for all, empty for none',
  },
  {
    name: 'istio-service-exclude-cidr',
    short: 'x',
    type: 'string',
    description: 'Outbound IP ranges (CIDR) never captured',
  },
  { name: 'istio-outbound-ports', short: 'q', type: 'string', description: 'Outbound ports always captured' },
  {
    name: 'istio-local-outbound-ports-exclude',
    short: 'o',
    type: 'string',
    description: 'Outbound ports never captured',
  },
  {
    name: 'kube-virt-interfaces',
    short: 'k',
    type: 'string',
    description: 'Virtual interfaces whose inbound traffic is treated as outbound',
  },
  {
    name: 'dry-run',
    short: 'n',
    type: 'boolean',
    description: 'Print the iptables-restore input and change nothing',
  },
  {
    name: 'cleanup',
    type: 'boolean',
    flagOnly: true,
    description: 'Remove every ISTIO_* chain and the jumps to them, then exit',
  },
  {
    name: 'drop-invalid',
    type: 'boolean',
    fallbackVariable: 'INVALID_DROP',
    description: 'Drop packets conntrack marks INVALID instead of resetting the connection',
  },
  {
    name: 'dual-stack',
    type: 'boolean',
    fallbackVariable: 'ISTIO_AGENT_DUAL_STACK',
    description: 'Capture IPv4 and IPv6',
  },
  {
    name: 'redirect-dns',
    type: 'boolean',
    fallbackVariable: 'ISTIO_META_DNS_CAPTURE',
    description: 'Capture DNS (not supported by this agent: a warning)',
  },
  {
    name: 'capture-all-dns',
    type: 'boolean',
    description: 'Capture all DNS on port 53 (only with --redirect-dns)',
  },
  { name: 'skip-rule-apply', type: 'boolean', description: 'Change nothing (validation only)' },
  {
    name: 'run-validation',
    type: 'boolean',
    description: 'Validate an existing capture (not supported by this agent)',
  },
  {
    name: 'restore-format',
    short: 'f',
    type: 'boolean',
    description: 'Print rules in iptables-restore format (always the case here)',
  },
];

/** Environment variable name of a flag (Istio's viper key replacer). */
export function variableOf(definition: CaptureFlagDefinition): string {
  return definition.name.toUpperCase().replaceAll('-', '_');
}

export type InterceptionMode = 'REDIRECT' | 'TPROXY';
export type PortSelection =
  | { readonly kind: 'all' }
  | { readonly kind: 'list'; readonly ports: readonly number[] };
export type RangeSelection =
  | { readonly kind: 'all' }
  | { readonly kind: 'list'; readonly ranges: readonly IpRange[] };

/** Everything the rule builder needs; validated, so the builder cannot fail. */
export interface CaptureRuleOptions {
  readonly envoyPort: number;
  readonly inboundCapturePort: number;
  readonly inboundTunnelPort: number;
  readonly proxyUids: readonly string[];
  readonly proxyGids: readonly string[];
  readonly interceptionMode: InterceptionMode;
  readonly tproxyMark: string;
  readonly tproxyRouteTable: string;
  readonly inboundPorts: PortSelection;
  readonly inboundPortsExclude: readonly number[];
  readonly excludeInterfaces: readonly string[];
  readonly outboundIpRangesInclude: RangeSelection;
  readonly outboundIpRangesExclude: readonly IpRange[];
  readonly outboundPortsInclude: readonly number[];
  readonly outboundPortsExclude: readonly number[];
  readonly kubeVirtInterfaces: readonly string[];
  readonly dropInvalid: boolean;
}

export interface CaptureOptions extends CaptureRuleOptions {
  /** IP families to configure: IPv4 always, IPv6 when the pod is IPv6, dual stack, or IPv6 ranges are given. */
  readonly families: readonly IpFamily[];
  readonly dryRun: boolean;
  readonly cleanup: boolean;
  readonly skipRuleApply: boolean;
  /** Requests this agent accepts but does not act on; the command logs them. */
  readonly warnings: readonly string[];
}

export interface CaptureInputs {
  /** Flag values by long name; only flags given on the command line. */
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  readonly environment: Readonly<Record<string, string | undefined>>;
  /** UID of a user name (from /etc/passwd), for the ENVOY_USER default of --proxy-uid. */
  readonly lookupUserId: (userName: string) => string | undefined;
  /** The pod's non-loopback, non-link-local addresses, for IPv6 detection when INSTANCE_IP is unset. */
  readonly localAddresses: () => readonly string[];
}

const definitionsByName = new Map(captureFlagDefinitions.map((definition) => [definition.name, definition]));

interface RawValue<T> {
  readonly value: T;
  /** Where the value came from, for error messages: `-d/--istio-local-exclude-ports` or a variable name. */
  readonly source: string;
}

/** Reads and validates all flags and variables; throws a ConfigError naming the flag or variable. */
export function parseCaptureOptions(inputs: CaptureInputs): CaptureOptions {
  const text = (name: string, fallback: string): RawValue<string> => {
    const raw = rawValue(inputs, name);
    if (raw === undefined) return { value: fallback, source: sourceOf(name) };
    if (typeof raw.value !== 'string') throw new ConfigError(raw.source, 'expects a value');
    return { value: raw.value.trim(), source: raw.source };
  };
  const boolean = (name: string): boolean => {
    const raw = rawValue(inputs, name);
    if (raw === undefined) return false;
    return typeof raw.value === 'boolean' ? raw.value : parseBoolean(raw.source, raw.value);
  };

  const warnings: string[] = [];
  const interceptionMode = parseMode(text('istio-inbound-interception-mode', 'REDIRECT'));
  const proxyUids = parseIdList(text('proxy-uid', ''), () => defaultProxyUid(inputs));
  const gidText = text('proxy-gid', '');
  const proxyGids = gidText.value === '' ? proxyUids : parseIdList(gidText, () => proxyUids[0] as string);
  const excludeSelection = parseRangeSelection(text('istio-service-exclude-cidr', ''));
  if (excludeSelection.kind === 'all') {
    throw new ConfigError(
      sourceOfValue(inputs, 'istio-service-exclude-cidr'),
      '"*" is not allowed (list the IP ranges to exclude)',
    );
  }
  const outboundIpRangesExclude = excludeSelection.ranges;
  const outboundIpRangesInclude = parseRangeSelection(text('istio-service-cidr', ''));
  const inboundPorts = parsePortSelection(text('istio-inbound-ports', ''));

  const redirectDns = boolean('redirect-dns');
  if (redirectDns) {
    warnings.push(
      'DNS capture (--redirect-dns / ISTIO_META_DNS_CAPTURE) is not supported by this agent: DNS is not captured',
    );
  }
  if (boolean('run-validation')) {
    throw new ConfigError('--run-validation', 'is not supported by this agent (it applies the rules itself)');
  }

  const dualStack = boolean('dual-stack');
  const ranges = [
    ...outboundIpRangesExclude,
    ...(outboundIpRangesInclude.kind === 'list' ? outboundIpRangesInclude.ranges : []),
  ];
  const families: IpFamily[] = ['ipv4'];
  if (dualStack || podFamily(inputs) === 'ipv6' || ranges.some((range) => range.family === 'ipv6')) {
    families.push('ipv6');
  }

  return {
    envoyPort: parsePort(text('envoy-port', '15001')),
    inboundCapturePort: parsePort(text('inbound-capture-port', '15006')),
    inboundTunnelPort: parsePort(text('inbound-tunnel-port', '15008')),
    proxyUids,
    proxyGids,
    interceptionMode,
    tproxyMark: String(parseUnsigned(text('istio-inbound-tproxy-mark', '1337'), 1, 0xffffffff)),
    tproxyRouteTable: String(parseUnsigned(text('istio-inbound-tproxy-route-table', '133'), 1, 0xfffffffe)),
    inboundPorts,
    inboundPortsExclude: parsePortList(text('istio-local-exclude-ports', '')),
    excludeInterfaces: parseInterfaces(text('istio-exclude-interfaces', '')),
    outboundIpRangesInclude,
    outboundIpRangesExclude,
    outboundPortsInclude: parsePortList(text('istio-outbound-ports', '')),
    outboundPortsExclude: parsePortList(text('istio-local-outbound-ports-exclude', '')),
    kubeVirtInterfaces: parseInterfaces(text('kube-virt-interfaces', '')),
    dropInvalid: boolean('drop-invalid'),
    families,
    dryRun: boolean('dry-run'),
    cleanup: boolean('cleanup'),
    skipRuleApply: boolean('skip-rule-apply'),
    warnings,
  };
}

function rawValue(inputs: CaptureInputs, name: string): RawValue<string | boolean> | undefined {
  const definition = definitionsByName.get(name);
  if (definition === undefined) throw new Error(`unknown istio-iptables flag ${name}`);
  const flag = inputs.flags[name];
  if (flag !== undefined) return { value: flag, source: sourceOf(name) };
  if (definition.flagOnly) return undefined;
  for (const variable of [variableOf(definition), definition.fallbackVariable]) {
    if (variable === undefined) continue;
    const value = inputs.environment[variable];
    // viper ignores empty variables.
    if (value !== undefined && value !== '') return { value, source: variable };
  }
  return undefined;
}

function sourceOf(name: string): string {
  const definition = definitionsByName.get(name);
  return definition?.short ? `-${definition.short}/--${name}` : `--${name}`;
}

function sourceOfValue(inputs: CaptureInputs, name: string): string {
  return rawValue(inputs, name)?.source ?? sourceOf(name);
}

function parseBoolean(source: string, value: string): boolean {
  // Go's strconv.ParseBool spellings (viper's GetBool).
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw new ConfigError(source, `${quoteForError(value)} is not a boolean (expected true or false)`);
}

function parseMode({ value, source }: RawValue<string>): InterceptionMode {
  if (value === '' || value === 'REDIRECT') return 'REDIRECT';
  if (value === 'TPROXY') return 'TPROXY';
  throw new ConfigError(
    source,
    `${quoteForError(value)} is not an interception mode (expected REDIRECT or TPROXY)`,
  );
}

/** Istio's list splitting: comma separated, blanks around items ignored, empty items dropped. */
function splitList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function parsePort({ value, source }: RawValue<string>): number {
  const port = portNumber(value);
  if (port === undefined)
    throw new ConfigError(source, `${quoteForError(value)} is not a port number (expected 1 to 65535)`);
  return port;
}

function portNumber(value: string): number | undefined {
  if (!/^\d{1,5}$/.test(value)) return undefined;
  const port = Number(value);
  return port >= 1 && port <= 65535 ? port : undefined;
}

function parsePortList({ value, source }: RawValue<string>): number[] {
  return splitList(value).map((item) => {
    const port = portNumber(item);
    if (port === undefined) {
      throw new ConfigError(
        source,
        `${quoteForError(item)} in ${quoteForError(value)} is not a port number (expected a comma-separated list of 1 to 65535)`,
      );
    }
    return port;
  });
}

function parsePortSelection(raw: RawValue<string>): PortSelection {
  if (raw.value === '*') return { kind: 'all' };
  if (splitList(raw.value).includes('*')) {
    throw new ConfigError(
      raw.source,
      `${quoteForError(raw.value)} mixes "*" with ports (use "*" alone or list ports)`,
    );
  }
  return { kind: 'list', ports: parsePortList(raw) };
}

function parseRangeSelection({ value, source }: RawValue<string>): RangeSelection {
  if (value === '*') return { kind: 'all' };
  const ranges = splitList(value).map((item) => {
    if (item === '*') {
      throw new ConfigError(
        source,
        `${quoteForError(value)} mixes "*" with IP ranges (use "*" alone or list ranges)`,
      );
    }
    const range = parseIpRange(item);
    if ('problem' in range) throw new ConfigError(source, `${quoteForError(item)} ${range.problem}`);
    return range;
  });
  return { kind: 'list', ranges };
}

function parseUnsigned({ value, source }: RawValue<string>, min: number, max: number): number {
  const parsed = /^\d{1,10}$/.test(value) ? Number(value) : Number.NaN;
  if (!(parsed >= min && parsed <= max)) {
    throw new ConfigError(source, `${quoteForError(value)} is not an integer (expected ${min} to ${max})`);
  }
  return parsed;
}

function parseIdList(raw: RawValue<string>, fallback: () => string): string[] {
  if (raw.value === '') return [fallback()];
  return splitList(raw.value).map((item) => {
    if (!/^\d{1,10}$/.test(item) || Number(item) > 0xfffffffe) {
      throw new ConfigError(raw.source, `${quoteForError(item)} is not a numeric user or group ID`);
    }
    return String(Number(item));
  });
}

function defaultProxyUid(inputs: CaptureInputs): string {
  const userName = inputs.environment.ENVOY_USER || 'istio-proxy';
  return inputs.lookupUserId(userName) ?? '1337';
}

function parseInterfaces({ value, source }: RawValue<string>): string[] {
  return splitList(value).map((name) => {
    // Linux interface names: at most 15 bytes, no blanks or slashes; iptables adds a trailing "+" wildcard.
    if (name.length > 15 || /[\s/]/.test(name)) {
      throw new ConfigError(source, `${quoteForError(name)} is not a network interface name`);
    }
    return name;
  });
}

function podFamily(inputs: CaptureInputs): IpFamily | undefined {
  const instanceIp = inputs.environment.INSTANCE_IP;
  if (instanceIp !== undefined && instanceIp !== '') {
    const family = addressFamily(instanceIp);
    if (family === undefined)
      throw new ConfigError('INSTANCE_IP', `${quoteForError(instanceIp)} is not an IP address`);
    return family;
  }
  const [first] = inputs.localAddresses();
  return first === undefined ? undefined : addressFamily(first);
}
