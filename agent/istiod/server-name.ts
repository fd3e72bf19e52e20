import { isIP } from 'node:net';

/** Where istiod listens, split into host and port ("istiod.istio-system.svc:15012", "[::1]:15012"). */
export interface IstiodAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `host:port` as Istio's `discoveryAddress`/`CA_ADDR` spell it; `source` names the setting in errors. */
export function parseIstiodAddress(source: string, address: string): IstiodAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(address.trim());
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(
      `${source}: ${JSON.stringify(address)} is not a host:port address (expected e.g. istiod.istio-system.svc:15012)`,
    );
  }
  return { host, port };
}

/** The name istiod's serving certificate is issued for; `localhost` is what port-forwarded agents dial. */
export const istiodServiceName = 'istiod.istio-system.svc';

/**
 * The TLS server name to verify istiod's certificate against, as Istio's agent picks it: `ISTIOD_SAN` when
 * set, else the address's host, with `localhost` mapped to `istiod.istio-system.svc`.
 */
export function istiodServerName(address: IstiodAddress, istiodSan?: string): string {
  if (istiodSan !== undefined && istiodSan !== '') return istiodSan;
  if (address.host === 'localhost') return istiodServiceName;
  return address.host;
}

/** The gRPC target for an address (IPv6 hosts bracketed). */
export function grpcTarget(address: IstiodAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
