import { isIP } from 'node:net';
import { ConfigurationError } from './bootstrap-load.ts';

/** `envoy.config.core.v3.Address`: a socket address or a Unix pipe (a leading `@` names an abstract socket). */
export type EnvoyAddress =
  | {
      readonly kind: 'socket';
      readonly address: string;
      readonly port: number;
      readonly ipv4Compat: boolean;
    }
  | { readonly kind: 'pipe'; readonly path: string; readonly mode: number };

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads an Address message; `where` names the field for errors. */
export function parseAddress(value: unknown, where: string): EnvoyAddress {
  if (!isObject(value)) throw new ConfigurationError(`${where}: expected an Address message`);
  const socket = value.socket_address;
  const pipe = value.pipe;
  if (isObject(socket)) {
    const address = typeof socket.address === 'string' ? socket.address : '';
    if (socket.protocol !== undefined && socket.protocol !== 'TCP') {
      throw new ConfigurationError(`${where}: the Envoy stand-in serves TCP addresses only`);
    }
    if (isIP(address) === 0) {
      // Envoy resolves socket addresses with the default resolver, which accepts IP literals only.
      throw new ConfigurationError(`malformed IP address: ${address}`);
    }
    const port = socket.port_value === undefined ? 0 : Number(socket.port_value);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ConfigurationError(`${where}: invalid port_value ${String(socket.port_value)}`);
    }
    return { kind: 'socket', address, port, ipv4Compat: socket.ipv4_compat === true };
  }
  if (isObject(pipe)) {
    if (typeof pipe.path !== 'string' || pipe.path === '') {
      throw new ConfigurationError(`${where}: Pipe.path must be a non-empty string`);
    }
    return { kind: 'pipe', path: pipe.path, mode: Number(pipe.mode ?? 0) };
  }
  throw new ConfigurationError(`${where}: an Address needs socket_address or pipe`);
}

/** Envoy's `Address::asString()`: `1.2.3.4:80`, `[::1]:80`, or the pipe path. */
export function addressAsString(address: EnvoyAddress): string {
  if (address.kind === 'pipe') return address.path;
  return isIP(address.address) === 6
    ? `[${address.address}]:${address.port}`
    : `${address.address}:${address.port}`;
}

/** The address as a stat name segment (`:` is not allowed in stat names and becomes `_`). */
export function addressStatName(address: EnvoyAddress): string {
  return addressAsString(address).replaceAll(':', '_');
}

/** The path Node needs for a pipe (abstract sockets start with NUL instead of `@`). */
export function nodePipePath(path: string): string {
  return path.startsWith('@') ? `\0${path.slice(1)}` : path;
}

/** Options for `net.Server.listen` / `net.connect`. */
export function listenOptions(
  address: EnvoyAddress,
): { host: string; port: number; ipv6Only?: boolean } | { path: string } {
  if (address.kind === 'pipe') return { path: nodePipePath(address.path) };
  if (isIP(address.address) === 6)
    return { host: address.address, port: address.port, ipv6Only: !address.ipv4Compat };
  return { host: address.address, port: address.port };
}

/** The JSON form `/listeners?format=json` and the admin-address file use. */
export function addressToJson(address: EnvoyAddress, boundPort?: number): Record<string, unknown> {
  if (address.kind === 'pipe') return { pipe: { path: address.path, mode: address.mode } };
  return { socket_address: { address: address.address, port_value: boundPort ?? address.port } };
}
