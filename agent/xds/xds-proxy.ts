import { EventEmitter } from 'node:events';
import {
  type ChannelOptions,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { type Clock, type Random, systemClock } from '../clock.ts';
import type { AgentConfig } from '../config/agent-config.ts';
import type { BackoffPolicy } from '../identity/backoff.ts';
import {
  createIstiodChannelFactory,
  type IstiodChannelFactory,
  xdsChannelSettings,
} from '../istiod/channel-factory.ts';
import type { Logger, Logging } from '../log.ts';
import { ConnectGate, upstreamConnectBackoff } from './connect-gate.ts';
import { registerXdsProxyMetrics, type XdsProxyMetrics } from './metrics.ts';
import { type AdsMethod, adsMethods, adsProtocol, opaqueAdsService } from './opaque-ads.ts';
import {
  ProxiedStream,
  type ProxiedStreamContext,
  type StreamClosure,
  type StreamSummary,
  type UpstreamFailure,
} from './proxied-stream.ts';
import { openSocketPermissions, prepareSocketPath, removeSocket } from './unix-socket.ts';

export type { StreamClosure, StreamSummary, UpstreamFailure } from './proxied-stream.ts';

/** Istio's agent gives up dialling istiod for a stream after 5 s. */
export const defaultConnectTimeoutMilliseconds = 5_000;

/** How long stop() lets the last statuses reach Envoy before cutting its connections. */
export const shutdownGraceMilliseconds = 1_000;

/** Per stream and direction: bytes handed on but not yet flushed, above which the sender is held back. */
export const defaultMaxBufferedBytes = 4 * 1024 * 1024;

export interface XdsProxyOptions {
  readonly config: AgentConfig;
  readonly logging: Logging;
  /** The agent's registry (served on the status port's merged metrics). */
  readonly registry: Registry;
  readonly clock?: Clock;
  /** Jitter of the reconnect backoff. */
  readonly random?: Random;
  /**
   * How upstream streams reach istiod; the shared istiod channel factory for the discovery address (with the
   * `XDS_HEADER_*` headers) unless a test replaces it. Called for every Envoy stream, so a replaced root
   * certificate is picked up by the next stream.
   */
  readonly openUpstreamChannel?: () => Promise<IstiodChannelFactory>;
  /** How long a stream waits for the connection to istiod before Envoy is told UNAVAILABLE. */
  readonly connectTimeoutMilliseconds?: number;
  readonly maxBufferedBytes?: number;
  readonly reconnectBackoff?: BackoffPolicy;
}

/** A snapshot for readiness and debugging. */
export interface XdsProxyStatus {
  readonly listening: boolean;
  readonly socketPath: string;
  readonly istiodAddress: string;
  /** Envoy streams open now. */
  readonly envoyStreams: number;
  /** Of those, how many have their stream to istiod up. */
  readonly istiodStreams: number;
  /** Whether some Envoy stream is connected through to istiod. */
  readonly upstreamConnected: boolean;
  /** Consecutive failed attempts to reach istiod (0 once istiod answers again). */
  readonly consecutiveFailures: number;
  /** The last time istiod could not be reached or ended a stream with an error. */
  readonly lastFailure?: {
    readonly at: number;
    readonly code: number;
    readonly details: string;
    readonly authenticationFailure: boolean;
  };
}

export interface XdsProxyEvents {
  /** Envoy opened an ADS stream on the socket. */
  'envoy-connected': [stream: StreamSummary];
  /** The stream's connection to istiod is up. */
  'istiod-connected': [stream: StreamSummary];
  /** No connection to istiod could be made for the stream; Envoy was told UNAVAILABLE. */
  'istiod-connection-failed': [stream: StreamSummary, failure: UpstreamFailure];
  /** The stream ended (by Envoy, istiod or the agent). */
  'stream-closed': [stream: StreamSummary, closure: StreamClosure];
}

/**
 * The XDS proxy: Envoy's `xds-grpc` cluster dials a gRPC server on the Unix socket
 * `./etc/istio/proxy/XDS`, and each of its ADS streams (`StreamAggregatedResources` or
 * `DeltaAggregatedResources`) is forwarded, message bytes untouched, to the same method on istiod over the
 * authenticated channel (TLS, bearer token, `ClusterID`, `XDS_HEADER_*`).
 */
export class XdsProxy extends EventEmitter<XdsProxyEvents> {
  readonly #config: AgentConfig;
  readonly #log: Logger;
  readonly #metrics: XdsProxyMetrics;
  readonly #clock: Clock;
  readonly #gate: ConnectGate;
  readonly #openChannel: () => Promise<IstiodChannelFactory>;
  readonly #connectTimeoutMilliseconds: number;
  readonly #maxBufferedBytes: number;
  readonly #streams = new Set<ProxiedStream>();
  #server: Server | undefined;
  #nextStreamId = 1;
  #lastFailure: XdsProxyStatus['lastFailure'];

  constructor(options: XdsProxyOptions) {
    super();
    this.#config = options.config;
    this.#log = options.logging.scope('xdsproxy');
    this.#metrics = registerXdsProxyMetrics(options.registry);
    this.#clock = options.clock ?? systemClock;
    this.#gate = new ConnectGate(
      this.#clock,
      options.random ?? Math.random,
      options.reconnectBackoff ?? upstreamConnectBackoff,
    );
    const settings = xdsChannelSettings(options.config);
    this.#openChannel = options.openUpstreamChannel ?? (() => createIstiodChannelFactory(settings));
    this.#connectTimeoutMilliseconds =
      options.connectTimeoutMilliseconds ?? defaultConnectTimeoutMilliseconds;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? defaultMaxBufferedBytes;
  }

  get socketPath(): string {
    return this.#config.paths.xdsSocket;
  }

  get status(): XdsProxyStatus {
    const streams = [...this.#streams];
    const istiodStreams = streams.filter((stream) => stream.upstreamConnected).length;
    return {
      listening: this.#server !== undefined,
      socketPath: this.socketPath,
      istiodAddress: this.#config.xds.discoveryAddress,
      envoyStreams: streams.length,
      istiodStreams,
      upstreamConnected: istiodStreams > 0,
      consecutiveFailures: this.#gate.consecutiveFailures,
      ...(this.#lastFailure !== undefined ? { lastFailure: this.#lastFailure } : {}),
    };
  }

  /** Listens on the socket (replacing a stale one). Throws, naming the socket, when it cannot. */
  async start(): Promise<void> {
    if (this.#server) return;
    const socketPath = this.socketPath;
    await prepareSocketPath(socketPath, 'XDS proxy');
    const server = new Server();
    const implementation: UntypedServiceImplementation = Object.fromEntries(
      adsMethods.map((method) => [
        method,
        (call: ServerDuplexStream<Buffer, Buffer>) => this.#accept(method, call),
      ]),
    );
    server.addService(opaqueAdsService, implementation);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(), (error) =>
        error ? reject(new Error(`XDS proxy cannot listen on ${socketPath}: ${error.message}`)) : resolve(),
      ),
    );
    await openSocketPermissions(socketPath);
    this.#server = server;
    this.#log.info(
      `XDS proxy listening on ${socketPath}, forwarding to ${this.#config.xds.discoveryAddress} (cluster ${JSON.stringify(this.#config.security.clusterId)})`,
    );
  }

  /**
   * Ends every stream (Envoy is told UNAVAILABLE, istiod's calls are cancelled) and closes the socket. The
   * statuses get {@link shutdownGraceMilliseconds} to reach Envoy; connections still busy then are cut.
   */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const stream of [...this.#streams]) stream.close('the agent is shutting down');
    this.#streams.clear();
    if (!server) return;
    await new Promise<void>((resolve) => {
      const grace = this.#clock.setTimer(() => {
        server.forceShutdown();
        resolve();
      }, shutdownGraceMilliseconds);
      server.tryShutdown(() => {
        grace.cancel();
        resolve();
      });
    });
    await removeSocket(this.socketPath);
  }

  #accept(method: AdsMethod, call: ServerDuplexStream<Buffer, Buffer>): void {
    const context: ProxiedStreamContext = {
      istiodAddress: this.#config.xds.discoveryAddress,
      tokenFile: this.#config.paths.tokenFile,
      openChannel: this.#openChannel,
      channelOptions: upstreamChannelOptions,
      gate: this.#gate,
      clock: this.#clock,
      metrics: this.#metrics,
      logger: this.#log,
      connectTimeoutMilliseconds: this.#connectTimeoutMilliseconds,
      maxBufferedBytes: this.#maxBufferedBytes,
    };
    const stream = new ProxiedStream(this.#nextStreamId++, method, call, context);
    this.#streams.add(stream);
    this.#log.debug(`accepted ${adsProtocol(method)} XDS stream ${stream.id} from Envoy`);
    stream.on('upstream-connected', () => this.emit('istiod-connected', stream.summary));
    stream.on('upstream-failed', (failure) => {
      this.#lastFailure = {
        at: this.#clock.now(),
        code: failure.code,
        details: failure.details,
        authenticationFailure: false,
      };
      this.emit('istiod-connection-failed', stream.summary, failure);
    });
    stream.on('closed', (closure) => {
      this.#streams.delete(stream);
      if (closure.endedBy === 'istiod' && closure.code !== 0) {
        this.#lastFailure = {
          at: this.#clock.now(),
          code: closure.code,
          details: closure.details,
          authenticationFailure: closure.authenticationFailure,
        };
      }
      this.emit('stream-closed', stream.summary, closure);
    });
    this.emit('envoy-connected', stream.summary);
    void stream.start();
  }
}

/**
 * The upstream channel: one per Envoy stream (a local subchannel pool, so a new Envoy stream gets a new
 * connection), no gRPC retries (Envoy re-subscribes instead), istiod's responses of any size (Istio allows
 * MaxInt32), Istio's 1 MiB stream and connection windows, and its client keepalive (30 s, 10 s timeout).
 */
const upstreamChannelOptions: ChannelOptions = {
  'grpc.use_local_subchannel_pool': 1,
  'grpc.enable_retries': 0,
  'grpc.max_receive_message_length': -1,
  'grpc-node.flow_control_window': 1024 * 1024,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
};
