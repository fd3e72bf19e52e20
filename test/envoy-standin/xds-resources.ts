import type { EnvoyAddress } from './addresses.ts';
import {
  bytesField,
  decodeMessage,
  integerField,
  messageField,
  stringField,
  type WireMessage,
} from './protobuf-wire.ts';

/**
 * The fields the stand-in reads from xDS resources, by their numbers in Envoy's v3 protos:
 * Cluster.name = 1; Listener.name = 1, Listener.address = 2; Address.socket_address = 1, Address.pipe = 2;
 * SocketAddress.address = 2, port_value = 3, ipv4_compat = 6; Pipe.path = 1, mode = 2; Secret.name = 1,
 * tls_certificate = 2, validation_context = 4; TlsCertificate.certificate_chain = 1;
 * CertificateValidationContext.trusted_ca = 1; DataSource.inline_bytes = 2, inline_string = 3.
 */

/** A google.protobuf.Any as grpc-js hands it over: `type_url` and the serialized message. */
export interface RawAny {
  readonly type_url?: string;
  readonly value?: Uint8Array;
}

export function anyTypeUrl(any: RawAny): string {
  return typeof any.type_url === 'string' ? any.type_url : '';
}

export function anyMessage(any: RawAny): WireMessage {
  return decodeMessage(any.value ?? new Uint8Array());
}

export function resourceName(message: WireMessage): string {
  return stringField(message, 1);
}

function address(message: WireMessage): EnvoyAddress | undefined {
  const socket = messageField(message, 1);
  if (socket) {
    return {
      kind: 'socket',
      address: stringField(socket, 2),
      port: integerField(socket, 3),
      ipv4Compat: integerField(socket, 6) !== 0,
    };
  }
  const pipe = messageField(message, 2);
  if (pipe) return { kind: 'pipe', path: stringField(pipe, 1), mode: integerField(pipe, 2) };
  return undefined;
}

export interface ListenerSummary {
  readonly name: string;
  /** Undefined when the listener has no address (Envoy refuses it unless it is an internal listener). */
  readonly address: EnvoyAddress | undefined;
}

export function listenerSummary(message: WireMessage): ListenerSummary {
  const addressMessage = messageField(message, 2);
  return { name: resourceName(message), address: addressMessage ? address(addressMessage) : undefined };
}

function dataSource(message: WireMessage | undefined): string | undefined {
  if (!message) return undefined;
  const inline = bytesField(message, 2);
  if (inline && inline.length > 0) return Buffer.from(inline).toString('utf8');
  const text = stringField(message, 3);
  return text === '' ? undefined : text;
}

export type SecretSummary =
  | { readonly name: string; readonly kind: 'tls_certificate'; readonly certificateChain: string | undefined }
  | { readonly name: string; readonly kind: 'validation_context'; readonly trustedCa: string | undefined }
  | { readonly name: string; readonly kind: 'other' };

export function secretSummary(message: WireMessage): SecretSummary {
  const name = resourceName(message);
  const certificate = messageField(message, 2);
  if (certificate) {
    return { name, kind: 'tls_certificate', certificateChain: dataSource(messageField(certificate, 1)) };
  }
  const validation = messageField(message, 4);
  if (validation)
    return { name, kind: 'validation_context', trustedCa: dataSource(messageField(validation, 1)) };
  return { name, kind: 'other' };
}
