import { EventEmitter } from 'node:events';
import {
  type GrpcObject,
  loadPackageDefinition,
  type Server,
  type ServerDuplexStream,
  type ServiceClientConstructor,
  type ServiceDefinition,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { envoyProtoLoaderOptions } from '../../agent/envoy-api/protos.ts';

/**
 * A test implementation of Envoy's `envoy.service.discovery.v3.AggregatedDiscoveryService` for any
 * grpc-js server: both StreamAggregatedResources (state of the world) and DeltaAggregatedResources.
 *
 * Each stream answers the first request of every type URL with that type's current resources (none unless
 * configured) at version "1"; ACKs and NACKs are recorded, not answered. `setResources` pushes a new
 * version to every stream subscribed to the type; `holdResponses`/`releaseResponses` keep a type
 * unanswered for a while (a client then stays waiting for it). Node ids, request metadata (gRPC headers) and every
 * request are recorded; `dropStreams` ends open streams with an error status, as a restarting istiod would.
 *
 * Resources are google.protobuf.Any values in proto-loader's JSON form: `{ '@type': typeUrl, ...fields }`
 * (Cluster, Listener, RouteConfiguration, ClusterLoadAssignment, Secret and the HTTP connection manager
 * and router filters are known), or raw `{ type_url, value: Uint8Array }` for anything else.
 */

export const adsTypeUrls = {
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  routeConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  clusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

export interface AdsResource {
  readonly name: string;
  /** The resource as an Any: `{ '@type': …, …fields }` or `{ type_url, value }`. */
  readonly resource: Readonly<Record<string, unknown>>;
}

export interface AdsServiceOptions {
  /** Resources per type URL; every other type is answered with no resources. */
  readonly resources?: Readonly<Record<string, readonly AdsResource[]>>;
  /** The first version of every type (default "1"). */
  readonly version?: string;
}

export type AdsProtocol = 'sotw' | 'delta';

export interface AdsErrorDetail {
  readonly code: number;
  readonly message: string;
}

export interface AdsRequestRecord {
  readonly streamId: number;
  readonly protocol: AdsProtocol;
  readonly typeUrl: string;
  /** SotW: version_info; Delta: empty. */
  readonly versionInfo: string;
  readonly responseNonce: string;
  /** SotW resource_names, or Delta resource_names_subscribe. */
  readonly resourceNames: readonly string[];
  /** Delta only: initial_resource_versions sent on a new stream. */
  readonly initialResourceVersions: Readonly<Record<string, string>>;
  readonly errorDetail: AdsErrorDetail | undefined;
  /** `request` (no nonce: a new subscription or stream), `ack` or `nack`. */
  readonly kind: 'request' | 'ack' | 'nack';
  /** The node, when this request carried one. */
  readonly node: Readonly<Record<string, unknown>> | undefined;
  readonly receivedAt: number;
}

export interface AdsStreamRecord {
  readonly id: number;
  readonly protocol: AdsProtocol;
  /** Request headers, keys lowercased, as grpc-js hands them over. */
  readonly metadata: Readonly<Record<string, readonly string[]>>;
  readonly requests: AdsRequestRecord[];
  nodeId: string | undefined;
  node: Readonly<Record<string, unknown>> | undefined;
  open: boolean;
}

export interface AdsServiceEvents {
  stream: [AdsStreamRecord];
  request: [AdsRequestRecord, AdsStreamRecord];
  close: [AdsStreamRecord];
}

interface TypeState {
  version: string;
  resources: readonly AdsResource[];
}

interface OpenStream {
  readonly record: AdsStreamRecord;
  readonly call: ServerDuplexStream<Record<string, unknown>, Record<string, unknown>>;
  /** Type URLs answered on this stream, with the names last sent (Delta, to compute removals). */
  readonly subscriptions: Map<string, Set<string>>;
  /** SotW: the resource names last requested per type (a change is answered). */
  readonly requestedNames: Map<string, string>;
}

const protoFiles = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
];

let loaded: GrpcObject | undefined;

function adsServiceDefinition(): ServiceDefinition {
  // `json: true` lets proto-loader encode `{ '@type': … }` Any values, and decode them in requests.
  loaded ??= loadPackageDefinition(loadSync(protoFiles, { ...envoyProtoLoaderOptions, json: true }));
  const envoy = loaded.envoy as GrpcObject;
  const discovery = ((envoy.service as GrpcObject).discovery as GrpcObject).v3 as GrpcObject;
  return (discovery.AggregatedDiscoveryService as ServiceClientConstructor).service;
}

function metadataRecord(call: ServerDuplexStream<unknown, unknown>): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  for (const [key, values] of Object.entries(call.metadata.toJSON())) {
    result[key] = values.map((value) => (Buffer.isBuffer(value) ? value.toString('base64') : String(value)));
  }
  return result;
}

function errorDetailOf(request: Record<string, unknown>): AdsErrorDetail | undefined {
  const detail = request.error_detail as Record<string, unknown> | null | undefined;
  if (!detail) return undefined;
  const code = Number(detail.code ?? 0);
  const message = String(detail.message ?? '');
  return code === 0 && message === '' ? undefined : { code, message };
}

export class AdsService extends EventEmitter<AdsServiceEvents> {
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
  readonly #types = new Map<string, TypeState>();
  readonly #streams: AdsStreamRecord[] = [];
  readonly #open = new Set<OpenStream>();
  readonly #initialVersion: string;
  /** Types whose first answer on each stream waits for `releaseResponses`. */
  readonly #held = new Set<string>();
  /** Streams that asked for a held type, to be answered on release. */
  readonly #pending = new Map<string, Set<OpenStream>>();
  #nextStreamId = 1;
  #nextNonce = 1;

  constructor(options: AdsServiceOptions = {}) {
    super();
    this.#initialVersion = options.version ?? '1';
    for (const [typeUrl, resources] of Object.entries(options.resources ?? {})) {
      this.#types.set(typeUrl, { version: this.#initialVersion, resources });
    }
    this.definition = adsServiceDefinition();
    this.implementation = {
      StreamAggregatedResources: (
        call: ServerDuplexStream<Record<string, unknown>, Record<string, unknown>>,
      ) => this.#serve(call, 'sotw'),
      DeltaAggregatedResources: (
        call: ServerDuplexStream<Record<string, unknown>, Record<string, unknown>>,
      ) => this.#serve(call, 'delta'),
    };
  }

  /** Registers the service on a grpc-js server (before it starts). */
  addTo(server: Server): void {
    server.addService(this.definition, this.implementation);
  }

  /** Every stream seen, open or closed, oldest first. */
  get streams(): readonly AdsStreamRecord[] {
    return this.#streams;
  }

  /** Node ids of all streams, in the order they identified themselves. */
  get nodeIds(): string[] {
    return this.#streams.map((stream) => stream.nodeId).filter((id): id is string => id !== undefined);
  }

  /** All requests across streams, in arrival order. */
  get requests(): AdsRequestRecord[] {
    return this.#streams.flatMap((stream) => stream.requests).sort((a, b) => a.receivedAt - b.receivedAt);
  }

  /** The current version of a type (what the next answer for it carries). */
  version(typeUrl: string): string {
    return this.#state(typeUrl).version;
  }

  #state(typeUrl: string): TypeState {
    let state = this.#types.get(typeUrl);
    if (!state) {
      state = { version: this.#initialVersion, resources: [] };
      this.#types.set(typeUrl, state);
    }
    return state;
  }

  /**
   * Replaces a type's resources under a new version (the next integer unless given) and pushes them to
   * every open stream that has subscribed to the type.
   */
  setResources(typeUrl: string, resources: readonly AdsResource[], version?: string): void {
    const state = this.#state(typeUrl);
    const numeric = Number(state.version);
    state.version = version ?? (Number.isInteger(numeric) ? String(numeric + 1) : `${state.version}+1`);
    state.resources = resources;
    for (const stream of this.#open) {
      if (stream.subscriptions.has(typeUrl)) this.#respond(stream, typeUrl);
    }
  }

  /**
   * Stops answering new requests for a type (requests are still recorded), so a client stays waiting for
   * its first response — e.g. Envoy stays INITIALIZING while LDS is held.
   */
  holdResponses(typeUrl: string): void {
    this.#held.add(typeUrl);
  }

  /** Answers every request held for the type, and answers new ones again. */
  releaseResponses(typeUrl: string): void {
    this.#held.delete(typeUrl);
    const waiting = this.#pending.get(typeUrl) ?? new Set<OpenStream>();
    this.#pending.delete(typeUrl);
    for (const stream of waiting) if (this.#open.has(stream)) this.#respond(stream, typeUrl);
  }

  /** Ends every open stream with an error status (UNAVAILABLE by default); returns how many. */
  dropStreams(code: status = status.UNAVAILABLE, details = 'stream dropped by the test'): number {
    const open = [...this.#open];
    for (const stream of open) {
      this.#close(stream);
      stream.call.emit('error', { code, details });
    }
    return open.length;
  }

  /** Resolves with the first request (already received or future) matching the predicate. */
  waitForRequest(
    predicate: (request: AdsRequestRecord) => boolean,
    timeoutMilliseconds = 15_000,
  ): Promise<AdsRequestRecord> {
    const existing = this.requests.find(predicate);
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('request', onRequest);
        reject(new Error(`no matching ADS request within ${timeoutMilliseconds} ms`));
      }, timeoutMilliseconds);
      const onRequest = (request: AdsRequestRecord) => {
        if (!predicate(request)) return;
        clearTimeout(timer);
        this.off('request', onRequest);
        resolve(request);
      };
      this.on('request', onRequest);
    });
  }

  #close(stream: OpenStream): void {
    if (!this.#open.delete(stream)) return;
    stream.record.open = false;
    this.emit('close', stream.record);
  }

  #serve(
    call: ServerDuplexStream<Record<string, unknown>, Record<string, unknown>>,
    protocol: AdsProtocol,
  ): void {
    const record: AdsStreamRecord = {
      id: this.#nextStreamId++,
      protocol,
      metadata: metadataRecord(call),
      requests: [],
      nodeId: undefined,
      node: undefined,
      open: true,
    };
    const stream: OpenStream = { record, call, subscriptions: new Map(), requestedNames: new Map() };
    this.#streams.push(record);
    this.#open.add(stream);
    this.emit('stream', record);
    call.on('data', (request: Record<string, unknown>) => this.#onRequest(stream, request));
    call.on('end', () => {
      this.#close(stream);
      call.end();
    });
    call.on('cancelled', () => this.#close(stream));
    call.on('error', () => this.#close(stream));
  }

  #onRequest(stream: OpenStream, request: Record<string, unknown>): void {
    const { record } = stream;
    const node = (request.node ?? undefined) as Record<string, unknown> | undefined;
    if (node && record.nodeId === undefined) {
      record.nodeId = String(node.id ?? '');
      record.node = node;
    }
    const typeUrl = String(request.type_url ?? '');
    const responseNonce = String(request.response_nonce ?? '');
    const errorDetail = errorDetailOf(request);
    const resourceNames = (
      record.protocol === 'sotw' ? request.resource_names : request.resource_names_subscribe
    ) as string[] | undefined;
    const entry: AdsRequestRecord = {
      streamId: record.id,
      protocol: record.protocol,
      typeUrl,
      versionInfo: String(request.version_info ?? ''),
      responseNonce,
      resourceNames: resourceNames ?? [],
      initialResourceVersions:
        (request.initial_resource_versions as Record<string, string> | undefined) ?? {},
      errorDetail,
      kind: responseNonce === '' ? 'request' : errorDetail ? 'nack' : 'ack',
      node,
      receivedAt: performance.now(),
    };
    record.requests.push(entry);
    this.emit('request', entry, record);

    const names = [...entry.resourceNames].sort().join(',');
    const namesChanged = record.protocol === 'sotw' && stream.requestedNames.get(typeUrl) !== names;
    stream.requestedNames.set(typeUrl, names);
    if (
      entry.kind === 'request' ||
      (namesChanged && entry.kind === 'ack' && stream.subscriptions.has(typeUrl))
    ) {
      if (this.#held.has(typeUrl)) {
        const waiting = this.#pending.get(typeUrl) ?? new Set<OpenStream>();
        waiting.add(stream);
        this.#pending.set(typeUrl, waiting);
        return;
      }
      this.#respond(stream, typeUrl);
    }
  }

  #respond(stream: OpenStream, typeUrl: string): void {
    const state = this.#state(typeUrl);
    const nonce = String(this.#nextNonce++);
    const previous = stream.subscriptions.get(typeUrl) ?? new Set<string>();
    const current = new Set(state.resources.map((resource) => resource.name));
    stream.subscriptions.set(typeUrl, current);
    if (stream.record.protocol === 'sotw') {
      stream.call.write({
        version_info: state.version,
        resources: state.resources.map((resource) => resource.resource),
        type_url: typeUrl,
        nonce,
      });
    } else {
      stream.call.write({
        system_version_info: state.version,
        resources: state.resources.map((resource) => ({
          name: resource.name,
          version: state.version,
          resource: resource.resource,
        })),
        removed_resources: [...previous].filter((name) => !current.has(name)),
        type_url: typeUrl,
        nonce,
      });
    }
  }
}
