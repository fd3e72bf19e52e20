import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { type ChannelCredentials, type ChannelOptions, type Client, credentials } from '@grpc/grpc-js';
import type { AgentConfig } from '../config/agent-config.ts';
import { buildCallMetadata, type CallMetadataSource } from './call-metadata.ts';
import { grpcTarget, istiodServerName, parseIstiodAddress } from './server-name.ts';

/** How to reach istiod and authenticate to it: one set for the CA client, one for the XDS proxy. */
export interface IstiodChannelSettings extends CallMetadataSource {
  /** `host:port`. */
  readonly address: string;
  /** Which setting the address came from, for error messages (`CA_ADDR`, `discoveryAddress`). */
  readonly addressSource: string;
  /** The PEM roots that istiod's serving certificate must chain to. */
  readonly rootCertFile: string;
  /** `ISTIOD_SAN`. */
  readonly istiodSan?: string;
}

/** Settings for CSRs: `CA_ADDR` (else the discovery address) and the `CA_HEADER_*` headers. */
export function caChannelSettings(config: AgentConfig): IstiodChannelSettings {
  return channelSettings(config, config.security.caAddress, 'CA_ADDR', config.security.caHeaders);
}

/** Settings for the XDS proxy's upstream: the discovery address and the `XDS_HEADER_*` headers. */
export function xdsChannelSettings(config: AgentConfig): IstiodChannelSettings {
  return channelSettings(
    config,
    config.xds.discoveryAddress,
    'ProxyConfig.discoveryAddress',
    config.xds.headers,
  );
}

function channelSettings(
  config: AgentConfig,
  address: string,
  addressSource: string,
  headers: Readonly<Record<string, string>>,
): IstiodChannelSettings {
  return {
    address,
    addressSource,
    rootCertFile: config.paths.istiodRootCertFile,
    tokenFile: config.paths.tokenFile,
    clusterId: config.security.clusterId,
    headers,
    ...(config.security.istiodSan !== undefined ? { istiodSan: config.security.istiodSan } : {}),
  };
}

/** Any generated gRPC client class (from `loadPackageDefinition`, `makeGenericClientConstructor`, or `Client`). */
export type ClientConstructor<T extends Client> = new (
  address: string,
  credentials: ChannelCredentials,
  options?: ChannelOptions,
) => T;

/**
 * The one way to open authenticated gRPC connections to istiod: TLS ≥ 1.2 against the istiod root, the
 * expected server name, and per-call metadata (bearer token re-read on each call, `ClusterID`, extra
 * headers). The metadata is attached by call credentials, so unary calls and long-lived streams (ADS) get it
 * alike.
 */
export interface IstiodChannelFactory {
  readonly address: string;
  /** The gRPC target dialled (`host:port`). */
  readonly target: string;
  /** The name istiod's certificate is verified against. */
  readonly serverName: string;
  /** TLS credentials combined with the per-call metadata. */
  readonly credentials: ChannelCredentials;
  readonly channelOptions: ChannelOptions;
  /** A new client (with its own channel) for the given service; close it with `client.close()`. */
  createClient<T extends Client>(serviceClient: ClientConstructor<T>, extraOptions?: ChannelOptions): T;
}

/**
 * Builds the factory. Reads the root certificate file now, so a missing or unreadable root is reported
 * here, naming the file; call again to pick up a replaced root.
 */
export async function createIstiodChannelFactory(
  settings: IstiodChannelSettings,
): Promise<IstiodChannelFactory> {
  const address = parseIstiodAddress(settings.addressSource, settings.address);
  const serverName = istiodServerName(address, settings.istiodSan);
  const rootPem = await readRootCertificates(settings.rootCertFile);
  const tlsCredentials = credentials.createFromSecureContext(
    createSecureContext({ ca: rootPem, minVersion: 'TLSv1.2' }),
  );
  const callCredentials = credentials.createFromMetadataGenerator((_options, callback) => {
    buildCallMetadata(settings).then(
      (metadata) => callback(null, metadata),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
    );
  });
  const combined = credentials.combineChannelCredentials(tlsCredentials, callCredentials);
  const target = grpcTarget(address);
  const channelOptions: ChannelOptions = {
    // Verifies the certificate against, and sends SNI for, the expected name rather than the dialled host.
    'grpc.ssl_target_name_override': serverName,
    ...(serverName !== address.host ? { 'grpc.default_authority': serverName } : {}),
  };
  return {
    address: settings.address,
    target,
    serverName,
    credentials: combined,
    channelOptions,
    createClient: (serviceClient, extraOptions) =>
      new serviceClient(target, combined, { ...channelOptions, ...extraOptions }),
  };
}

async function readRootCertificates(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    throw new Error(
      `istiod root certificate ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  try {
    new X509Certificate(pem);
  } catch {
    throw new Error(`istiod root certificate ${file} holds no PEM certificate`);
  }
  return pem;
}
