import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 'ipv4' | 'ipv6';

/** One CIDR from `-i`/`-x`, validated; `text` is written to iptables as given. */
export interface IpRange {
  readonly text: string;
  readonly family: IpFamily;
  /** The range's address is a loopback address (127.0.0.0/8 or ::1), which changes the owner rules. */
  readonly isLoopback: boolean;
}

/**
 * Parses `address/prefix` (IPv4 or IPv6). Returns a description of what is wrong instead of throwing so the
 * caller can name the flag or variable the value came from.
 */
export function parseIpRange(text: string): IpRange | { readonly problem: string } {
  const slash = text.indexOf('/');
  if (slash < 0) return { problem: 'is not in CIDR form (expected address/prefix, e.g. 10.0.0.0/8)' };
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const family: IpFamily | undefined = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (family === undefined) return { problem: `has an invalid address ${JSON.stringify(address)}` };
  const maximumPrefix = family === 'ipv4' ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > maximumPrefix) {
    return {
      problem: `has an invalid prefix length ${JSON.stringify(prefixText)} (expected 0 to ${maximumPrefix})`,
    };
  }
  return { text, family, isLoopback: isLoopbackAddress(address, family) };
}

export function isLoopbackAddress(address: string, family: IpFamily): boolean {
  if (family === 'ipv4') return address.startsWith('127.');
  return expandIpv6(address) === '0000:0000:0000:0000:0000:0000:0000:0001';
}

/** The IP family of a plain address (INSTANCE_IP), or undefined when it is not an address. */
export function addressFamily(address: string): IpFamily | undefined {
  if (isIPv4(address)) return 'ipv4';
  if (isIPv6(address)) return 'ipv6';
  return undefined;
}

function expandIpv6(address: string): string {
  const [head = '', tail] = address.toLowerCase().split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups =
    tail === undefined ? headGroups : [...headGroups, ...Array(missing).fill('0'), ...tailGroups];
  return groups.map((group) => group.padStart(4, '0')).join(':');
}
