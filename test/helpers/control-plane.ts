import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { ExecutionContext } from 'ava';
import { AdsService } from '../istiod/ads-service.ts';
import type { TemporaryRoot } from './temporary-root.ts';

/**
 * An ADS server where Envoy's `xds-grpc` cluster points (`./etc/istio/proxy/XDS`), answering CDS and LDS so
 * that the Envoy stand-in reaches LIVE. Stands in for the agent's XDS proxy and istiod behind it.
 */
export async function serveAdsOnXdsSocket(t: ExecutionContext, root: TemporaryRoot): Promise<AdsService> {
  const socket = root.resolve('etc/istio/proxy/XDS');
  await mkdir(path.dirname(socket), { recursive: true });
  await rm(socket, { force: true });
  const ads = new AdsService();
  const server = new Server();
  ads.addTo(server);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), (error) =>
      error ? reject(error) : resolve(),
    ),
  );
  t.teardown(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  return ads;
}
