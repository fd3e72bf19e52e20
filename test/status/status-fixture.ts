import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { createLogging, type Logging } from '../../agent/log.ts';
import { EnvoyAdminClient } from '../../agent/proxy/admin-client.ts';
import { StatusServer, type StatusServerOptions } from '../../agent/status/server.ts';

export interface CapturedLogging {
  readonly logging: Logging;
  /** Messages logged so far, as `level scope message`. */
  readonly lines: string[];
}

/** The agent's loggers writing into an array, so that tests read what an operator would see. */
export function captureLogging(): CapturedLogging {
  const lines: string[] = [];
  const logging = createLogging({
    levels: { default: 'debug' },
    asJson: true,
    destination: {
      write(line: string) {
        const entry = JSON.parse(line) as { level: string; scope: string; msg: string };
        lines.push(`${entry.level} ${entry.scope} ${entry.msg}`);
      },
    },
  });
  return { logging, lines };
}

export interface RunningStatusServer {
  readonly server: StatusServer;
  readonly baseUrl: string;
  readonly registry: Registry;
  readonly logs: string[];
  readonly quits: number[];
  readonly drains: number[];
  readonly admin: EnvoyAdminClient;
}

/** Starts a status server on a free port against the given Envoy admin port; stopped at teardown. */
export async function startStatusServer(
  t: { teardown(fn: () => Promise<void> | void): void },
  envoyAdminPort: number,
  overrides: Partial<StatusServerOptions> = {},
): Promise<RunningStatusServer> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'istio_agent_' });
  const { logging, lines } = captureLogging();
  const admin = new EnvoyAdminClient({ port: envoyAdminPort });
  const quits: number[] = [];
  const drains: number[] = [];
  const server = new StatusServer({
    port: 0,
    admin,
    registry,
    applicationScrapeTargets: [],
    appProbers: new Map(),
    podIp: '127.0.0.1',
    metricsLocalhostAccessOnly: false,
    onQuit: () => quits.push(Date.now()),
    onDrain: () => void drains.push(Date.now()),
    logging,
    ...overrides,
  });
  await server.start();
  t.teardown(async () => {
    await server.stop();
    admin.close();
  });
  return { server, baseUrl: `http://127.0.0.1:${server.port}`, registry, logs: lines, quits, drains, admin };
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One HTTP request, optionally from a chosen local address. */
export function httpCall(
  url: string,
  options: { method?: string; headers?: Record<string, string>; localAddress?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        agent: false,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** An IPv4 address of this machine that is not loopback, if it has one. */
export function nonLoopbackAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return undefined;
}

/** The value of one series in an exposition, or undefined. */
export function sampleValue(exposition: string, series: string): number | undefined {
  for (const line of exposition.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1).split(' ')[0]);
  }
  return undefined;
}
