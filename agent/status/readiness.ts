import type { Logger } from '../log.ts';
import type { EnvoyAdminClient, EnvoyServerState } from '../proxy/admin-client.ts';
import type { StatusMetrics } from './metrics.ts';

/** Istio's admin stat filters for the two Envoy checks. */
export const configStatsFilter = String.raw`^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$`;
export const serverStateStatsFilter = String.raw`^(server\.state|listener_manager\.workers_started)`;

const serverStates: readonly EnvoyServerState[] = ['LIVE', 'DRAINING', 'PRE_INITIALIZING', 'INITIALIZING'];

/**
 * Something else the agent waits for before the pod may take traffic (for example "first certificate not
 * yet held"): returns why it is not ready, or undefined when it is.
 */
export type ReadinessCondition = () => string | undefined;

export type ReadinessResult = { readonly ready: true } | { readonly ready: false; readonly reason: string };

export interface ReadinessOptions {
  readonly admin: EnvoyAdminClient;
  readonly metrics: StatusMetrics;
  readonly logger: Logger;
  readonly conditions?: readonly ReadinessCondition[];
  /** When the process started (milliseconds on the `now` clock), for `istio_agent_startup_duration_seconds`. */
  readonly processStartTime?: number;
  readonly now?: () => number;
  /** Istio's timeouts: 1 s for the config check, 3 s for the server state check. */
  readonly configTimeoutMilliseconds?: number;
  readonly stateTimeoutMilliseconds?: number;
}

/**
 * `/healthz/ready` as Istio decides it: Envoy received its first CDS and LDS updates (asked once, then
 * remembered), Envoy is LIVE with its workers started (asked once, then remembered; the first success records
 * the start-up duration), and the agent's own conditions hold. Once shutdown began it answers "server is
 * terminated". Concurrent probes share one round of admin requests.
 */
export class Readiness {
  readonly #admin: EnvoyAdminClient;
  readonly #metrics: StatusMetrics;
  readonly #logger: Logger;
  readonly #conditions: ReadinessCondition[];
  readonly #now: () => number;
  readonly #processStartTime: number;
  readonly #configTimeout: number;
  readonly #stateTimeout: number;
  #configReceived = false;
  #envoyLive = false;
  #terminated: string | undefined;
  #inFlight: Promise<string | undefined> | undefined;
  #lastReason: string | null = null;

  constructor(options: ReadinessOptions) {
    this.#admin = options.admin;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#conditions = [...(options.conditions ?? [])];
    this.#now = options.now ?? Date.now;
    this.#processStartTime = options.processStartTime ?? this.#now() - process.uptime() * 1000;
    this.#configTimeout = options.configTimeoutMilliseconds ?? 1_000;
    this.#stateTimeout = options.stateTimeoutMilliseconds ?? 3_000;
  }

  addCondition(condition: ReadinessCondition): void {
    this.#conditions.push(condition);
  }

  /** Shutdown began: every later probe answers 503 "server is terminated". */
  terminate(cause?: string): void {
    this.#terminated ??= cause ? `server is terminated: ${cause}` : 'server is terminated';
  }

  get terminated(): boolean {
    return this.#terminated !== undefined;
  }

  /** A new Envoy process: its config and state must be observed again. */
  reset(): void {
    this.#configReceived = false;
    this.#envoyLive = false;
  }

  async check(): Promise<ReadinessResult> {
    const reason = this.#terminated ?? (await this.#checkEnvoy()) ?? this.#checkConditions();
    this.#report(reason);
    return reason === undefined ? { ready: true } : { ready: false, reason };
  }

  #checkEnvoy(): Promise<string | undefined> | undefined {
    if (this.#configReceived && this.#envoyLive) return undefined;
    this.#inFlight ??= this.#askEnvoy().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #askEnvoy(): Promise<string | undefined> {
    if (!this.#configReceived) {
      const problem = await this.#checkConfig();
      if (problem !== undefined) return problem;
      this.#configReceived = true;
    }
    if (!this.#envoyLive) {
      const problem = await this.#checkServerState();
      if (problem !== undefined) return problem;
      this.#envoyLive = true;
      this.#recordStartup();
    }
    return undefined;
  }

  async #checkConfig(): Promise<string | undefined> {
    let stats: Map<string, number>;
    try {
      stats = await this.#admin.stats(configStatsFilter, { timeoutMilliseconds: this.#configTimeout });
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
    const value = (name: string) => stats.get(name) ?? 0;
    const cdsSuccess = value('cluster_manager.cds.update_success');
    const cdsRejected = value('cluster_manager.cds.update_rejected');
    const ldsSuccess = value('listener_manager.lds.update_success');
    const ldsRejected = value('listener_manager.lds.update_rejected');
    if (cdsSuccess > 0 && ldsSuccess > 0) return undefined;
    const counts = `cds updates: ${cdsSuccess} successful, ${cdsRejected} rejected; lds updates: ${ldsSuccess} successful, ${ldsRejected} rejected`;
    if (cdsSuccess === 0 && ldsSuccess === 0) {
      return `config not received from XDS server (is Istiod running?): ${counts}`;
    }
    if (cdsRejected > 0 || ldsRejected > 0)
      return `config received from XDS server, but was rejected: ${counts}`;
    return `config not fully received from XDS server: ${counts}`;
  }

  async #checkServerState(): Promise<string | undefined> {
    let stats: Map<string, number>;
    try {
      stats = await this.#admin.stats(serverStateStatsFilter, { timeoutMilliseconds: this.#stateTimeout });
    } catch (error) {
      return `failed to get readiness stats: ${error instanceof Error ? error.message : String(error)}`;
    }
    const shown = [...stats].map(([name, value]) => `${name}: ${value}`).join('\n');
    const state = stats.get('server.state');
    if (state === undefined)
      return `failed to get readiness stats: server.state is not yet updated: ${shown}`;
    const workersStarted = stats.get('listener_manager.workers_started');
    if (workersStarted === undefined) {
      return `failed to get readiness stats: listener_manager.workers_started is not yet updated: ${shown}`;
    }
    if (state !== 0) return `server is not live, current state is: ${serverStates[state] ?? state}`;
    if (workersStarted !== 1) return 'workers have not yet started';
    return undefined;
  }

  #checkConditions(): string | undefined {
    for (const condition of this.#conditions) {
      const reason = condition();
      if (reason !== undefined) return reason;
    }
    return undefined;
  }

  #recordStartup(): void {
    const seconds = (this.#now() - this.#processStartTime) / 1000;
    this.#metrics.startupDuration.set(seconds);
    this.#logger.info(`Readiness succeeded in ${seconds.toFixed(6)}s`);
  }

  /** Logs only changes: a kubelet probing every few seconds must not fill the log. */
  #report(reason: string | undefined): void {
    const current = reason ?? null;
    if (current === this.#lastReason) return;
    this.#lastReason = current;
    if (reason === undefined) this.#logger.info('Envoy proxy is ready');
    else this.#logger.warn(`Envoy proxy is NOT ready: ${reason}`);
  }
}
