/**
 * The status server alone in a process, for the benchmarks (its RSS is sampled from outside). Prints
 * `{"port","pid"}` when listening.
 *
 *   node scripts/bench/status-server-process.ts --admin http://127.0.0.1:15000 [--envoy-metrics URL]
 *     [--application-port N] [--validate-envoy]
 */
import { parseArgs } from 'node:util';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { createLogging } from '../../agent/log.ts';
import { EnvoyAdminClient } from '../../agent/proxy/admin-client.ts';
import { StatusServer } from '../../agent/status/server.ts';

const { values } = parseArgs({
  options: {
    admin: { type: 'string' },
    'envoy-metrics': { type: 'string' },
    'application-port': { type: 'string', multiple: true, default: [] },
    'validate-envoy': { type: 'boolean', default: false },
  },
});
if (!values.admin) throw new Error('--admin URL of the Envoy admin API is required');

function client(url: string, maxSockets: number): EnvoyAdminClient {
  const parsed = new URL(url);
  return new EnvoyAdminClient({ host: parsed.hostname, port: Number(parsed.port), maxSockets });
}

const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'istio_agent_' });
const server = new StatusServer({
  port: 0,
  host: '127.0.0.1',
  admin: client(values.admin, 8),
  envoyMetrics: client(values['envoy-metrics'] ?? values.admin, 32),
  validateEnvoyMetricLines: values['validate-envoy'],
  registry,
  applicationScrapeTargets: values['application-port'].map((port) => ({
    port: Number(port),
    path: '/metrics',
  })),
  applicationHost: '127.0.0.1',
  appProbers: new Map(),
  podIp: '127.0.0.1',
  metricsLocalhostAccessOnly: false,
  onQuit: () => process.exit(0),
  onDrain: () => {},
  logging: createLogging({ levels: { default: 'error' }, asJson: false }),
});
await server.start();
process.stdout.write(`${JSON.stringify({ port: server.port, pid: process.pid })}\n`);
