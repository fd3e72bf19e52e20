import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, isIP, isIPv6, type Socket } from 'node:net';
import type { AppProbe } from '../config/app-probers.ts';
import type { Logger } from '../log.ts';
import { grpcHealthCheck } from './grpc-health.ts';

/** Istio returns at most this much of the application's probe response body. */
export const probeBodyLimitBytes = 10 * 1024;
/** The kubelet (and Istio) give up after this many redirects. */
const maximumRedirects = 10;

/**
 * Source addresses Istio gives its probe connections: the sidecar's iptables rules let traffic from them to
 * the pod's own address reach the application directly instead of redirecting it into Envoy's inbound
 * listener.
 */
export const probeSourceAddressIPv4 = '127.0.0.6';
export const probeSourceAddressIPv6 = '::6';

const hopByHopHeaders = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
]);

export interface ProbeAnswer {
  readonly status: number;
  readonly body?: Buffer | string;
}

export interface AppProbersOptions {
  readonly probes: ReadonlyMap<string, AppProbe>;
  /** Where probes go unless a probe names its own host: the pod's IP, as the kubelet would probe it. */
  readonly podIp: string;
  /** The status server's port (once listening): a `Host` header naming it is rewritten to the probed port. */
  readonly statusPort: () => number;
  /** The probe connections' source address; default 127.0.0.6 (::6 for IPv6), `false` for the system's choice. */
  readonly sourceAddress?: string | false;
  readonly logger: Logger;
}

/**
 * `/app-health/<container>/livez|readyz|startupz` and `/app-lifecycle/<container>/prestopz|poststartz`: the
 * kubelet's probes of the application, rewritten by the injector to go through the agent, which runs them
 * against the application as the kubelet would have (HTTP, TCP or gRPC health).
 */
export class AppProbers {
  readonly #options: AppProbersOptions;
  #bindingWorks = true;

  constructor(options: AppProbersOptions) {
    this.#options = options;
  }

  has(path: string): boolean {
    return this.#options.probes.has(path);
  }

  async probe(path: string, incoming: IncomingMessage): Promise<ProbeAnswer> {
    const probe = this.#options.probes.get(path);
    if (probe === undefined) return { status: 400, body: `app prober config does not exists for ${path}` };
    const host = (probe.kind !== 'grpc' ? probe.host : undefined) ?? this.#options.podIp;
    const timeoutMilliseconds = probe.timeoutSeconds * 1000;
    try {
      switch (probe.kind) {
        case 'http':
          return await this.#probeHttp(probe, host, incoming, timeoutMilliseconds);
        case 'tcp':
          await this.#withSourceFallback(host, (localAddress) =>
            tcpConnect(host, probe.port, localAddress, timeoutMilliseconds),
          );
          return { status: 200 };
        case 'grpc': {
          const status = await this.#withSourceFallback(host, (localAddress) =>
            grpcHealthCheck({
              service: probe.service ?? '',
              timeoutMilliseconds,
              ...(typeof incoming.headers['user-agent'] === 'string'
                ? { userAgent: incoming.headers['user-agent'] }
                : {}),
              authority: hostPort(host, probe.port),
              connect: () => connect({ host, port: probe.port, ...(localAddress ? { localAddress } : {}) }),
            }),
          );
          if (status === 'SERVING') return { status: 200 };
          this.#options.logger.error(`grpc probe of ${hostPort(host, probe.port)} answered ${status}`);
          return { status: 500 };
        }
      }
    } catch (error) {
      this.#options.logger.error(
        `Request to probe app failed: ${error instanceof Error ? error.message : String(error)}, original URL path = ${path}`,
      );
      return { status: 500 };
    }
  }

  #sourceAddressFor(host: string): string | undefined {
    const configured = this.#options.sourceAddress;
    if (configured === false || !this.#bindingWorks) return undefined;
    if (configured !== undefined) return configured;
    if (isIP(host) === 0) return undefined;
    return isIPv6(host) ? probeSourceAddressIPv6 : probeSourceAddressIPv4;
  }

  /**
   * Runs `attempt` from the probe source address; where that address does not exist on this machine
   * (EADDRNOTAVAIL), falls back to the system's choice once and for all, and says so.
   */
  async #withSourceFallback<T>(
    host: string,
    attempt: (localAddress: string | undefined) => Promise<T>,
  ): Promise<T> {
    const localAddress = this.#sourceAddressFor(host);
    try {
      return await attempt(localAddress);
    } catch (error) {
      if (localAddress === undefined || (error as NodeJS.ErrnoException).code !== 'EADDRNOTAVAIL')
        throw error;
      this.#bindingWorks = false;
      this.#options.logger.warn(
        `cannot send probes from ${localAddress} (EADDRNOTAVAIL); probing from the default address, which the sidecar's traffic capture may redirect`,
      );
      return attempt(undefined);
    }
  }

  async #probeHttp(
    probe: Extract<AppProbe, { kind: 'http' }>,
    host: string,
    incoming: IncomingMessage,
    timeoutMilliseconds: number,
  ): Promise<ProbeAnswer> {
    const headers = this.#probeHeaders(probe, incoming.headers);
    const signal = AbortSignal.timeout(timeoutMilliseconds);
    let url = new URL(
      `${probe.scheme === 'HTTPS' ? 'https' : 'http'}://${hostPort(host, probe.port)}${probe.path}`,
    );
    for (let redirects = 0; ; redirects++) {
      const target = url;
      const response = await this.#withSourceFallback(host, (localAddress) =>
        httpGet(target, headers, localAddress, signal),
      );
      const status = response.statusCode ?? 500;
      if (status < 300 || status >= 400) {
        const body = await readAtMost(response, probeBodyLimitBytes);
        return { status, body };
      }
      response.resume();
      // As the kubelet: a redirect within the same host is followed, anywhere else counts as success.
      const location = response.headers.location;
      const next = location === undefined ? undefined : new URL(location, url);
      if (next === undefined || next.hostname !== url.hostname) return { status: 200 };
      if (redirects + 1 >= maximumRedirects) throw new Error(`stopped after ${maximumRedirects} redirects`);
      url = next;
    }
  }

  #probeHeaders(
    probe: Extract<AppProbe, { kind: 'http' }>,
    incoming: IncomingHttpHeaders,
  ): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(incoming)) {
      if (value === undefined || hopByHopHeaders.has(name)) continue;
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    // The kubelet addressed the agent; the application expects its own port in Host.
    const requestHost = headers.host;
    if (requestHost !== undefined) {
      const match = /^(.*):(\d+)$/.exec(requestHost);
      if (match && Number(match[2]) === this.#options.statusPort())
        headers.host = `${match[1]}:${probe.port}`;
    }
    for (const header of probe.headers) {
      const name = header.name.toLowerCase();
      headers[name === ':authority' ? 'host' : name] = header.value;
    }
    return headers;
  }
}

function hostPort(host: string, port: number): string {
  return `${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

function httpGet(
  url: URL,
  headers: Record<string, string>,
  localAddress: string | undefined,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const options = {
      method: 'GET',
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port,
      path: `${url.pathname}${url.search}`,
      headers,
      signal,
      // One connection per probe, as the kubelet: an idle keep-alive connection must not fail a probe.
      agent: false,
      ...(localAddress ? { localAddress } : {}),
    } as const;
    const outgoing =
      url.protocol === 'https:'
        ? // The kubelet does not verify the application's certificate either.
          httpsRequest({ ...options, rejectUnauthorized: false }, resolve)
        : httpRequest(options, resolve);
    outgoing.on('error', reject);
    outgoing.end();
  });
}

function readAtMost(response: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = () => {
      response.destroy();
      resolve(Buffer.concat(chunks).subarray(0, limit));
    };
    response.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= limit) done();
    });
    response.on('end', done);
    response.on('error', done);
  });
}

function tcpConnect(
  host: string,
  port: number,
  localAddress: string | undefined,
  timeoutMilliseconds: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`dial tcp ${hostPort(host, port)}: i/o timeout after ${timeoutMilliseconds} ms`));
    }, timeoutMilliseconds);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.end();
      resolve();
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
