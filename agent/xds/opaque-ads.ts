import {
  type Client,
  type ClientDuplexStream,
  type Metadata,
  makeGenericClientConstructor,
  type ServiceDefinition,
} from '@grpc/grpc-js';

/** The fully qualified name of Envoy's aggregated discovery service. */
export const adsServiceName = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** The two ADS streams Envoy opens: state of the world (`api_type: GRPC`) and incremental (`DELTA_GRPC`). */
export type AdsMethod = 'StreamAggregatedResources' | 'DeltaAggregatedResources';

export const adsMethods: readonly AdsMethod[] = ['StreamAggregatedResources', 'DeltaAggregatedResources'];

/** `sotw` or `delta`, as logs and events name the protocol of a stream. */
export function adsProtocol(method: AdsMethod): 'sotw' | 'delta' {
  return method === 'DeltaAggregatedResources' ? 'delta' : 'sotw';
}

// The proxy never looks inside a message: bytes in, the same bytes out.
const passThrough = (message: Buffer): Buffer => message;

/**
 * ADS with messages kept as the encoded protobuf bytes (serialize and deserialize are the identity), for
 * both the server Envoy dials and the client to istiod: forwarding costs no decoding or re-encoding.
 */
export const opaqueAdsService: ServiceDefinition = Object.fromEntries(
  adsMethods.map((method) => [
    method,
    {
      path: `/${adsServiceName}/${method}`,
      requestStream: true,
      responseStream: true,
      requestSerialize: passThrough,
      requestDeserialize: passThrough,
      responseSerialize: passThrough,
      responseDeserialize: passThrough,
      originalName: method,
    },
  ]),
) as ServiceDefinition;

/** One ADS stream to istiod, carrying encoded `DiscoveryRequest`s out and `DiscoveryResponse`s in. */
export type OpaqueAdsStream = ClientDuplexStream<Buffer, Buffer>;

/** The generated client for {@link opaqueAdsService}. */
export interface OpaqueAdsClient extends Client {
  StreamAggregatedResources(metadata?: Metadata): OpaqueAdsStream;
  DeltaAggregatedResources(metadata?: Metadata): OpaqueAdsStream;
}

export const OpaqueAdsClient = makeGenericClientConstructor(
  opaqueAdsService,
  'AggregatedDiscoveryService',
) as unknown as new (
  ...args: ConstructorParameters<ReturnType<typeof makeGenericClientConstructor>>
) => OpaqueAdsClient;
