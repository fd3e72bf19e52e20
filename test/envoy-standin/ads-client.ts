import { EventEmitter } from 'node:events';
import {
  type Client,
  type ClientDuplexStream,
  credentials,
  Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import type { EnvoyAddress } from './addresses.ts';
import { JitteredBackoff } from './backoff.ts';
import type { AdsConfig, NodeConfig } from './bootstrap-model.ts';
import { grpcTarget } from './grpc-target.ts';
import type { ComponentLogger } from './log.ts';
import type { StatsStore } from './stats.ts';
import { versionHash, xdsNode } from './xds-node.ts';
import { type AnyMessage, aggregatedDiscoveryService, anyTypeUrl } from './xds-protos.ts';

/** A resource as the subscription holds it: name, version (Delta) and the decoded message. */
export interface XdsResource {
  readonly name: string;
  readonly version: string;
  readonly resource: AnyMessage;
}

/**
 * Accepts (returns undefined) or rejects (returns the NACK message) the complete new state of one type.
 * On acceptance the subscriber applies it.
 */
export type ApplyResources = (resources: ReadonlyMap<string, XdsResource>) => string | undefined;

interface Subscription {
  readonly typeUrl: string;
  readonly statPrefix: string;
  readonly apply: ApplyResources;
  readonly initialFetchTimeoutMilliseconds: number;
  initialized: boolean;
  initialTimer: NodeJS.Timeout | undefined;
  /** SotW: the last accepted version_info. */
  acceptedVersion: string;
  /** The current state (Delta: name → version, needed again on reconnect). */
  resources: Map<string, XdsResource>;
}

export interface AdsClientOptions {
  readonly config: AdsConfig;
  readonly endpoints: readonly EnvoyAddress[];
  readonly node: NodeConfig;
  readonly stats: StatsStore;
  readonly log: ComponentLogger;
  readonly random?: () => number;
}

export interface AdsClientEvents {
  /** The first response of a type was handled (accepted or rejected) or its initial fetch timed out. */
  initialized: [typeUrl: string];
  connected: [];
  disconnected: [code: number, details: string];
  update: [typeUrl: string, accepted: boolean, message: string | undefined];
}

type Stream = ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;

/** Envoy's NACKs carry google.rpc.Code INTERNAL. */
const nackCode = 13;

/**
 * Envoy's ADS client over an `envoy_grpc` cluster: StreamAggregatedResources (api_type GRPC) or
 * DeltaAggregatedResources (DELTA_GRPC). Subscriptions are wildcard; each response is ACKed or NACKed and
 * counted (`<prefix>.update_success|update_rejected|update_attempt|update_failure`, `version`); a dropped
 * stream is re-opened after a jittered back-off and every subscription re-requested.
 */
export class AdsClient extends EventEmitter<AdsClientEvents> {
  readonly #options: AdsClientOptions;
  readonly #subscriptions: Subscription[] = [];
  readonly #backoff: JitteredBackoff;
  readonly #delta: boolean;
  #client: Client | undefined;
  #stream: Stream | undefined;
  #firstRequestOnStream = true;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: AdsClientOptions) {
    super();
    this.#options = options;
    this.#delta = options.config.apiType === 'DELTA_GRPC';
    this.#backoff = new JitteredBackoff(500, 30_000, options.random);
    options.stats.gauge('control_plane.connected_state', 'never_import').set(0);
  }

  get protocol(): 'sotw' | 'delta' {
    return this.#delta ? 'delta' : 'sotw';
  }

  start(): void {
    const Service = aggregatedDiscoveryService();
    const { target, options } = grpcTarget(this.#options.config.clusterName, this.#options.endpoints);
    this.#client = new Service(target, credentials.createInsecure(), options);
    this.#open();
  }

  /** Adds a wildcard subscription; its request goes out now if the stream is open (Envoy: CDS, then LDS). */
  subscribe(
    typeUrl: string,
    statPrefix: string,
    apply: ApplyResources,
    initialFetchTimeoutMilliseconds: number,
  ): void {
    const subscription: Subscription = {
      typeUrl,
      statPrefix,
      apply,
      initialFetchTimeoutMilliseconds,
      initialized: false,
      initialTimer: undefined,
      acceptedVersion: '',
      resources: new Map(),
    };
    this.#subscriptions.push(subscription);
    const { stats } = this.#options;
    for (const name of [
      'update_attempt',
      'update_success',
      'update_rejected',
      'update_failure',
      'init_fetch_timeout',
    ]) {
      stats.counter(`${statPrefix}.${name}`);
    }
    stats.gauge(`${statPrefix}.version`, 'never_import');
    if (initialFetchTimeoutMilliseconds > 0) {
      subscription.initialTimer = setTimeout(() => {
        if (subscription.initialized) return;
        stats.counter(`${statPrefix}.init_fetch_timeout`).inc();
        this.#options.log.warn(`config: initial fetch timed out for ${typeUrl}`);
        this.#markInitialized(subscription);
      }, initialFetchTimeoutMilliseconds);
    }
    stats.counter(`${statPrefix}.update_attempt`).inc();
    if (this.#stream) this.#sendInitialRequest(subscription);
  }

  #markInitialized(subscription: Subscription): void {
    if (subscription.initialized) return;
    subscription.initialized = true;
    if (subscription.initialTimer) clearTimeout(subscription.initialTimer);
    this.emit('initialized', subscription.typeUrl);
  }

  get #methodName(): string {
    return this.#delta ? 'DeltaAggregatedResources' : 'StreamAggregatedResources';
  }

  #open(): void {
    if (this.#stopped || !this.#client) return;
    const metadata = new Metadata();
    for (const [key, value] of this.#options.config.initialMetadata) metadata.add(key, value);
    const method = (this.#client as unknown as Record<string, (metadata: Metadata) => Stream>)[
      this.#methodName
    ];
    if (!method) throw new Error(`${this.#methodName} missing from the ADS service definition`);
    const stream = method.call(this.#client, metadata);
    this.#stream = stream;
    this.#firstRequestOnStream = true;
    let established = false;
    const onEstablished = () => {
      if (established) return;
      established = true;
      this.#options.stats.gauge('control_plane.connected_state', 'never_import').set(1);
      this.emit('connected');
    };
    stream.on('metadata', onEstablished);
    stream.on('data', (message: Record<string, unknown>) => {
      onEstablished();
      this.#backoff.reset();
      this.#onResponse(message);
    });
    let closed = false;
    const onClosed = (code: number, details: string) => {
      if (closed) return;
      closed = true;
      if (this.#stream === stream) this.#stream = undefined;
      this.#options.stats.gauge('control_plane.connected_state', 'never_import').set(0);
      for (const subscription of this.#subscriptions) {
        this.#options.stats.counter(`${subscription.statPrefix}.update_failure`).inc();
        this.#options.stats.counter(`${subscription.statPrefix}.update_attempt`).inc();
      }
      this.emit('disconnected', code, details);
      if (this.#stopped) return;
      this.#options.log.warn(
        `${this.#methodName} gRPC config stream to ${this.#options.config.clusterName} closed: ${code}, ${details}`,
      );
      const delay = this.#backoff.next();
      this.#retryTimer = setTimeout(() => this.#open(), delay);
    };
    stream.on('error', (error: ServiceError) => onClosed(error.code ?? 2, error.details ?? error.message));
    stream.on('status', (status: { code: number; details: string }) => {
      if (status.code === 0) onClosed(0, status.details || 'stream ended');
    });
    stream.on('end', () => onClosed(0, 'stream ended'));
    for (const subscription of this.#subscriptions) this.#sendInitialRequest(subscription);
  }

  #send(request: Record<string, unknown>): void {
    const stream = this.#stream;
    if (!stream) return;
    const withNode =
      this.#firstRequestOnStream || !this.#options.config.setNodeOnFirstMessageOnly
        ? { node: xdsNode(this.#options.node), ...request }
        : request;
    this.#firstRequestOnStream = false;
    stream.write(withNode);
  }

  #sendInitialRequest(subscription: Subscription): void {
    if (this.#delta) {
      this.#send({
        type_url: subscription.typeUrl,
        resource_names_subscribe: [],
        resource_names_unsubscribe: [],
        initial_resource_versions: Object.fromEntries(
          [...subscription.resources.values()].map((resource) => [resource.name, resource.version]),
        ),
        response_nonce: '',
      });
    } else {
      this.#send({
        version_info: subscription.acceptedVersion,
        resource_names: [],
        type_url: subscription.typeUrl,
        response_nonce: '',
      });
    }
  }

  #onResponse(message: Record<string, unknown>): void {
    const typeUrl = String(message.type_url ?? '');
    const nonce = String(message.nonce ?? '');
    const subscription = this.#subscriptions.find((candidate) => candidate.typeUrl === typeUrl);
    if (!subscription) {
      this.#options.log.warn(
        `Ignoring the message for type URL ${typeUrl} as it has no current subscribers.`,
      );
      return;
    }
    const { stats, log } = this.#options;
    stats.counter(`${subscription.statPrefix}.update_attempt`).inc();
    let next: Map<string, XdsResource>;
    let version: string;
    let error: string | undefined;
    try {
      if (this.#delta) {
        version = String(message.system_version_info ?? '');
        next = new Map(subscription.resources);
        for (const removed of (message.removed_resources as string[] | undefined) ?? []) next.delete(removed);
        for (const entry of (message.resources as Array<Record<string, unknown>> | undefined) ?? []) {
          const resource = (entry.resource ?? {}) as AnyMessage;
          this.#checkType(resource, typeUrl);
          const name = String(entry.name ?? resource.name ?? '');
          next.set(name, { name, version: String(entry.version ?? ''), resource });
        }
      } else {
        version = String(message.version_info ?? '');
        next = new Map();
        for (const resource of (message.resources as AnyMessage[] | undefined) ?? []) {
          this.#checkType(resource, typeUrl);
          const name = String(resource.name ?? '');
          if (next.has(name)) throw new Error(`duplicate resource ${name} found`);
          next.set(name, { name, version, resource });
        }
      }
      error = subscription.apply(next);
    } catch (caught) {
      error = (caught as Error).message;
      next = subscription.resources;
      version = subscription.acceptedVersion;
    }

    if (error === undefined) {
      subscription.resources = next;
      subscription.acceptedVersion = version;
      stats.counter(`${subscription.statPrefix}.update_success`).inc();
      stats.gauge(`${subscription.statPrefix}.version`, 'never_import').set(versionHash(version));
      stats.gauge(`${subscription.statPrefix}.update_time`, 'never_import').set(Date.now());
      this.#sendAck(subscription, nonce, undefined);
      this.emit('update', typeUrl, true, undefined);
    } else {
      stats.counter(`${subscription.statPrefix}.update_rejected`).inc();
      log.warn(`gRPC config for ${typeUrl} rejected: ${error}`);
      this.#sendAck(subscription, nonce, error);
      this.emit('update', typeUrl, false, error);
    }
    // A rejected first response still completes initialization: Envoy does not wait forever on bad config.
    this.#markInitialized(subscription);
  }

  #checkType(resource: AnyMessage, typeUrl: string): void {
    const embedded = anyTypeUrl(resource);
    if (embedded !== typeUrl) {
      throw new Error(
        `type URL ${embedded} embedded in an individual Any does not match the message-wide type URL ${typeUrl} in DiscoveryResponse`,
      );
    }
    if (resource['@type'] === undefined) throw new Error(`unable to decode resource of type ${embedded}`);
  }

  #sendAck(subscription: Subscription, nonce: string, error: string | undefined): void {
    const errorDetail = error === undefined ? {} : { error_detail: { code: nackCode, message: error } };
    if (this.#delta) {
      this.#send({ type_url: subscription.typeUrl, response_nonce: nonce, ...errorDetail });
    } else {
      this.#send({
        version_info: subscription.acceptedVersion,
        resource_names: [],
        type_url: subscription.typeUrl,
        response_nonce: nonce,
        ...errorDetail,
      });
    }
  }

  stop(): void {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    for (const subscription of this.#subscriptions) {
      if (subscription.initialTimer) clearTimeout(subscription.initialTimer);
    }
    this.#stream?.cancel();
    this.#stream = undefined;
    this.#client?.close();
  }
}
