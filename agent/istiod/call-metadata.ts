import { readFile } from 'node:fs/promises';
import { Metadata } from '@grpc/grpc-js';

/** What goes on every call to istiod besides the TLS identity. */
export interface CallMetadataSource {
  /** The projected service-account token (`./var/run/secrets/tokens/istio-token`), re-read on every call. */
  readonly tokenFile: string;
  /** `ISTIO_META_CLUSTER_ID`, sent as `ClusterID`. */
  readonly clusterId: string;
  /** `CA_HEADER_<K>` (CA calls) or `XDS_HEADER_<K>` (the XDS proxy), already stripped of their prefix. */
  readonly headers: Readonly<Record<string, string>>;
}

/** Reads the token as Istio does: trimmed; undefined when the file does not exist (the header is then omitted). */
export async function readBearerToken(tokenFile: string): Promise<string | undefined> {
  try {
    const token = (await readFile(tokenFile, 'utf8')).trim();
    return token === '' ? undefined : token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`reading the istiod token ${tokenFile} failed: ${(error as Error).message}`);
  }
}

/**
 * The metadata of one call: the extra headers, `ClusterID`, and `authorization: Bearer <token>` with the token
 * read now, so a kubelet-rotated token is picked up without restarting anything.
 */
export async function buildCallMetadata(source: CallMetadataSource): Promise<Metadata> {
  const metadata = new Metadata();
  for (const [name, value] of Object.entries(source.headers)) metadata.set(name, value);
  if (source.clusterId !== '') metadata.set('ClusterID', source.clusterId);
  const token = await readBearerToken(source.tokenFile);
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}
