import type { IpFamily } from './ip-ranges.ts';
import type { CaptureRuleOptions } from './options.ts';

export type TableName = 'mangle' | 'nat' | 'raw';

/** Tables in the order Istio writes them to iptables-restore. */
export const tableOrder: readonly TableName[] = ['mangle', 'nat', 'raw'];

export const builtInChains: ReadonlySet<string> = new Set([
  'PREROUTING',
  'INPUT',
  'FORWARD',
  'OUTPUT',
  'POSTROUTING',
]);

/** Istio's chain names. Every chain this agent creates starts with `ISTIO_`, which is how cleanup finds them. */
export const chain = {
  inbound: 'ISTIO_INBOUND',
  inboundRedirect: 'ISTIO_IN_REDIRECT',
  output: 'ISTIO_OUTPUT',
  redirect: 'ISTIO_REDIRECT',
  divert: 'ISTIO_DIVERT',
  tproxy: 'ISTIO_TPROXY',
  drop: 'ISTIO_DROP',
} as const;

export const istioChainPrefix = 'ISTIO_';

/** Mark Istio puts on Envoy's outbound-to-inbound loopback traffic in TPROXY mode. */
const outboundMark = '1338';
/** Port never captured inbound so operators keep SSH into the pod (Istio's wildcard rule). */
const sshPort = 22;

/** One rule: appended (`-A`), or inserted at a 1-based position (`-I chain n`) as Istio does for a few. */
export interface RuleOperation {
  readonly table: TableName;
  readonly chain: string;
  readonly position?: number;
  readonly arguments: readonly string[];
}

/** The complete capture for one IP family: rules in Istio's order, plus TPROXY's policy routing. */
export interface CapturePlan {
  readonly family: IpFamily;
  readonly rules: readonly RuleOperation[];
  /** `ip` command arguments that must hold afterwards (TPROXY only): the fwmark rule and the local route. */
  readonly routes: {
    readonly rule: readonly string[];
    readonly route: readonly string[];
  } | null;
  /** Address Envoy's inbound passthrough binds to, added to `lo` for IPv6 (IPv4 has all of 127/8 already). */
  readonly passthroughAddressOnLoopback: string | null;
}

/**
 * Builds the rules of Istio's sidecar capture for one family. Pure: the same options give the same plan,
 * which `--dry-run` prints and the applier writes with iptables-restore.
 */
export function buildCapturePlan(options: CaptureRuleOptions, family: IpFamily): CapturePlan {
  const rules: RuleOperation[] = [];
  const append = (table: TableName, chainName: string, ...argumentList: string[]) => {
    rules.push({ table, chain: chainName, arguments: argumentList });
  };
  const insert = (table: TableName, chainName: string, position: number, ...argumentList: string[]) => {
    rules.push({ table, chain: chainName, position, arguments: argumentList });
  };
  const loopback = family === 'ipv4' ? '127.0.0.1/32' : '::1/128';
  // Envoy's inbound passthrough cluster binds to this source when it connects to the application.
  const passthroughSource = family === 'ipv4' ? '127.0.0.6/32' : '::6/128';
  const tproxy = options.interceptionMode === 'TPROXY';
  const inboundTable: TableName = tproxy ? 'mangle' : 'nat';
  const mark = options.tproxyMark;
  const ports = (list: readonly number[]) => list.map(String);

  // Traffic on excluded interfaces is never captured, in either direction.
  for (const name of options.excludeInterfaces) {
    append('nat', 'PREROUTING', '-i', name, '-j', 'RETURN');
    append('nat', 'OUTPUT', '-o', name, '-j', 'RETURN');
  }
  if (tproxy) {
    for (const name of options.excludeInterfaces) {
      append('mangle', 'PREROUTING', '-i', name, '-j', 'RETURN');
      append('mangle', 'OUTPUT', '-o', name, '-j', 'RETURN');
    }
  }
  // Inbound traffic from virtual interfaces (KubeVirt VMs) is outbound traffic of the VM: see the
  // ISTIO_REDIRECT inserts below; everything else from them passes.
  for (const name of options.kubeVirtInterfaces) insert('nat', 'PREROUTING', 1, '-i', name, '-j', 'RETURN');

  if (options.dropInvalid) {
    // Out-of-window packets are dropped instead of reset by the conntrack of the REDIRECTed connection.
    append('mangle', 'PREROUTING', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', chain.drop);
    append('mangle', chain.drop, '-j', 'DROP');
  }

  append('nat', chain.inbound, '-p', 'tcp', '--dport', String(options.inboundTunnelPort), '-j', 'RETURN');
  append('nat', chain.redirect, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(options.envoyPort));
  append(
    'nat',
    chain.inboundRedirect,
    '-p',
    'tcp',
    '-j',
    'REDIRECT',
    '--to-ports',
    String(options.inboundCapturePort),
  );

  const inboundPorts = options.inboundPorts;
  if (inboundPorts.kind === 'all' || inboundPorts.ports.length > 0) {
    if (tproxy) {
      // Packets of established connections are marked and accepted; new ones are handed to Envoy by TPROXY.
      append('mangle', chain.divert, '-j', 'MARK', '--set-mark', mark);
      append('mangle', chain.divert, '-j', 'ACCEPT');
      append(
        'mangle',
        chain.tproxy,
        '!',
        '-d',
        loopback,
        '-p',
        'tcp',
        '-j',
        'TPROXY',
        '--tproxy-mark',
        `${mark}/0xffffffff`,
        '--on-port',
        String(options.inboundCapturePort),
      );
    }
    append(inboundTable, 'PREROUTING', '-p', 'tcp', '-j', chain.inbound);
    if (inboundPorts.kind === 'all') {
      append(inboundTable, chain.inbound, '-p', 'tcp', '--dport', String(sshPort), '-j', 'RETURN');
      for (const port of ports(options.inboundPortsExclude)) {
        append(inboundTable, chain.inbound, '-p', 'tcp', '--dport', port, '-j', 'RETURN');
      }
      if (tproxy) {
        append(
          'mangle',
          chain.inbound,
          '-p',
          'tcp',
          '-m',
          'conntrack',
          '--ctstate',
          'RELATED,ESTABLISHED',
          '-j',
          chain.divert,
        );
        append('mangle', chain.inbound, '-p', 'tcp', '-j', chain.tproxy);
      } else {
        append('nat', chain.inbound, '-p', 'tcp', '-j', chain.inboundRedirect);
      }
    } else {
      for (const port of ports(inboundPorts.ports)) {
        if (tproxy) {
          append(
            'mangle',
            chain.inbound,
            '-p',
            'tcp',
            '--dport',
            port,
            '-m',
            'conntrack',
            '--ctstate',
            'RELATED,ESTABLISHED',
            '-j',
            chain.divert,
          );
          append('mangle', chain.inbound, '-p', 'tcp', '--dport', port, '-j', chain.tproxy);
        } else {
          append('nat', chain.inbound, '-p', 'tcp', '--dport', port, '-j', chain.inboundRedirect);
        }
      }
    }
  }

  append('nat', 'OUTPUT', '-p', 'tcp', '-j', chain.output);
  // Port exclusions come before the rules that send the proxy's own loopback calls back to itself.
  for (const port of ports(options.outboundPortsExclude)) {
    append('nat', chain.output, '-p', 'tcp', '--dport', port, '-j', 'RETURN');
  }
  append('nat', chain.output, '-o', 'lo', '-s', passthroughSource, '-j', 'RETURN');

  const include = options.outboundIpRangesInclude;
  const includesLoopback = include.kind === 'list' && include.ranges.some((range) => range.isLoopback);
  const ownerRules = (match: '--uid-owner' | '--gid-owner', id: string) => {
    // The proxy calling the pod's own address through a service VIP goes back to Envoy's inbound side.
    append(
      'nat',
      chain.output,
      '-o',
      'lo',
      '!',
      '-d',
      loopback,
      '-m',
      'owner',
      match,
      id,
      '-j',
      chain.inboundRedirect,
    );
    // The application calling itself over loopback is not captured, unless loopback is explicitly included.
    if (!includesLoopback)
      append('nat', chain.output, '-o', 'lo', '-m', 'owner', '!', match, id, '-j', 'RETURN');
    // The proxy's own outbound traffic is never captured again (no loops).
    append('nat', chain.output, '-m', 'owner', match, id, '-j', 'RETURN');
  };
  for (const uid of options.proxyUids) ownerRules('--uid-owner', uid);
  for (const gid of options.proxyGids) ownerRules('--gid-owner', gid);

  // Applications that talk to localhost (Envoy-aware ones, container to container) are not captured.
  append('nat', chain.output, '-d', loopback, '-j', 'RETURN');
  for (const range of options.outboundIpRangesExclude) {
    if (range.family === family) append('nat', chain.output, '-d', range.text, '-j', 'RETURN');
  }
  for (const port of ports(options.outboundPortsInclude)) {
    append('nat', chain.output, '-p', 'tcp', '--dport', port, '-j', chain.redirect);
  }
  if (include.kind === 'all') {
    append('nat', chain.output, '-j', chain.redirect);
    for (const name of options.kubeVirtInterfaces)
      insert('nat', 'PREROUTING', 1, '-i', name, '-j', chain.redirect);
  } else {
    for (const range of include.ranges) {
      if (range.family !== family) continue;
      for (const name of options.kubeVirtInterfaces) {
        insert('nat', 'PREROUTING', 1, '-i', name, '-d', range.text, '-j', chain.redirect);
      }
      append('nat', chain.output, '-d', range.text, '-j', chain.redirect);
    }
  }

  if (tproxy) {
    // Keep the mark of Envoy's original-source connections on the connection, and restore it on replies so
    // the policy route below delivers them to Envoy.
    append(
      'mangle',
      'PREROUTING',
      '-p',
      'tcp',
      '-m',
      'mark',
      '--mark',
      mark,
      '-j',
      'CONNMARK',
      '--save-mark',
    );
    append('mangle', 'OUTPUT', '-p', 'tcp', '-o', 'lo', '-m', 'mark', '--mark', mark, '-j', 'RETURN');
    for (const [match, ids] of [
      ['--uid-owner', options.proxyUids],
      ['--gid-owner', options.proxyGids],
    ] as const) {
      for (const id of ids) {
        append(
          'mangle',
          'OUTPUT',
          '!',
          '-d',
          loopback,
          '-p',
          'tcp',
          '-o',
          'lo',
          '-m',
          'owner',
          match,
          id,
          '-j',
          'MARK',
          '--set-mark',
          outboundMark,
        );
      }
    }
    append(
      'mangle',
      'OUTPUT',
      '-p',
      'tcp',
      '-m',
      'connmark',
      '--mark',
      mark,
      '-j',
      'CONNMARK',
      '--restore-mark',
    );
    insert('mangle', chain.inbound, 1, '-p', 'tcp', '-m', 'mark', '--mark', mark, '-j', 'RETURN');
    insert('mangle', chain.inbound, 2, '-p', 'tcp', '-s', passthroughSource, '-i', 'lo', '-j', 'RETURN');
    insert(
      'mangle',
      chain.inbound,
      3,
      '-p',
      'tcp',
      '-i',
      'lo',
      '-m',
      'mark',
      '!',
      '--mark',
      outboundMark,
      '-j',
      'RETURN',
    );
  }

  const ipFamily = family === 'ipv4' ? 'inet' : 'inet6';
  return {
    family,
    rules,
    routes: tproxy
      ? {
          rule: ['-f', ipFamily, 'rule', 'add', 'fwmark', mark, 'lookup', options.tproxyRouteTable],
          route: [
            '-f',
            ipFamily,
            'route',
            'add',
            'local',
            'default',
            'dev',
            'lo',
            'table',
            options.tproxyRouteTable,
          ],
        }
      : null,
    passthroughAddressOnLoopback: family === 'ipv6' ? '::6/128' : null,
  };
}

/** ISTIO_* chains a plan creates in a table, in the order Istio declares them (first rule first). */
export function chainsOf(plan: CapturePlan, table: TableName): string[] {
  const chains: string[] = [];
  for (const rule of plan.rules) {
    if (rule.table === table && !builtInChains.has(rule.chain) && !chains.includes(rule.chain))
      chains.push(rule.chain);
  }
  return chains;
}

/** Whether a rule jumps (`-j`/`-g`) to one of the ISTIO_* chains. */
export function jumpsToIstioChain(argumentList: readonly string[]): boolean {
  for (let index = 0; index < argumentList.length - 1; index++) {
    const argument = argumentList[index];
    if ((argument === '-j' || argument === '-g') && argumentList[index + 1]?.startsWith(istioChainPrefix))
      return true;
  }
  return false;
}
