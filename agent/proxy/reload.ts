import { Counter, type Registry } from 'prom-client';
import type { AgentConfig } from '../config/agent-config.ts';
import type { Logger } from '../log.ts';
import { buildDesiredProxy } from './desired-proxy.ts';
import type { ProxySupervisor } from './supervisor.ts';

export interface ProxyReloaderOptions {
  /** Re-reads the environment snapshot and the watched files; throws a ConfigError on bad input. */
  readonly loadConfig: () => AgentConfig;
  readonly supervisor: ProxySupervisor;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Called with each configuration that produced a valid desired state. */
  readonly onConfig?: (config: AgentConfig) => void;
}

/**
 * Turns "an input changed" (a watched file, SIGHUP) into a new desired Envoy state. Bad input at run time
 * never stops the running Envoy: the error is logged with its source and counted, and the last good state
 * stays. Reloads run one at a time; requests arriving meanwhile are folded into one more reload.
 */
export class ProxyReloader {
  readonly #options: ProxyReloaderOptions;
  readonly #failures: Counter<'stage'>;
  #running: Promise<void> | undefined;
  #again: { force: boolean; reason: string } | undefined;

  constructor(options: ProxyReloaderOptions) {
    this.#options = options;
    this.#failures = new Counter({
      name: 'istio_agent_proxy_reload_failures_total',
      help: 'Reloads of the Envoy configuration rejected at run time (the running Envoy kept its last good configuration), by stage: config or bootstrap.',
      labelNames: ['stage'],
      registers: [options.registry],
    });
  }

  reload(reason: string, options: { force?: boolean } = {}): Promise<void> {
    if (this.#running) {
      this.#again = { force: (this.#again?.force ?? false) || (options.force ?? false), reason };
      return this.#running;
    }
    this.#running = this.#reload(reason, options.force ?? false).finally(() => {
      this.#running = undefined;
      const again = this.#again;
      this.#again = undefined;
      if (again) void this.reload(again.reason, { force: again.force });
    });
    return this.#running;
  }

  async #reload(reason: string, force: boolean): Promise<void> {
    const { logger } = this.#options;
    let config: AgentConfig;
    try {
      config = this.#options.loadConfig();
    } catch (error) {
      this.#failures.inc({ stage: 'config' });
      logger.error(
        `configuration reload after ${reason} rejected, Envoy keeps its current configuration: ${(error as Error).message}`,
      );
      return;
    }
    let result: Awaited<ReturnType<typeof buildDesiredProxy>>;
    try {
      result = await buildDesiredProxy(config);
    } catch (error) {
      this.#failures.inc({ stage: 'bootstrap' });
      logger.error(
        `bootstrap regeneration after ${reason} rejected, Envoy keeps its current configuration: ${(error as Error).message}`,
      );
      return;
    }
    for (const warning of result.warnings) logger.warn(warning);
    this.#options.onConfig?.(config);
    logger.info(`reloaded the configuration after ${reason}`);
    await this.#options.supervisor.apply(result.desired, { force });
  }
}
