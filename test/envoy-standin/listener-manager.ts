import { unlinkSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { addressAsString, addressStatName, listenOptions, nodePipePath } from './addresses.ts';
import type { StaticListener } from './bootstrap-model.ts';
import type { ClusterManager } from './cluster-manager.ts';
import type { DrainManager } from './drain-manager.ts';
import { HttpRouter } from './http-router.ts';
import type { ComponentLogger } from './log.ts';
import type { StatsStore } from './stats.ts';

export interface ListenerManagerOptions {
  readonly listeners: readonly StaticListener[];
  readonly clusters: ClusterManager;
  readonly stats: StatsStore;
  readonly drain: DrainManager;
  readonly log: ComponentLogger;
}

export interface ActiveListener {
  readonly config: StaticListener;
  /** The port actually bound (differs from the configured one for port 0). */
  boundPort: number | undefined;
  listening: boolean;
}

interface ListenerRuntime extends ActiveListener {
  readonly server: Server;
  readonly http: HttpServer | undefined;
  readonly connections: Set<Socket>;
  readonly statPrefix: string;
}

/**
 * Static listeners served for real. Envoy binds them when its workers start (before that a connection is
 * refused) with SO_REUSEPORT — Envoy's default on Linux — which is also how a hot-restart child shares the
 * ports with its parent here. Stopping a listener closes the listening socket; its connections stay until
 * they close or are drained.
 */
export class ListenerManager {
  readonly #options: ListenerManagerOptions;
  readonly #listeners: ListenerRuntime[] = [];
  #workersStarted = false;

  constructor(options: ListenerManagerOptions) {
    this.#options = options;
    const { stats } = options;
    for (const config of options.listeners) {
      const statPrefix = `listener.${config.statPrefix ?? addressStatName(config.address)}`;
      // Envoy creates a listener's stats with the listener, so they exist (unused) before traffic.
      stats.gauge(`${statPrefix}.downstream_cx_active`);
      stats.counter(`${statPrefix}.downstream_cx_total`);
      this.#listeners.push(this.#createRuntime(config, statPrefix));
    }
    stats.gauge('listener_manager.total_listeners_active').set(options.listeners.length);
    stats.gauge('listener_manager.total_listeners_warming').set(0);
    stats.gauge('listener_manager.total_listeners_draining').set(0);
    stats.counter('listener_manager.listener_added').inc(options.listeners.length);
  }

  #createRuntime(config: StaticListener, statPrefix: string): ListenerRuntime {
    const { stats, log, clusters } = this.#options;
    const inbound = config.trafficDirection === 'INBOUND';
    const drainClose = () => this.#options.drain.drainClose(inbound);
    let http: HttpServer | undefined;
    const handler = config.handler;
    if (handler?.kind === 'http_connection_manager') {
      const router = new HttpRouter({ config: handler, clusters, stats, log, drainClose });
      // Envoy's default HTTP idle timeout is one hour; Node's 5 s keep-alive default would close early.
      http = createHttpServer({ keepAliveTimeout: 3_600_000, requestTimeout: 0 }, (request, response) =>
        router.handle(request, response),
      );
      http.headersTimeout = 0;
    }
    const connections = new Set<Socket>();
    const server = createServer({ pauseOnConnect: false }, (socket) => {
      connections.add(socket);
      const active = stats.gauge(`${statPrefix}.downstream_cx_active`);
      active.inc();
      stats.counter(`${statPrefix}.downstream_cx_total`).inc();
      const opened = performance.now();
      socket.once('close', () => {
        connections.delete(socket);
        active.dec();
        stats.counter(`${statPrefix}.downstream_cx_destroy`).inc();
        stats
          .histogram(`${statPrefix}.downstream_cx_length_ms`)
          .record(Math.round(performance.now() - opened));
      });
      socket.on('error', () => socket.destroy());
      if (http) {
        const prefix = `http.${handler?.statPrefix ?? ''}`;
        stats.counter(`${prefix}.downstream_cx_total`).inc();
        stats.counter(`${prefix}.downstream_cx_http1_total`).inc();
        const httpActive = stats.gauge(`${prefix}.downstream_cx_active`);
        httpActive.inc();
        socket.once('close', () => httpActive.dec());
        http.emit('connection', socket);
      } else if (handler?.kind === 'tcp_proxy') {
        this.#proxyTcp(socket, handler.cluster, handler.statPrefix);
      } else {
        // No network filter the stand-in implements: Envoy would close a connection with no filter chain.
        socket.destroy();
      }
    });
    return { config, boundPort: undefined, listening: false, server, http, connections, statPrefix };
  }

  #proxyTcp(socket: Socket, clusterName: string, statPrefix: string): void {
    const { clusters, stats } = this.#options;
    stats.counter(`tcp.${statPrefix}.downstream_cx_total`).inc();
    const cluster = clusters.get(clusterName);
    const endpoint = cluster && clusters.pickEndpoint(cluster);
    if (!endpoint) {
      stats.counter(`tcp.${statPrefix}.downstream_cx_no_route`).inc();
      socket.destroy();
      return;
    }
    const upstream =
      endpoint.kind === 'pipe'
        ? connect({ path: nodePipePath(endpoint.path) })
        : connect({ host: endpoint.address, port: endpoint.port });
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  }

  get workersStarted(): boolean {
    return this.#workersStarted;
  }

  /** Binds every listener ("starting workers"). Rejects with Envoy's message when a bind fails. */
  async startWorkers(): Promise<void> {
    this.#workersStarted = true;
    for (const listener of this.#listeners) await this.#bind(listener);
  }

  async #bind(listener: ListenerRuntime): Promise<void> {
    const address = listener.config.address;
    const options = listenOptions(address);
    if (address.kind === 'pipe' && !address.path.startsWith('@')) {
      try {
        unlinkSync(address.path);
      } catch {
        // Nothing stale to remove.
      }
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(new Error(`cannot bind '${addressAsString(address)}': ${describeErrno(error)}`));
      };
      listener.server.once('error', onError);
      listener.server.listen(
        { ...options, ...(address.kind === 'socket' ? { reusePort: true } : {}) },
        () => {
          listener.server.off('error', onError);
          const bound = listener.server.address();
          listener.boundPort = typeof bound === 'object' && bound ? bound.port : undefined;
          listener.listening = true;
          resolve();
        },
      );
    });
  }

  /** `stopListeners`: stop accepting on all listeners, or only those with traffic_direction INBOUND. */
  stopListeners(scope: 'all' | 'inbound'): void {
    for (const listener of this.#listeners) {
      if (scope === 'inbound' && listener.config.trafficDirection !== 'INBOUND') continue;
      if (!listener.listening) continue;
      listener.listening = false;
      listener.server.close();
      this.#options.log.info(`stopped listener '${listener.config.name}'`);
    }
    this.#updateActiveGauge();
  }

  #updateActiveGauge(): void {
    const active = this.#listeners.filter((listener) => listener.listening || !this.#workersStarted).length;
    this.#options.stats.gauge('listener_manager.total_listeners_active').set(active);
  }

  /** Closes idle keep-alive connections (a drain asks them to go). */
  closeIdleConnections(): void {
    for (const listener of this.#listeners) listener.http?.closeIdleConnections();
  }

  list(): readonly ActiveListener[] {
    return this.#listeners;
  }

  /** Addresses (as strings) this process listens on, for a hot-restart child. */
  listeningAddresses(): string[] {
    return this.#listeners
      .filter((listener) => listener.listening)
      .map((l) => addressAsString(l.config.address));
  }

  /** Stops everything and drops the connections (server shutdown). */
  close(): void {
    for (const listener of this.#listeners) {
      if (listener.listening) listener.server.close();
      listener.listening = false;
      for (const socket of listener.connections) socket.destroy();
    }
  }
}

export function describeErrno(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return 'Address already in use';
    case 'EACCES':
      return 'Permission denied';
    case 'EADDRNOTAVAIL':
      return 'Cannot assign requested address';
    default:
      return error.message;
  }
}
