import { isIPv4, isIPv6 } from 'node:net';

/**
 * Whether a peer address is the loopback interface (127.0.0.0/8, ::1, or either mapped into IPv6), as
 * Istio's `IsRequestFromLocalhost` decides for `/quitquitquit`, `/drain` and localhost-only metrics.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const unzoned = address.split('%')[0] ?? '';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(unzoned);
  const candidate = mapped?.[1] ?? unzoned;
  if (isIPv4(candidate)) return candidate.startsWith('127.');
  if (isIPv6(candidate)) return /^(0{0,4}:){2,7}0{0,3}1$|^::1$/.test(candidate);
  return false;
}
