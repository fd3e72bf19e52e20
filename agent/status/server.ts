import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { AgentConfig } from '../config/agent-config.ts';
import type { AppProbe } from '../config/app-probers.ts';
import type { ApplicationScrapeTarget } from '../config/prometheus-scrape.ts';
import type { Logger, Logging } from '../log.ts';
import type { EnvoyAdminClient } from '../proxy/admin-client.ts';
import { AppProbers } from './app-probes.ts';
import { isLoopbackAddress } from './localhost.ts';
import { StatusMetrics } from './metrics.ts';
import { MetricsScraper } from './metrics-scrape.ts';
import { Readiness, type ReadinessCondition } from './readiness.ts';

export const readyPath = '/healthz/ready';
export const quitPath = '/quitquitquit';
export const drainPath = '/drain';

export interface StatusServerOptions {
  /** `config.ports.status` (15020); 0 picks a free port (see {@link StatusServer.port}). */
  readonly port: number;
  /** Where to listen; default every address (IPv6 and IPv4), as Istio's `:15020`. */
  readonly host?: string;
  /** Envoy's admin API: readiness stats. */
  readonly admin: EnvoyAdminClient;
  /**
   * Where Envoy's `/stats/prometheus` is fetched: Istio uses the 15090 listener
   * (`new EnvoyAdminClient({ port: config.ports.envoyPrometheus })`); default the admin client; `false`
   * when there is no Envoy to merge.
   */
  readonly envoyMetrics?: EnvoyAdminClient | false;
  /** Check every Envoy metrics line instead of its `#` lines only (slower; see MetricsScrapeOptions). */
  readonly validateEnvoyMetricLines?: boolean;
  /** The agent's registry; the status server registers its own metrics there. */
  readonly registry: Registry;
  readonly applicationScrapeTargets: readonly ApplicationScrapeTarget[];
  /** Where application metrics are fetched; default `localhost`, as Istio. */
  readonly applicationHost?: string;
  readonly appProbers: ReadonlyMap<string, AppProbe>;
  /** The pod's IP (`config.pod.instanceIps[0]`): where application probes go. */
  readonly podIp: string;
  /** Source address of probe connections; default 127.0.0.6 / ::6 as Istio, `false` for the system's. */
  readonly probeSourceAddress?: string | false;
  /** METRICS_LOCALHOST_ACCESS_ONLY: `/stats/prometheus` and `/metrics` answer 403 to other callers. */
  readonly metricsLocalhostAccessOnly: boolean;
  /** The agent's own readiness conditions (e.g. "first certificate not yet held"); more via `readiness.addCondition`. */
  readonly readinessConditions?: readonly ReadinessCondition[];
  /** `POST /quitquitquit`: stop Envoy and the agent at once and exit 0. Called after the answer was sent. */
  readonly onQuit: () => void;
  /** `POST /drain`: drain inbound listeners gracefully, without exiting. */
  readonly onDrain: () => void | Promise<void>;
  readonly logging: Logging;
  readonly now?: () => number;
  /** When the process started, on the `now` clock: for `istio_agent_startup_duration_seconds`. */
  readonly processStartTime?: number;
}

/** The parts of {@link StatusServerOptions} that come straight from the agent's configuration. */
export function statusServerOptionsFromConfig(
  config: AgentConfig,
): Pick<
  StatusServerOptions,
  'port' | 'applicationScrapeTargets' | 'appProbers' | 'podIp' | 'metricsLocalhostAccessOnly'
> {
  return {
    port: config.ports.status,
    applicationScrapeTargets: config.applicationScrapeTargets,
    appProbers: config.appProbers,
    podIp: config.pod.instanceIps[0] ?? '127.0.0.1',
    metricsLocalhostAccessOnly: config.metricsLocalhostAccessOnly,
  };
}

interface StatusServerEvents {
  /** The server failed after it started listening: the pod can no longer pass its probes. */
  error: [Error];
}

/**
 * The agent's HTTP server on 15020: `/healthz/ready`, merged `/stats/prometheus` (and `/metrics`),
 * application probes, and the localhost-only control endpoints `/quitquitquit` and `/drain`.
 */
export class StatusServer extends EventEmitter<StatusServerEvents> {
  readonly readiness: Readiness;
  readonly metrics: StatusMetrics;
  readonly #options: StatusServerOptions;
  readonly #log: Logger;
  readonly #scraper: MetricsScraper;
  readonly #probers: AppProbers;
  readonly #server: Server;
  #port: number | undefined;

  constructor(options: StatusServerOptions) {
    super();
    this.#options = options;
    this.#log = options.logging.scope('default');
    this.metrics = new StatusMetrics(options.registry);
    this.readiness = new Readiness({
      admin: options.admin,
      metrics: this.metrics,
      logger: this.#log,
      ...(options.readinessConditions ? { conditions: options.readinessConditions } : {}),
      ...(options.now ? { now: options.now } : {}),
      ...(options.processStartTime !== undefined ? { processStartTime: options.processStartTime } : {}),
    });
    const envoyMetrics = options.envoyMetrics === undefined ? options.admin : options.envoyMetrics;
    this.#scraper = new MetricsScraper({
      registry: options.registry,
      metrics: this.metrics,
      ...(envoyMetrics ? { envoy: envoyMetrics } : {}),
      ...(options.validateEnvoyMetricLines ? { validateEnvoyLines: true } : {}),
      applicationTargets: options.applicationScrapeTargets,
      ...(options.applicationHost ? { applicationHost: options.applicationHost } : {}),
      logger: this.#log,
      ...(options.now ? { now: options.now } : {}),
    });
    this.#probers = new AppProbers({
      probes: options.appProbers,
      podIp: options.podIp,
      statusPort: () => this.#port ?? options.port,
      ...(options.probeSourceAddress !== undefined ? { sourceAddress: options.probeSourceAddress } : {}),
      logger: options.logging.scope('probes'),
    });
    this.#server = createServer({ keepAlive: true }, (request, response) => {
      this.#route(request, response).catch((error: unknown) => {
        this.#log.error(`status server: ${request.method} ${request.url} failed: ${String(error)}`);
        if (!response.headersSent) response.writeHead(500).end();
        else response.destroy();
      });
    });
  }

  /** The port actually listened on (differs from the option when that was 0). */
  get port(): number {
    if (this.#port === undefined) throw new Error('the status server is not listening');
    return this.#port;
  }

  async start(): Promise<void> {
    const { port, host } = this.#options;
    if (host !== undefined) await this.#listen(port, host, false);
    else {
      try {
        await this.#listen(port, '::', false);
      } catch (error) {
        // A machine without IPv6: all IPv4 addresses.
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw error;
        await this.#listen(port, '0.0.0.0', false);
      }
    }
    this.#port = (this.#server.address() as AddressInfo).port;
    this.#server.on('error', (error) => this.emit('error', error));
    this.#log.info(`Opening status port ${this.#port}`);
  }

  async stop(): Promise<void> {
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    this.#log.info('Status server has successfully terminated');
  }

  #listen(port: number, host: string, ipv6Only: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.#server.once('error', onError);
      this.#server.listen({ port, host, ipv6Only }, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
  }

  async #route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = request.url ?? '/';
    const path = url.split('?', 1)[0] ?? '/';
    switch (path) {
      case readyPath: {
        const result = await this.readiness.check();
        if (result.ready) response.writeHead(200).end();
        else plain(response, 503, result.reason);
        return;
      }
      case '/stats/prometheus':
      case '/metrics':
        if (this.#options.metricsLocalhostAccessOnly && !isLoopbackAddress(request.socket.remoteAddress)) {
          forbidden(response);
          return;
        }
        await this.#scraper.serve(request, response);
        return;
      case quitPath:
        if (!this.#controlAllowed(request, response)) return;
        this.#log.info(`handling ${quitPath}, notifying pilot-agent to exit`);
        this.readiness.terminate(`${quitPath} called`);
        response.once('finish', () => this.#options.onQuit());
        plain(response, 200, 'OK', false);
        return;
      case drainPath:
        if (!this.#controlAllowed(request, response)) return;
        this.#log.info(`handling ${drainPath}, starting drain`);
        plain(response, 200, 'OK', false);
        try {
          await this.#options.onDrain();
        } catch (error) {
          this.#log.error(`drain failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        return;
      default:
        if (path.startsWith('/app-health/') || path.startsWith('/app-lifecycle/')) {
          const answer = await this.#probers.probe(path, request);
          response.writeHead(answer.status).end(answer.body);
          return;
        }
        plain(response, 404, '404 page not found');
    }
  }

  /** The control endpoints: callers on this machine only, POST only (checked in Istio's order). */
  #controlAllowed(request: IncomingMessage, response: ServerResponse): boolean {
    if (!isLoopbackAddress(request.socket.remoteAddress)) {
      forbidden(response);
      return false;
    }
    if (request.method !== 'POST') {
      plain(response, 405, 'Method Not Allowed');
      return false;
    }
    return true;
  }
}

function plain(response: ServerResponse, status: number, text: string, newline = true): void {
  response
    .writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' })
    .end(newline ? `${text}\n` : text);
}

function forbidden(response: ServerResponse): void {
  plain(response, 403, 'Only requests from localhost are allowed');
}
