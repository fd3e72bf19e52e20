import type { ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import { type AgentConfig, buildAgentConfig, defaultProxyFlags } from '../../agent/config/agent-config.ts';
import { readConfigFile } from '../../agent/config/load.ts';
import { WorkloadIdentity } from '../../agent/identity/workload-identity.ts';
import { captureLogging } from '../helpers/captured-logging.ts';
import type { ManualClock } from '../helpers/manual-clock.ts';
import { createTemporaryRoot, type TemporaryRoot } from '../helpers/temporary-root.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { SdsTestClient } from './sds-client.ts';

export const podNamespace = 'default';
export const serviceAccount = 'productpage';
export const spiffeId = `spiffe://cluster.local/ns/${podNamespace}/sa/${serviceAccount}`;
export const istioToken = 'projected-service-account-token';

/** A pod root with the token in place, removed after the test. */
export async function podRoot(t: ExecutionContext): Promise<TemporaryRoot> {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  await root.write('var/run/secrets/tokens/istio-token', istioToken);
  return root;
}

/** The configuration the agent would build in `root` with these variables. */
export function configIn(root: TemporaryRoot, environment: Record<string, string>): AgentConfig {
  return buildAgentConfig({
    environment: { POD_NAMESPACE: podNamespace, SERVICE_ACCOUNT: serviceAccount, ...environment },
    flags: defaultProxyFlags,
    workingDirectory: root.directory,
    readFile: readConfigFile,
  });
}

/** A WorkloadIdentity on the manual clock, its log lines captured, stopped after the test. */
export function startIdentity(t: ExecutionContext, config: AgentConfig, clock: ManualClock) {
  const { logging, lines } = captureLogging();
  const registry = new Registry();
  // random 0.5: no jitter, so the schedule is exact.
  const identity = new WorkloadIdentity({ config, logging, registry, clock, random: () => 0.5 });
  t.teardown(() => identity.stop());
  return { identity, registry, lines };
}

export function sdsClient(t: ExecutionContext, config: AgentConfig): SdsTestClient {
  const client = new SdsTestClient(config.paths.sdsSocket);
  t.teardown(() => client.close());
  return client;
}

/**
 * Fires the manual clock's timers one at a time (backoff waits, rotation) while real I/O proceeds, until
 * `condition` holds: a readiness poll that lets the test skip waiting in real time.
 */
export function driveUntil<T>(
  clock: ManualClock,
  description: string,
  condition: () => T | undefined | false,
): Promise<T> {
  return waitFor(description, () => {
    const result = condition();
    if (result !== undefined && result !== false) return result;
    clock.fireNext();
    return undefined;
  });
}

/** A workload certificate issued by `ca`, in the shape `ca.issueWorkloadCertificate` returns. */
export interface MountedCertificate {
  readonly certificateChainPem: string;
  readonly privateKeyPem: string;
}

/**
 * Writes `./etc/certs/{root-cert,key,cert-chain}.pem` as a certificate volume would hold them; the chain
 * last, so that a watcher sees a complete set when it reads after the last change.
 */
export async function writeMountedCertificates(
  root: TemporaryRoot,
  rootCertPem: string,
  issued: MountedCertificate,
) {
  await root.write('etc/certs/root-cert.pem', rootCertPem);
  await root.write('etc/certs/key.pem', issued.privateKeyPem);
  await root.write('etc/certs/cert-chain.pem', issued.certificateChainPem);
}
