import { AdsService } from '../istiod/ads-service.ts';
import { TestIstiod } from '../istiod/test-istiod.ts';
import type { Lifetime } from './lifetime.ts';
import type { TemporaryRoot } from './temporary-root.ts';

export const testIstioToken = 'test-istio-token';

export interface ControlPlane {
  readonly istiod: TestIstiod;
  readonly ads: AdsService;
  /** The ProxyConfig fields that point the agent at this istiod. */
  readonly proxyConfig: { readonly discoveryAddress: string };
}

/**
 * A test istiod for an agent in `root`: its CA and ADS (answering CDS and LDS so that Envoy reaches LIVE)
 * behind TLS and bearer-token checks, with its root certificate and the pod's token written where the agent
 * reads them. The agent's XDS proxy forwards Envoy's ADS streams to it. The caller stops `istiod`.
 */
export async function launchControlPlane(
  root: TemporaryRoot,
  options: { readonly port?: number } = {},
): Promise<ControlPlane> {
  const tokenFile = await root.write('var/run/secrets/tokens/istio-token', `${testIstioToken}\n`);
  const ads = new AdsService();
  const istiod = await TestIstiod.start({
    ...(options.port !== undefined ? { port: options.port } : {}),
    rootCertFile: root.resolve('var/run/secrets/istio/root-cert.pem'),
    tokenFile,
    services: [
      { definition: ads.definition, implementation: ads.implementation, options: { authenticate: true } },
    ],
  });
  return { istiod, ads, proxyConfig: { discoveryAddress: istiod.address } };
}

/** {@link launchControlPlane}, stopped after the test. */
export async function startControlPlane(t: Lifetime, root: TemporaryRoot): Promise<ControlPlane> {
  const controlPlane = await launchControlPlane(root);
  t.teardown(() => controlPlane.istiod.stop());
  return controlPlane;
}
