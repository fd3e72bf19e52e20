import { connect as connectHttp2, constants } from 'node:http2';
import type { Socket } from 'node:net';
import { fromJSON, type PackageDefinition } from '@grpc/proto-loader';

/**
 * gRPC's health checking protocol, `grpc/health/v1/health.proto`, as a descriptor (so that it ships with the
 * compiled agent without a separate file):
 *
 *   package grpc.health.v1;
 *   message HealthCheckRequest { string service = 1; }
 *   message HealthCheckResponse {
 *     enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
 *     ServingStatus status = 1;
 *   }
 *   service Health {
 *     rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
 *     rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);
 *   }
 */
const healthDescriptor: Parameters<typeof fromJSON>[0] = {
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: 'ServingStatus', id: 1 } },
                  nested: {
                    ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } },
                  },
                },
                Health: {
                  methods: {
                    Check: {
                      requestType: 'HealthCheckRequest',
                      responseType: 'HealthCheckResponse',
                      comment: '',
                    },
                    Watch: {
                      requestType: 'HealthCheckRequest',
                      responseType: 'HealthCheckResponse',
                      responseStream: true,
                      comment: '',
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

export const healthPackageDefinition: PackageDefinition = fromJSON(healthDescriptor, {
  keepCase: true,
  enums: String,
  defaults: true,
});

interface HealthCheckMethod {
  requestSerialize(value: { service: string }): Buffer;
  responseDeserialize(bytes: Buffer): { status: string };
}

const check = (healthPackageDefinition['grpc.health.v1.Health'] as unknown as { Check: HealthCheckMethod })
  .Check;

/** Responses larger than this are not health responses. */
const maximumResponseBytes = 64 * 1024;

export interface GrpcHealthCheckOptions {
  readonly service: string;
  readonly timeoutMilliseconds: number;
  readonly userAgent?: string;
  /** Opens the TCP connection (so that the caller chooses the source address). */
  readonly connect: () => Socket;
  readonly authority: string;
}

/**
 * One `grpc.health.v1.Health/Check` call over plaintext HTTP/2, as the kubelet's gRPC probe makes it.
 * Resolves with the serving status ("SERVING", "NOT_SERVING", …); rejects with the gRPC status or transport
 * error.
 */
export function grpcHealthCheck(options: GrpcHealthCheckOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = connectHttp2(`http://${options.authority}`, { createConnection: options.connect });
    let settled = false;
    const finish = (error: Error | undefined, status?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      if (error) reject(error);
      else resolve(status as string);
    };
    const timer = setTimeout(
      () => finish(new Error(`grpc request not finished within ${options.timeoutMilliseconds} ms`)),
      options.timeoutMilliseconds,
    );
    session.on('error', (error) => finish(error));
    const request = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${Math.max(1, Math.ceil(options.timeoutMilliseconds))}m`,
      ...(options.userAgent ? { 'user-agent': options.userAgent } : {}),
    });
    const message = check.requestSerialize({ service: options.service });
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    request.end(frame);

    const chunks: Buffer[] = [];
    let received = 0;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    const readStatus = (headers: Record<string, unknown>) => {
      if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
      if (headers['grpc-message'] !== undefined)
        grpcMessage = decodeURIComponent(String(headers['grpc-message']));
    };
    request.on('response', (headers) => {
      const status = Number(headers[constants.HTTP2_HEADER_STATUS]);
      if (status !== 200) finish(new Error(`HTTP status ${status} from a gRPC health check`));
      readStatus(headers);
    });
    request.on('trailers', readStatus);
    request.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > maximumResponseBytes) finish(new Error('health check response too large'));
      else chunks.push(chunk);
    });
    request.on('error', (error) => finish(error));
    request.on('end', () => {
      if (grpcStatus !== '0') {
        const code = grpcStatus === undefined ? 'missing' : grpcStatus;
        const meaning =
          grpcStatus === '12'
            ? 'server does not implement the grpc health protocol (grpc.health.v1.Health)'
            : 'grpc probe failed';
        finish(new Error(`${meaning}: grpc-status ${code}${grpcMessage ? ` (${grpcMessage})` : ''}`));
        return;
      }
      const body = Buffer.concat(chunks);
      if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
        finish(new Error('malformed gRPC health check response'));
        return;
      }
      try {
        finish(undefined, check.responseDeserialize(body.subarray(5)).status);
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}
