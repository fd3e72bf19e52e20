import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type OutgoingHttpHeaders, request, type ServerResponse } from 'node:http';
import { nodePipePath } from './addresses.ts';
import type { HttpConnectionManagerConfig, Route, VirtualHost } from './bootstrap-model.ts';
import type { ClusterManager } from './cluster-manager.ts';
import type { ComponentLogger } from './log.ts';
import type { StatsStore } from './stats.ts';

/** Headers that belong to one hop and are never forwarded (RFC 7230 §6.1, plus Envoy's list). */
const hopByHopHeaders = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

function domainMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return host.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return host.startsWith(pattern.slice(0, -1));
  return pattern === host;
}

/** Envoy picks the virtual host by `:authority` (exact, then suffix/prefix wildcards, then `*`). */
export function selectVirtualHost(hosts: readonly VirtualHost[], authority: string): VirtualHost | undefined {
  const host = authority.toLowerCase();
  const withoutPort = host.replace(/:\d+$/, '');
  const candidates = [host, withoutPort];
  for (const candidate of candidates) {
    const exact = hosts.find((virtualHost) =>
      virtualHost.domains.some((domain) => domain.toLowerCase() === candidate),
    );
    if (exact) return exact;
  }
  for (const candidate of candidates) {
    const wildcard = hosts.find((virtualHost) =>
      virtualHost.domains.some((domain) => domain !== '*' && domainMatches(domain.toLowerCase(), candidate)),
    );
    if (wildcard) return wildcard;
  }
  return hosts.find((virtualHost) => virtualHost.domains.includes('*'));
}

/** The first route whose match accepts the path: `prefix` on the whole `:path`, `path` without the query. */
export function selectRoute(routes: readonly Route[], path: string): Route | undefined {
  const withoutQuery = path.split('?')[0] ?? path;
  return routes.find((route) => {
    const match = route.match;
    if (match.kind === 'prefix') {
      return match.ignoreCase
        ? path.toLowerCase().startsWith(match.value.toLowerCase())
        : path.startsWith(match.value);
    }
    if (match.kind === 'path') {
      return match.ignoreCase
        ? withoutQuery.toLowerCase() === match.value.toLowerCase()
        : withoutQuery === match.value;
    }
    return match.value.test(withoutQuery);
  });
}

export interface HttpRouterOptions {
  readonly config: HttpConnectionManagerConfig;
  readonly clusters: ClusterManager;
  readonly stats: StatsStore;
  readonly log: ComponentLogger;
  /** Whether the listener's connections should close now because of a drain. */
  readonly drainClose: () => boolean;
}

/**
 * An http_connection_manager with the router filter over an inline route_config: picks a route and proxies
 * the request as HTTP/1.1 to the cluster's endpoint, answering locally the way Envoy does on failure.
 */
export class HttpRouter {
  readonly #options: HttpRouterOptions;
  readonly #prefix: string;

  constructor(options: HttpRouterOptions) {
    this.#options = options;
    this.#prefix = `http.${options.config.statPrefix}`;
  }

  handle(downstream: IncomingMessage, response: ServerResponse): void {
    const { stats, config } = this.#options;
    const started = performance.now();
    stats.counter(`${this.#prefix}.downstream_rq_total`).inc();
    stats.counter(`${this.#prefix}.downstream_rq_http1_total`).inc();
    const active = stats.gauge(`${this.#prefix}.downstream_rq_active`);
    active.inc();
    response.once('close', () => {
      active.dec();
      const code = response.statusCode;
      stats.counter(`${this.#prefix}.downstream_rq_completed`).inc();
      stats.counter(`${this.#prefix}.downstream_rq_${Math.floor(code / 100)}xx`).inc();
      stats.histogram(`${this.#prefix}.downstream_rq_time`).record(Math.round(performance.now() - started));
    });
    response.setHeader('server', config.serverName);
    if (this.#options.drainClose()) {
      response.setHeader('connection', 'close');
      response.shouldKeepAlive = false;
    }

    const path = downstream.url ?? '/';
    const virtualHost = selectVirtualHost(config.virtualHosts, downstream.headers.host ?? '');
    const route = virtualHost && selectRoute(virtualHost.routes, path);
    if (!route) {
      stats.counter(`${this.#prefix}.no_route`).inc();
      this.#localReply(response, 404, '');
      downstream.resume();
      return;
    }
    if (route.action.kind === 'direct_response') {
      stats.counter(`${this.#prefix}.rq_direct_response`).inc();
      this.#localReply(response, route.action.status, route.action.body);
      downstream.resume();
      return;
    }
    this.#proxy(downstream, response, route.action.cluster, route.action.timeoutMilliseconds, route, path);
  }

  #localReply(response: ServerResponse, status: number, body: string): void {
    response.statusCode = status;
    if (body !== '') {
      response.setHeader('content-type', 'text/plain');
      response.setHeader('content-length', Buffer.byteLength(body));
    } else {
      response.setHeader('content-length', 0);
    }
    response.end(body);
  }

  #proxy(
    downstream: IncomingMessage,
    response: ServerResponse,
    clusterName: string,
    timeoutMilliseconds: number,
    route: Route,
    path: string,
  ): void {
    const { clusters, stats } = this.#options;
    const cluster = clusters.get(clusterName);
    if (!cluster) {
      this.#localReply(response, 503, '');
      downstream.resume();
      return;
    }
    const clusterPrefix = `cluster.${cluster.name}`;
    const endpoint = clusters.pickEndpoint(cluster);
    if (!endpoint) {
      stats.counter(`${clusterPrefix}.upstream_cx_none_healthy`).inc();
      this.#localReply(response, 503, 'no healthy upstream');
      downstream.resume();
      return;
    }
    stats.counter(`${clusterPrefix}.upstream_rq_total`).inc();
    const activeRequests = stats.gauge(`${clusterPrefix}.upstream_rq_active`);
    activeRequests.inc();
    const started = performance.now();

    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(downstream.headers)) {
      if (!hopByHopHeaders.has(name) && value !== undefined) headers[name] = value;
    }
    headers['x-forwarded-proto'] = 'http';
    if (headers['x-request-id'] === undefined) headers['x-request-id'] = randomUUID();
    if (timeoutMilliseconds > 0) headers['x-envoy-expected-rq-timeout-ms'] = String(timeoutMilliseconds);
    let upstreamPath = path;
    if (
      route.action.kind === 'cluster' &&
      route.action.prefixRewrite !== undefined &&
      route.match.kind === 'prefix'
    ) {
      upstreamPath = route.action.prefixRewrite + path.slice(route.match.value.length);
    }

    let answered = false;
    const fail = (status: number, body: string) => {
      if (answered) return;
      answered = true;
      activeRequests.dec();
      if (response.headersSent) {
        response.destroy();
        return;
      }
      this.#localReply(response, status, body);
    };

    const upstream = request({
      ...(endpoint.kind === 'pipe'
        ? { socketPath: nodePipePath(endpoint.path) }
        : { host: endpoint.address, port: endpoint.port }),
      method: downstream.method ?? 'GET',
      path: upstreamPath,
      headers,
      agent: cluster.agent,
      timeout: cluster.connectTimeoutMilliseconds,
    });
    let routeTimer: NodeJS.Timeout | undefined;
    if (timeoutMilliseconds > 0) {
      routeTimer = setTimeout(() => {
        stats.counter(`${clusterPrefix}.upstream_rq_timeout`).inc();
        upstream.destroy();
        fail(504, 'upstream request timeout');
      }, timeoutMilliseconds);
    }
    upstream.once('socket', (socket) => {
      if (!socket.connecting) return;
      stats.counter(`${clusterPrefix}.upstream_cx_total`).inc();
      socket.once('connect', () => upstream.setTimeout(0));
    });
    upstream.once('timeout', () => {
      stats.counter(`${clusterPrefix}.upstream_cx_connect_timeout`).inc();
      upstream.destroy();
      fail(
        503,
        'upstream connect error or disconnect/reset before headers. reset reason: connection timeout',
      );
    });
    upstream.once('error', (error: NodeJS.ErrnoException) => {
      if (routeTimer) clearTimeout(routeTimer);
      const refused = error.code === 'ECONNREFUSED' || error.code === 'ENOENT';
      if (refused) stats.counter(`${clusterPrefix}.upstream_cx_connect_fail`).inc();
      const reason = refused
        ? 'remote connection failure, transport failure reason: delayed connect error: Connection refused'
        : 'connection termination';
      fail(503, `upstream connect error or disconnect/reset before headers. reset reason: ${reason}`);
    });
    upstream.once('response', (upstreamResponse) => {
      const code = upstreamResponse.statusCode ?? 502;
      stats.counter(`${clusterPrefix}.upstream_rq_${code}`).inc();
      stats.counter(`${clusterPrefix}.upstream_rq_${Math.floor(code / 100)}xx`).inc();
      stats.histogram(`${clusterPrefix}.upstream_rq_time`).record(Math.round(performance.now() - started));
      response.statusCode = code;
      for (const [name, value] of Object.entries(upstreamResponse.headers)) {
        if (hopByHopHeaders.has(name) || value === undefined || name === 'server') continue;
        response.setHeader(name, value);
      }
      response.setHeader('x-envoy-upstream-service-time', String(Math.round(performance.now() - started)));
      upstreamResponse.pipe(response);
      upstreamResponse.once('end', () => {
        if (routeTimer) clearTimeout(routeTimer);
        if (!answered) {
          answered = true;
          activeRequests.dec();
          stats.counter(`${clusterPrefix}.upstream_rq_completed`).inc();
        }
      });
      upstreamResponse.once('error', () => fail(503, 'upstream reset'));
    });
    downstream.pipe(upstream);
    response.once('close', () => {
      if (!answered) upstream.destroy();
    });
  }
}
