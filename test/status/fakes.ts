import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StartedServer {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts an HTTP server on a free loopback port. */
export async function startHttpServer(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
  host = '127.0.0.1',
): Promise<StartedServer> {
  const server = createServer(handler);
  server.listen(0, host);
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Envoy's histogram buckets for request times (milliseconds), as its Prometheus output lists them. */
const envoyBuckets = [
  '0.5',
  '1',
  '5',
  '10',
  '25',
  '50',
  '100',
  '250',
  '500',
  '1000',
  '2500',
  '5000',
  '10000',
  '30000',
  '60000',
  '300000',
  '600000',
  '1800000',
  '3600000',
  '+Inf',
];

/**
 * Envoy-like `/stats/prometheus` text: `envoy_` names, `# TYPE` without `# HELP`, counters, gauges and
 * histograms with Envoy's buckets, one family after the other separated by a blank line. About 100 bytes a
 * line; `clusters` scales it (1,000 clusters ≈ 100k series ≈ 10 MB).
 */
export function envoyPrometheusText(clusters: number): string {
  return [...envoyPrometheusFamilies(clusters)].join('');
}

/** The same exposition, one family at a time (as Envoy writes a large stats response in chunks). */
export function* envoyPrometheusFamilies(clusters: number): Generator<string> {
  const cluster = (index: number) => `outbound|9080||reviews-${index}.bookinfo.svc.cluster.local`;
  const counters = [
    'envoy_cluster_upstream_cx_total',
    'envoy_cluster_upstream_rq_total',
    'envoy_cluster_upstream_cx_connect_fail',
    'envoy_cluster_upstream_rq_retry',
    'envoy_cluster_upstream_rq_timeout',
    'envoy_cluster_upstream_cx_destroy_local',
    'envoy_cluster_upstream_cx_destroy_remote',
    'envoy_cluster_upstream_rq_pending_overflow',
    'envoy_cluster_lb_healthy_panic',
    'envoy_cluster_update_success',
    'envoy_cluster_update_attempt',
    'envoy_cluster_upstream_cx_rx_bytes_total',
    'envoy_cluster_upstream_cx_tx_bytes_total',
    'envoy_cluster_upstream_rq_completed',
  ];
  const gauges = [
    'envoy_cluster_upstream_cx_active',
    'envoy_cluster_upstream_rq_active',
    'envoy_cluster_membership_healthy',
    'envoy_cluster_membership_total',
    'envoy_cluster_circuit_breakers_default_cx_open',
    'envoy_cluster_version',
  ];
  const histograms = [
    'envoy_cluster_upstream_cx_connect_ms',
    'envoy_cluster_upstream_rq_time',
    'envoy_cluster_upstream_cx_length_ms',
  ];
  for (const name of counters) {
    const parts = [`# TYPE ${name} counter\n`];
    for (let index = 0; index < clusters; index++) {
      parts.push(`${name}{cluster_name="${cluster(index)}"} ${index * 7}\n`);
    }
    yield `${parts.join('')}\n`;
  }
  for (const name of gauges) {
    const parts = [`# TYPE ${name} gauge\n`];
    for (let index = 0; index < clusters; index++) {
      parts.push(`${name}{cluster_name="${cluster(index)}"} ${index % 5}\n`);
    }
    yield `${parts.join('')}\n`;
  }
  yield '# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n\n';
  for (const name of histograms) {
    const parts = [`# TYPE ${name} histogram\n`];
    for (let index = 0; index < clusters; index++) {
      const labels = `cluster_name="${cluster(index)}"`;
      let count = 0;
      for (const bucket of envoyBuckets) {
        count += bucket === '+Inf' ? 0 : index % 3;
        parts.push(`${name}_bucket{${labels},le="${bucket}"} ${count}\n`);
      }
      parts.push(`${name}_sum{${labels}} ${count * 12.5}\n`, `${name}_count{${labels}} ${count}\n`);
    }
    yield `${parts.join('')}\n`;
  }
}

export interface FakeEnvoyOptions {
  /** Values `GET /stats?usedonly&filter=<regex>` reports (filtered by the regex, as Envoy does). */
  stats: Record<string, number>;
  /** The body of `/stats/prometheus`: whole, or written piece by piece as it is produced. */
  prometheus: string | (() => string | Buffer | Iterable<string>);
}

export interface FakeEnvoy extends StartedServer {
  readonly options: FakeEnvoyOptions;
  /** Admin requests seen, as `METHOD /path?query`. */
  readonly requests: string[];
}

/** Envoy's admin API as far as the status server uses it. */
export async function startFakeEnvoy(options: FakeEnvoyOptions): Promise<FakeEnvoy> {
  const requests: string[] = [];
  const started = await startHttpServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://envoy');
    requests.push(`${request.method} ${request.url}`);
    if (url.pathname === '/stats/prometheus') {
      const body = typeof options.prometheus === 'function' ? options.prometheus() : options.prometheus;
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      if (typeof body === 'string' || Buffer.isBuffer(body)) response.end(body);
      else void writeStreamed(response, body);
      return;
    }
    if (url.pathname === '/stats') {
      const filter = new RegExp(url.searchParams.get('filter') ?? '');
      const lines = Object.entries(options.stats)
        .filter(([name]) => filter.test(name))
        .map(([name, value]) => `${name}: ${value}\n`);
      response.writeHead(200, { 'content-type': 'text/plain' }).end(lines.join(''));
      return;
    }
    if (
      request.method === 'POST' &&
      (url.pathname === '/drain_listeners' || url.pathname === '/quitquitquit')
    ) {
      response.writeHead(200).end('OK\n');
      return;
    }
    response.writeHead(404).end('invalid path\n');
  });
  return { ...started, options, requests };
}

async function writeStreamed(response: ServerResponse, pieces: Iterable<string>): Promise<void> {
  for (const piece of pieces) {
    if (response.destroyed) return;
    if (!response.write(piece)) await once(response, 'drain');
  }
  response.end();
}

/** The stats of an Envoy that got its config and is LIVE with its workers started. */
export const liveEnvoyStats: Record<string, number> = {
  'cluster_manager.cds.update_success': 1,
  'cluster_manager.cds.update_rejected': 0,
  'listener_manager.lds.update_success': 1,
  'listener_manager.lds.update_rejected': 0,
  'server.state': 0,
  'listener_manager.workers_started': 1,
};
