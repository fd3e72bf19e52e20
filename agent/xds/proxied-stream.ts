import { EventEmitter } from 'node:events';
import {
  type ChannelInterface,
  type ChannelOptions,
  connectivityState,
  Metadata,
  type ServerDuplexStream,
  type ServiceError,
  type StatusObject,
  status,
} from '@grpc/grpc-js';
import { type Clock, SleepAbortedError, sleep, type Timer } from '../clock.ts';
import type { IstiodChannelFactory } from '../istiod/channel-factory.ts';
import type { Logger } from '../log.ts';
import type { ConnectGate } from './connect-gate.ts';
import { MessagePump } from './message-pump.ts';
import type { XdsProxyMetrics } from './metrics.ts';
import { type AdsMethod, adsProtocol, OpaqueAdsClient, type OpaqueAdsStream } from './opaque-ads.ts';
import { isAuthenticationFailure, statusName, terminationType } from './termination.ts';

/** What the proxy's events say about one Envoy stream. */
export interface StreamSummary {
  /** Numbered from 1 in the order Envoy opened them. */
  readonly id: number;
  readonly method: AdsMethod;
  readonly protocol: 'sotw' | 'delta';
  /** Messages forwarded from Envoy to istiod so far. */
  readonly requests: number;
  /** Messages forwarded from istiod to Envoy so far. */
  readonly responses: number;
  /** Whether the connection to istiod was made for this stream. */
  readonly upstreamEstablished: boolean;
}

/** How a proxied stream ended, and the status Envoy was (or would have been) given. */
export interface StreamClosure {
  /**
   * `envoy`: Envoy cancelled or half-closed its stream; `istiod`: istiod ended the upstream stream (its status
   * is passed on to Envoy); `agent`: no connection to istiod could be made, or the agent is stopping.
   */
  readonly endedBy: 'envoy' | 'istiod' | 'agent';
  readonly code: status;
  readonly details: string;
  /** istiod refused the caller (UNAUTHENTICATED or PERMISSION_DENIED): the token or identity is wrong. */
  readonly authenticationFailure: boolean;
}

/** No connection to istiod could be made for a stream. */
export interface UpstreamFailure {
  readonly code: status;
  readonly details: string;
  /** How long the next stream waits before dialling istiod again. */
  readonly retryInMilliseconds: number;
}

interface ProxiedStreamEvents {
  'upstream-connected': [];
  'upstream-failed': [failure: UpstreamFailure];
  closed: [closure: StreamClosure];
}

/** Everything one proxied stream needs from the proxy. */
export interface ProxiedStreamContext {
  /** The discovery address, for log lines. */
  readonly istiodAddress: string;
  /** The token file, named when istiod rejects the caller. */
  readonly tokenFile: string;
  readonly openChannel: () => Promise<IstiodChannelFactory>;
  readonly channelOptions: ChannelOptions;
  readonly gate: ConnectGate;
  readonly clock: Clock;
  readonly metrics: XdsProxyMetrics;
  readonly logger: Logger;
  readonly connectTimeoutMilliseconds: number;
  readonly maxBufferedBytes: number;
}

/**
 * One Envoy ADS stream joined to its own stream to istiod (on its own connection, as Istio's agent does, so
 * a new Envoy stream never inherits a half-used upstream). Messages pass as bytes in both directions with
 * flow control; istiod's status ends Envoy's stream so Envoy reconnects and re-subscribes; Envoy going away
 * cancels the upstream call.
 */
export class ProxiedStream extends EventEmitter<ProxiedStreamEvents> {
  readonly id: number;
  readonly method: AdsMethod;
  readonly #downstream: ServerDuplexStream<Buffer, Buffer>;
  readonly #context: ProxiedStreamContext;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  #client: OpaqueAdsClient | undefined;
  #upstream: OpaqueAdsStream | undefined;
  #requestPump: MessagePump | undefined;
  #responsePump: MessagePump | undefined;
  #connectTimer: Timer | undefined;
  #stopWatchingChannel: (() => void) | undefined;
  #established = false;
  #answered = false;
  #upstreamStatus: StatusObject | undefined;
  #upstreamEnded = false;
  #closure: StreamClosure | undefined;

  constructor(
    id: number,
    method: AdsMethod,
    downstream: ServerDuplexStream<Buffer, Buffer>,
    context: ProxiedStreamContext,
  ) {
    super();
    this.id = id;
    this.method = method;
    this.#downstream = downstream;
    this.#context = context;
    this.#log = context.logger.child({ id });
    // Until istiod's stream exists nothing reads from Envoy: its requests wait in gRPC's flow control.
    downstream.on('cancelled', () => this.#onEnvoyGone('cancelled by Envoy'));
  }

  get summary(): StreamSummary {
    return {
      id: this.id,
      method: this.method,
      protocol: adsProtocol(this.method),
      requests: this.#requestPump?.forwarded ?? 0,
      responses: this.#responsePump?.forwarded ?? 0,
      upstreamEstablished: this.#established,
    };
  }

  /** Whether the stream to istiod is up (connected and not ended). */
  get upstreamConnected(): boolean {
    return this.#established && this.#closure === undefined;
  }

  get closure(): StreamClosure | undefined {
    return this.#closure;
  }

  /** Opens the upstream stream (after the backoff the gate asks for) and starts forwarding. */
  async start(): Promise<void> {
    const { gate, clock, openChannel } = this.#context;
    let factory: IstiodChannelFactory;
    try {
      const delay = gate.delayBeforeAttempt();
      if (delay > 0) {
        this.#log.debug(`waiting ${delay} ms before connecting to istiod again`);
        await sleep(clock, delay, this.#abort.signal);
      }
      factory = await openChannel();
    } catch (error) {
      if (error instanceof SleepAbortedError || this.#closure) return;
      this.#connectionFailed(status.UNAVAILABLE, (error as Error).message);
      return;
    }
    if (this.#closure) return;
    this.#openUpstream(factory);
  }

  /** Ends the stream from the agent's side (the agent is stopping): Envoy gets UNAVAILABLE and reconnects. */
  close(details: string): void {
    if (this.#closure) return;
    this.#finish({ endedBy: 'agent', code: status.UNAVAILABLE, details, authenticationFailure: false });
  }

  #openUpstream(factory: IstiodChannelFactory): void {
    const { metrics, maxBufferedBytes, connectTimeoutMilliseconds, clock } = this.#context;
    const client = factory.createClient(OpaqueAdsClient, this.#context.channelOptions);
    const upstream = client[this.method]();
    this.#client = client;
    this.#upstream = upstream;
    // A non-OK status arrives as 'error' and then 'status'; OK only as 'status'.
    upstream.on('error', (error: ServiceError) =>
      this.#onUpstreamStatus({ code: error.code, details: error.details, metadata: error.metadata }),
    );
    upstream.on('status', (received: StatusObject) => this.#onUpstreamStatus(received));
    upstream.on('end', () => {
      this.#upstreamEnded = true;
      this.#maybeFinishFromUpstream();
    });
    this.#requestPump = new MessagePump(this.#downstream, upstream, {
      maxBufferedBytes,
      onMessage: () => metrics.requests.inc(),
    });
    this.#responsePump = new MessagePump(upstream, this.#downstream, {
      maxBufferedBytes,
      onMessage: () => {
        metrics.responses.inc();
        if (!this.#answered) {
          this.#answered = true;
          this.#context.gate.recordSuccess();
        }
      },
    });
    this.#downstream.on('end', () => this.#onEnvoyGone('half-closed by Envoy'));
    this.#requestPump.start();
    this.#responsePump.start();
    this.#stopWatchingChannel = whenReady(client.getChannel(), () => this.#onUpstreamReady());
    this.#connectTimer = clock.setTimer(() => {
      if (this.#established || this.#closure) return;
      this.#connectionFailed(
        status.UNAVAILABLE,
        `no connection to istiod at ${factory.target} within ${connectTimeoutMilliseconds} ms`,
      );
    }, connectTimeoutMilliseconds);
  }

  #onUpstreamReady(): void {
    if (this.#closure || this.#established) return;
    this.#established = true;
    this.#connectTimer?.cancel();
    this.#log.info(`connected to upstream XDS server: ${this.#context.istiodAddress}`);
    this.emit('upstream-connected');
  }

  #onUpstreamStatus(received: StatusObject): void {
    if (this.#upstreamStatus) return;
    this.#upstreamStatus = received;
    if (this.#closure) return;
    if (!this.#established && !this.#answered) {
      this.#connectionFailed(received.code, received.details);
      return;
    }
    const { metrics, gate, istiodAddress, tokenFile } = this.#context;
    const type = terminationType(received.code, received.details);
    metrics.istiodConnectionTerminations.inc({ type });
    const described = `${statusName(received.code)}: ${received.details}`;
    if (isAuthenticationFailure(received.code)) {
      this.#log.error(
        `istiod at ${istiodAddress} rejected the XDS stream (${described}); the bearer token is read from ${tokenFile}: check that the file exists, is current and carries the audience istiod expects`,
      );
    } else if (type === 'error') {
      this.#log.warn(`upstream terminated with unexpected error ${described}`);
    } else {
      this.#log.debug(`upstream terminated with status ${described}`);
    }
    // A stream istiod ends before answering anything is a failed attempt: the next one backs off.
    if (!this.#answered) gate.recordFailure();
    this.#maybeFinishFromUpstream();
  }

  /** Passes istiod's status on once every response before it has been handed to Envoy. */
  #maybeFinishFromUpstream(): void {
    const received = this.#upstreamStatus;
    if (!received || !this.#upstreamEnded || this.#closure) return;
    this.#finish({
      endedBy: 'istiod',
      code: received.code,
      details: received.details,
      authenticationFailure: isAuthenticationFailure(received.code),
    });
  }

  #connectionFailed(code: status, details: string): void {
    if (this.#closure) return;
    const { metrics, gate, istiodAddress } = this.#context;
    metrics.istiodConnectionFailures.inc();
    const retryInMilliseconds = gate.recordFailure();
    this.#log.error(`failed to connect to upstream ${istiodAddress}: ${statusName(code)}: ${details}`);
    this.emit('upstream-failed', { code, details, retryInMilliseconds });
    // Envoy always sees UNAVAILABLE here: the control plane is unreachable, so it retries.
    this.#finish({
      endedBy: 'agent',
      code: status.UNAVAILABLE,
      details: `cannot reach istiod at ${istiodAddress}: ${details}`,
      authenticationFailure: false,
    });
  }

  #onEnvoyGone(how: string): void {
    if (this.#closure) return;
    this.#context.metrics.envoyConnectionTerminations.inc({ type: 'cancelled' });
    this.#log.debug(`downstream terminated: ${how}`);
    this.#finish({
      endedBy: 'envoy',
      code: how.startsWith('cancelled') ? status.CANCELLED : status.OK,
      details: how,
      authenticationFailure: false,
    });
  }

  /** Settles the stream once: Envoy's side gets the status (unless Envoy ended it), istiod's side is released. */
  #finish(closure: StreamClosure): void {
    if (this.#closure) return;
    this.#closure = closure;
    this.#abort.abort();
    this.#connectTimer?.cancel();
    this.#stopWatchingChannel?.();
    this.#requestPump?.stop();
    this.#responsePump?.stop();
    const downstream = this.#downstream;
    if (closure.endedBy !== 'envoy' || closure.code === status.OK) {
      if (!downstream.destroyed && !downstream.writableEnded) {
        if (closure.code === status.OK) downstream.end();
        // grpc-js sends an emitted error as the call's status, after the responses already written.
        else
          downstream.emit('error', {
            code: closure.code,
            details: closure.details,
            metadata: new Metadata(),
          });
      }
    }
    if (this.#upstream && !this.#upstreamStatus) this.#upstream.cancel();
    this.#client?.close();
    this.emit('closed', closure);
  }
}

/** Calls `onReady` once the channel is READY; stops on its own when the channel shuts down. */
function whenReady(channel: ChannelInterface, onReady: () => void): () => void {
  let stopped = false;
  const check = () => {
    if (stopped) return;
    const state = channel.getConnectivityState(false);
    if (state === connectivityState.READY) {
      onReady();
      return;
    }
    if (state === connectivityState.SHUTDOWN) return;
    channel.watchConnectivityState(state, Number.POSITIVE_INFINITY, check);
  };
  check();
  return () => {
    stopped = true;
  };
}
