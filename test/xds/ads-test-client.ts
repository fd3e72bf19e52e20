import {
  type ClientDuplexStream,
  credentials,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceError,
  type StatusObject,
} from '@grpc/grpc-js';
import type { ExecutionContext } from 'ava';
import { loadEnvoyProtos } from '../../agent/envoy-api/protos.ts';
import { waitFor } from '../helpers/wait-for.ts';

/** Envoy's ADS service with real (decoding) messages; Any resources stay `{ type_url, value }`. */
export function adsServiceConstructor(): ServiceClientConstructor {
  const envoy = loadEnvoyProtos(['envoy/service/discovery/v3/ads.proto']).envoy as GrpcObject;
  const discovery = ((envoy.service as GrpcObject).discovery as GrpcObject).v3 as GrpcObject;
  return discovery.AggregatedDiscoveryService as ServiceClientConstructor;
}

export type DiscoveryMessage = Record<string, unknown>;

/**
 * A plain gRPC client acting as Envoy on the XDS socket: one ADS stream, requests sent by hand, responses
 * and the final status recorded. `readSlowly` makes it a slow reader (one response per tick of the given
 * interval), to exercise flow control.
 */
export class AdsTestClient {
  readonly responses: DiscoveryMessage[] = [];
  readonly stream: ClientDuplexStream<DiscoveryMessage, DiscoveryMessage>;
  status: StatusObject | undefined;
  readonly #client: InstanceType<ServiceClientConstructor>;

  constructor(
    t: ExecutionContext,
    socketPath: string,
    method: 'StreamAggregatedResources' | 'DeltaAggregatedResources' = 'StreamAggregatedResources',
    options: { onResponse?: (response: DiscoveryMessage) => void; keep?: boolean } = {},
  ) {
    const Service = adsServiceConstructor();
    this.#client = new Service(`unix:${socketPath}`, credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
    });
    const call = (this.#client as unknown as Record<string, () => typeof this.stream>)[method];
    if (!call) throw new Error(`no ${method} on the ADS client`);
    this.stream = call.call(this.#client);
    this.stream.on('data', (response: DiscoveryMessage) => {
      if (options.keep !== false) this.responses.push(response);
      options.onResponse?.(response);
    });
    this.stream.on('error', (error: ServiceError) => {
      this.status ??= { code: error.code, details: error.details, metadata: error.metadata };
    });
    this.stream.on('status', (status: StatusObject) => {
      this.status ??= status;
    });
    t.teardown(() => this.close());
  }

  send(request: DiscoveryMessage): void {
    this.stream.write(request);
  }

  async waitForResponses(count: number, timeoutMilliseconds = 20_000): Promise<DiscoveryMessage[]> {
    return waitFor(`${count} responses`, () => this.responses.length >= count && this.responses, {
      timeoutMilliseconds,
    });
  }

  /** Resolves with the stream's final status. */
  closed(timeoutMilliseconds = 20_000): Promise<StatusObject> {
    return waitFor('the stream to end', () => this.status, { timeoutMilliseconds });
  }

  close(): void {
    this.stream.cancel();
    this.#client.close();
  }
}
