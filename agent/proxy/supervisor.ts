import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { ProxyLogLevels } from '../config/log-levels.ts';
import type { Logger } from '../log.ts';
import type { EnvoyAdminClient } from './admin-client.ts';
import { type EnvoyExit, type EnvoyProcess, type LaunchOptions, launchEnvoy } from './envoy-process.ts';
import { RestartBudget } from './restart-backoff.ts';

/** How one epoch is started: its number, the base id it shares with its parent, and whether a parent is expected. */
export interface EpochLaunch {
  readonly epoch: number;
  /** undefined for the very first epoch, which picks a free id (`--use-dynamic-base-id`). */
  readonly baseId: number | undefined;
  /** No parent is running: start without hot restart (`--skip-hot-restart-on-no-parent`). */
  readonly coldStart: boolean;
}

/** What Envoy should be running: built by the agent from one configuration. */
export interface DesiredProxy {
  /** The serialized bootstrap, written to the bootstrap file before each epoch starts. */
  readonly bootstrap: string;
  /** Equal keys mean no restart is needed (the bootstrap plus the argv that does not vary per epoch or log level). */
  readonly restartKey: string;
  /** Applied live through the admin API when only they change. */
  readonly logLevels: ProxyLogLevels;
  readonly argsFor: (launch: EpochLaunch) => readonly string[];
}

export interface ProxySupervisorOptions {
  readonly binaryPath: string;
  readonly workingDirectory: string;
  readonly environment: NodeJS.ProcessEnv;
  readonly bootstrapFile: string;
  /** Where epoch 0 writes its dynamically chosen base id (`--base-id-path`). */
  readonly baseIdFile: string;
  readonly hotRestart: boolean;
  readonly admin: EnvoyAdminClient;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly writeBootstrap: (content: string) => Promise<void>;
  /** How long to wait for an epoch to become LIVE before the next may start (Istio ≤1.5 waited 20 s). */
  readonly liveTimeoutMilliseconds?: number;
  readonly restartBudget?: { initialMilliseconds?: number; budget?: number };
  /** An epoch that served this long refills the restart budget. */
  readonly stableAfterMilliseconds?: number;
  readonly stopGraceMilliseconds?: number;
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
  readonly launch?: (options: LaunchOptions) => EnvoyProcess;
}

export interface ProxySupervisorEvents {
  /** `cold`: no other epoch runs (a first start, or a restart after the serving epoch died). */
  'epoch-started': [{ epoch: number; pid: number; cold: boolean }];
  'epoch-live': [{ epoch: number }];
  'epoch-exited': [{ epoch: number; exit: EnvoyExit; expected: boolean }];
  'restart-failed': [{ epoch: number; reason: string }];
  'log-levels-applied': [ProxyLogLevels];
  /** The restart budget is spent: the agent must exit non-zero so that the kubelet restarts the container. */
  'gave-up': [{ reason: string }];
}

interface Epoch {
  readonly process: EnvoyProcess;
  readonly desired: DesiredProxy;
  live: boolean;
}

type RestartReason = 'change' | 'forced' | 'crash' | 'retry';

/**
 * Runs Envoy and hot-restarts it when its desired state changes, supervising every epoch. Better than
 * Envoy's `hot-restarter.py` and Istio ≤1.5, which killed every epoch when one failed: a new epoch that
 * fails leaves its parent serving and the restart is retried with backoff; a serving epoch that dies is
 * restarted cold; only an exhausted budget gives up.
 */
export class ProxySupervisor extends EventEmitter<ProxySupervisorEvents> {
  readonly #options: ProxySupervisorOptions;
  readonly #epochs = new Map<number, Epoch>();
  readonly #budget: RestartBudget;
  readonly #metrics: { epoch: Gauge; restarts: Counter<'outcome'>; exits: Counter<'expected'> };
  #latestEpoch = -1;
  #baseId: number | undefined;
  #baseIdRead: Promise<number | undefined> | undefined;
  #desired: DesiredProxy | undefined;
  #appliedLogLevels: ProxyLogLevels | undefined;
  #queue: Promise<void> = Promise.resolve();
  #pendingRestart: RestartReason | undefined;
  #stopping = false;
  #gaveUp = false;
  #stableTimer: NodeJS.Timeout | undefined;

  constructor(options: ProxySupervisorOptions) {
    super();
    this.#options = options;
    this.#budget = new RestartBudget(options.restartBudget);
    this.#metrics = {
      epoch: new Gauge({
        name: 'istio_agent_envoy_epoch',
        help: 'The restart epoch of the Envoy process currently serving.',
        registers: [options.registry],
      }),
      restarts: new Counter({
        name: 'istio_agent_envoy_restarts_total',
        help: 'Envoy (re)starts by outcome: success (the new epoch became LIVE) or failure (it exited or never became LIVE).',
        labelNames: ['outcome'],
        registers: [options.registry],
      }),
      exits: new Counter({
        name: 'istio_agent_envoy_exits_total',
        help: 'Envoy process exits; expected ones are drained parents and shutdowns.',
        labelNames: ['expected'],
        registers: [options.registry],
      }),
    };
  }

  /** The epoch now serving (the newest LIVE one), if any. */
  get servingEpoch(): number | undefined {
    let serving: number | undefined;
    for (const [epoch, state] of this.#epochs)
      if (state.live && (serving === undefined || epoch > serving)) serving = epoch;
    return serving;
  }

  get runningEpochs(): readonly number[] {
    return [...this.#epochs.keys()].sort((a, b) => a - b);
  }

  /** Starts the first epoch; resolves once it is launched (LIVE comes later, see 'epoch-live'). */
  start(desired: DesiredProxy): Promise<void> {
    this.#desired = desired;
    this.#appliedLogLevels = desired.logLevels;
    return this.#enqueue(() => this.#startEpoch(desired, 'change'));
  }

  /**
   * Moves Envoy to a new desired state: nothing when it is equivalent, a live log-level change when only
   * the levels differ, a hot restart otherwise (or always with `force`, as SIGHUP asks).
   */
  apply(desired: DesiredProxy, options: { force?: boolean } = {}): Promise<void> {
    const previous = this.#desired;
    this.#desired = desired;
    if (this.#stopping || this.#gaveUp) return Promise.resolve();
    if (previous !== undefined && previous.restartKey === desired.restartKey && !options.force) {
      this.#options.logger.info(
        "the inputs changed but Envoy's bootstrap and command line did not: no restart",
      );
      return this.#enqueue(() => this.#applyLogLevels(desired.logLevels));
    }
    this.#budget.reset();
    return this.#requestRestart(options.force ? 'forced' : 'change');
  }

  /** Graceful inbound drain of the serving epoch (SIGTERM and `/drain`). */
  async drainInbound(): Promise<void> {
    await this.#options.admin.drainListeners({ inboundOnly: true, graceful: true });
  }

  /** Stops every epoch: SIGTERM, then SIGKILL after the grace period. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#stableTimer);
    const grace = this.#options.stopGraceMilliseconds ?? 5_000;
    const epochs = [...this.#epochs.values()];
    for (const epoch of epochs) epoch.process.signal('SIGTERM');
    await Promise.all(
      epochs.map(async (epoch) => {
        const timer = setTimeout(() => {
          this.#options.logger.warn(
            `Envoy epoch ${epoch.process.epoch} did not exit within ${grace} ms of SIGTERM; killing it`,
          );
          epoch.process.signal('SIGKILL');
        }, grace);
        await epoch.process.exited;
        clearTimeout(timer);
      }),
    );
  }

  #enqueue(operation: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(operation, operation);
    this.#queue = next.catch((error: unknown) => {
      this.#options.logger.error(`proxy supervisor operation failed: ${(error as Error).message}`);
    });
    return this.#queue;
  }

  /** Coalesces restart requests: while one is queued, later ones ride along with the newest desired state. */
  #requestRestart(reason: RestartReason): Promise<void> {
    if (this.#pendingRestart !== undefined) return this.#queue;
    this.#pendingRestart = reason;
    return this.#enqueue(async () => {
      this.#pendingRestart = undefined;
      if (this.#stopping || this.#gaveUp || !this.#desired) return;
      await this.#startEpoch(this.#desired, reason);
    });
  }

  async #applyLogLevels(levels: ProxyLogLevels): Promise<void> {
    const applied = this.#appliedLogLevels;
    if (applied && JSON.stringify(applied) === JSON.stringify(levels)) return;
    try {
      await this.#options.admin.setLogLevels(levels);
      this.#appliedLogLevels = levels;
      this.#options.logger.info(`applied Envoy log levels live: ${describeLevels(levels)}`);
      this.emit('log-levels-applied', levels);
    } catch (error) {
      this.#options.logger.error(
        `failed to apply Envoy log levels ${describeLevels(levels)}: ${(error as Error).message}`,
      );
    }
  }

  async #startEpoch(desired: DesiredProxy, reason: RestartReason): Promise<void> {
    const parent = this.#newestRunning();
    const hotRestart = this.#options.hotRestart;
    if (parent && !hotRestart) {
      // Without hot restart the only way to a new configuration is stop, then start.
      parent.process.signal('SIGTERM');
      await parent.process.exited;
    } else if (parent && !parent.live) {
      await this.#waitLive(parent.process.epoch);
    }
    if (this.#baseIdRead) {
      this.#baseId ??= await this.#baseIdRead;
      this.#baseIdRead = undefined;
    }
    const serving = this.#newestRunning();
    const coldStart = !hotRestart || serving === undefined;
    // Epoch N hands over from epoch N−1 only, so a retry after a failed child reuses its number
    // (istio#35740: advancing past a failed epoch leaves the child without a parent). Without a known
    // base id (epoch 0 died before choosing one) the numbering starts over at a dynamic id.
    const epoch =
      !hotRestart || this.#baseId === undefined
        ? 0
        : serving
          ? serving.process.epoch + 1
          : this.#latestEpoch + 1;
    const launch: EpochLaunch = {
      epoch,
      baseId: hotRestart ? this.#baseId : undefined,
      coldStart: coldStart && epoch > 0,
    };
    await this.#options.writeBootstrap(desired.bootstrap);
    const args = desired.argsFor(launch);
    this.#latestEpoch = Math.max(this.#latestEpoch, epoch);
    this.#options.logger.info(
      `starting Envoy epoch ${epoch} (${reason === 'change' && epoch === 0 ? 'initial start' : reasonText[reason]}${launch.coldStart ? ', cold' : ''}): ${this.#options.binaryPath} ${args.join(' ')}`,
    );
    const process = (this.#options.launch ?? launchEnvoy)({
      binaryPath: this.#options.binaryPath,
      args,
      epoch,
      workingDirectory: this.#options.workingDirectory,
      environment: this.#options.environment,
      logger: this.#options.logger,
      ...(this.#options.stdout ? { stdout: this.#options.stdout } : {}),
      ...(this.#options.stderr ? { stderr: this.#options.stderr } : {}),
    });
    const state: Epoch = { process, desired, live: false };
    this.#epochs.set(epoch, state);
    this.#options.logger.info(`Envoy epoch ${epoch} running as pid ${process.pid}`);
    this.emit('epoch-started', { epoch, pid: process.pid, cold: coldStart });
    void process.exited.then((exit) => this.#onExit(state, exit));
    if (hotRestart && this.#baseId === undefined) this.#baseIdRead = this.#readBaseId(process);
    // Waiting for LIVE happens beside the queue: callers (and a SIGTERM) are not held up by a slow start;
    // the next hot restart waits for it at its own start.
    void this.#followStart(state);
  }

  async #followStart(state: Epoch): Promise<void> {
    const epoch = state.process.epoch;
    if (this.#baseIdRead) {
      this.#baseId ??= await this.#baseIdRead;
      this.#baseIdRead = undefined;
    }
    const live = await this.#waitLive(epoch);
    if (live) {
      this.#metrics.restarts.inc({ outcome: 'success' });
      this.#armStableTimer(epoch);
      // A configuration that arrived while this epoch started applies its log levels now.
      const desired = this.#desired;
      if (desired && desired.restartKey === state.desired.restartKey) {
        await this.#enqueue(() => this.#applyLogLevels(desired.logLevels));
      }
    } else if (!state.process.hasExited() && !this.#stopping) {
      this.#options.logger.error(
        `Envoy epoch ${epoch} did not become LIVE within ${this.#liveTimeout} ms (bootstrap ${this.#options.bootstrapFile}); it keeps running and may still become ready`,
      );
    }
  }

  get #liveTimeout(): number {
    return this.#options.liveTimeoutMilliseconds ?? 20_000;
  }

  /** Polls the admin API until `epoch` reports LIVE (or exits, or the timeout passes). */
  async #waitLive(epoch: number): Promise<boolean> {
    const state = this.#epochs.get(epoch);
    if (!state) return false;
    if (state.live) return true;
    const deadline = Date.now() + this.#liveTimeout;
    let interval = 20;
    while (!state.process.hasExited() && !this.#stopping && Date.now() < deadline) {
      try {
        const info = await this.#options.admin.serverInfo();
        const options = info.command_line_options as { restart_epoch?: number } | undefined;
        if (info.state === 'LIVE' && Number(options?.restart_epoch ?? 0) === epoch) {
          this.#markLive(state);
          return true;
        }
      } catch {
        // Not listening yet, or the admin port is moving between epochs.
      }
      await delay(interval);
      interval = Math.min(interval * 2, 250);
    }
    return state.live;
  }

  #markLive(state: Epoch): void {
    if (state.live) return;
    state.live = true;
    this.#metrics.epoch.set(state.process.epoch);
    this.#options.logger.info(`Envoy epoch ${state.process.epoch} is LIVE`);
    this.emit('epoch-live', { epoch: state.process.epoch });
  }

  #newestRunning(): Epoch | undefined {
    let newest: Epoch | undefined;
    for (const state of this.#epochs.values()) {
      if (!state.process.hasExited() && (!newest || state.process.epoch > newest.process.epoch))
        newest = state;
    }
    return newest;
  }

  async #readBaseId(process: EnvoyProcess): Promise<number | undefined> {
    const deadline = Date.now() + this.#liveTimeout;
    while (!process.hasExited() && Date.now() < deadline) {
      const text = await readFile(this.#options.baseIdFile, 'utf8').catch(() => '');
      if (/^\d+\s*$/.test(text)) return Number(text.trim());
      await delay(20);
    }
    return undefined;
  }

  #armStableTimer(epoch: number): void {
    clearTimeout(this.#stableTimer);
    this.#stableTimer = setTimeout(() => {
      if (this.servingEpoch === epoch) this.#budget.reset();
    }, this.#options.stableAfterMilliseconds ?? 60_000);
    this.#stableTimer.unref();
  }

  #onExit(state: Epoch, exit: EnvoyExit): void {
    const epoch = state.process.epoch;
    this.#epochs.delete(epoch);
    const newerLive = [...this.#epochs.values()].some((other) => other.process.epoch > epoch && other.live);
    const expected = this.#stopping || (newerLive && exit.exitCode === 0);
    this.#metrics.exits.inc({ expected: String(expected) });
    this.emit('epoch-exited', { epoch, exit, expected });
    const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}`;
    if (expected) {
      this.#options.logger.info(
        `Envoy epoch ${epoch} exited (${how})${this.#stopping ? '' : ': drained parent'}`,
      );
      return;
    }
    if (this.#gaveUp) return;
    const stillServing = this.#newestRunning();
    if (newerLive || (stillServing && stillServing.process.epoch > epoch)) {
      this.#options.logger.warn(`Envoy epoch ${epoch} (a superseded parent) exited with ${how}`);
      return;
    }
    const failedNewEpoch = !state.live && stillServing !== undefined;
    const reason = failedNewEpoch
      ? `new Envoy epoch ${epoch} failed (${how}) while epoch ${stillServing.process.epoch} keeps serving; bootstrap ${this.#options.bootstrapFile}`
      : `Envoy epoch ${epoch} ${state.live ? 'stopped serving' : 'failed to start'} (${how}); bootstrap ${this.#options.bootstrapFile}`;
    this.#metrics.restarts.inc({ outcome: 'failure' });
    this.emit('restart-failed', { epoch, reason });
    const wait = this.#budget.fail();
    if (wait === undefined) {
      this.#gaveUp = true;
      const message = `${reason}; restart budget exhausted after ${this.#budget.failures - 1} retries`;
      this.#options.logger.error(message);
      this.emit('gave-up', { reason: message });
      return;
    }
    this.#options.logger.error(`${reason}; retrying in ${wait} ms`);
    void delay(wait).then(() => this.#requestRestart(failedNewEpoch ? 'retry' : 'crash'));
  }
}

const reasonText: Record<RestartReason, string> = {
  change: 'inputs changed',
  forced: 'forced by SIGHUP',
  crash: 'the serving epoch died',
  retry: 'retrying a failed hot restart',
};

function describeLevels(levels: ProxyLogLevels): string {
  const components = Object.entries(levels.componentLevels).map(
    ([component, level]) => `${component}:${level}`,
  );
  return [levels.level, ...components].join(',');
}
