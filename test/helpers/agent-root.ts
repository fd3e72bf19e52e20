import path from 'node:path';
import { stringify } from 'yaml';
import { repositoryRoot } from './paths.ts';
import { freePorts } from './ports.ts';
import type { TemporaryRoot } from './temporary-root.ts';

/** The Envoy stand-in, started by the agent exactly as it would start `/usr/local/bin/envoy`. */
export const envoyStandinBinary = path.join(repositoryRoot, 'test/envoy-standin/envoy');

export interface AgentPorts {
  readonly proxyAdmin: number;
  readonly status: number;
  readonly envoyStatus: number;
  readonly envoyPrometheus: number;
}

export interface AgentRootOptions {
  /** More ProxyConfig fields for the mesh config's `defaultConfig` layer. */
  readonly proxyConfig?: Record<string, unknown>;
  /** Ports to use instead of free-picked ones. */
  readonly ports?: Partial<AgentPorts>;
}

/**
 * Prepares a temporary root for a real `pilot-agent proxy` run: free ports for every port the agent and
 * Envoy bind, the Envoy stand-in as `binaryPath`, and no termination drain wait (tests that exercise the
 * drain set their own), all through the mesh config file's `defaultConfig`, so that a test's own
 * `PROXY_CONFIG` still layers on top. Returns the ports and the variables to add to the agent's environment.
 */
export async function prepareAgentRoot(root: TemporaryRoot, options: AgentRootOptions = {}) {
  const ports = await choosePorts(options.ports);
  const { proxyAdmin, status, envoyStatus, envoyPrometheus } = ports;
  await root.write(
    'etc/istio/config/mesh',
    stringify({
      defaultConfig: {
        binaryPath: envoyStandinBinary,
        proxyAdminPort: proxyAdmin,
        statusPort: status,
        terminationDrainDuration: '0s',
        ...options.proxyConfig,
      },
    }),
  );
  return {
    ports,
    environment: {
      ENVOY_STATUS_PORT: String(envoyStatus),
      ENVOY_PROMETHEUS_PORT: String(envoyPrometheus),
    } as Record<string, string>,
  };
}

/** The given ports, and free ones (distinct from the given) for the rest. */
async function choosePorts(given: Partial<AgentPorts> = {}): Promise<AgentPorts> {
  const taken = new Set(Object.values(given));
  const pick = async (port: number | undefined) => {
    if (port !== undefined) return port;
    for (;;) {
      const [candidate] = (await freePorts(1)) as [number];
      if (!taken.has(candidate)) {
        taken.add(candidate);
        return candidate;
      }
    }
  };
  return {
    proxyAdmin: await pick(given.proxyAdmin),
    status: await pick(given.status),
    envoyStatus: await pick(given.envoyStatus),
    envoyPrometheus: await pick(given.envoyPrometheus),
  };
}
