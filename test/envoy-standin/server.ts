import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { addressAsString, type EnvoyAddress, parseAddress } from './addresses.ts';
import { AdminServer } from './admin-server.ts';
import { AdsClient, type XdsResource } from './ads-client.ts';
import type { StandinBootstrap } from './bootstrap-model.ts';
import { CertificateStore } from './certificates.ts';
import { ClusterManager } from './cluster-manager.ts';
import { DrainManager } from './drain-manager.ts';
import { JsonLineLog } from './event-log.ts';
import type { Faults, Observation } from './faults.ts';
import type { EnvoyOptions } from './flags.ts';
import type { HotRestart } from './hot-restart.ts';
import { ListenerManager } from './listener-manager.ts';
import type { ComponentLogger, LogRegistry } from './log.ts';
import { SdsClient } from './sds-client.ts';
import { ServerStateTracker, serverStateValues } from './server-state.ts';
import { StatsStore } from './stats.ts';
import { envoyBuildSha, envoyVersion, hotRestartVersion } from './version.ts';
import { typeUrls } from './xds-protos.ts';

/** A start-up failure Envoy reports as "error initializing configuration" and exits 1 for. */
export class InitializationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InitializationError';
  }
}

export interface EnvoyServerOptions {
  readonly options: EnvoyOptions;
  readonly bootstrap: StandinBootstrap;
  /** Unknown fields tolerated under --allow-unknown-static-fields. */
  readonly unknownStaticFields: number;
  readonly faults: Faults;
  readonly observation: Observation;
  readonly logs: LogRegistry;
  /** This epoch's hot restart link, absent with --disable-hot-restart. */
  readonly hotRestart: HotRestart | undefined;
  /** The base id in use (after --use-dynamic-base-id picked one). */
  readonly baseId: number;
  /** Ends the process; the server never calls process.exit itself. */
  readonly exit: (code: number) => void;
  readonly random?: () => number;
}

interface DynamicListener {
  readonly name: string;
  readonly address: EnvoyAddress | undefined;
}

/** Gauges Envoy never imports from a hot-restart parent (Gauge::ImportMode::NeverImport). */
const neverImport = 'never_import';

/**
 * The Envoy server: admin, cluster manager, init sequence (CDS then LDS over ADS), workers (listeners),
 * SDS, drain and shutdown, and both sides of hot restart. Built by main.ts once the command line, the hot
 * restart sockets and the bootstrap are settled.
 */
export class EnvoyServer {
  readonly #config: EnvoyServerOptions;
  readonly stats: StatsStore;
  readonly state = new ServerStateTracker();
  readonly #log: ComponentLogger;
  readonly #upstreamLog: ComponentLogger;
  readonly #admin: AdminServer;
  readonly #clusters: ClusterManager;
  readonly #listeners: ListenerManager;
  readonly #drain: DrainManager;
  readonly #certificates = new CertificateStore();
  readonly #events: JsonLineLog;
  readonly #dynamicListeners = new Map<string, DynamicListener>();
  readonly #startedAt = Date.now();
  #originalStartTime = Date.now();
  #ads: AdsClient | undefined;
  #sds: SdsClient | undefined;
  #parentStatsTimer: NodeJS.Timeout | undefined;
  #parentShutdownTimer: NodeJS.Timeout | undefined;
  readonly #parentCounters = new Map<string, number>();
  #shuttingDown = false;

  constructor(config: EnvoyServerOptions) {
    this.#config = config;
    const { options, bootstrap, logs } = config;
    this.#log = logs.logger('main', 'test/envoy-standin/server.ts');
    this.#upstreamLog = logs.logger('upstream', 'test/envoy-standin/server.ts');
    this.#events = new JsonLineLog(config.observation.eventLog, {
      pid: process.pid,
      epoch: options.restartEpoch,
    });
    this.stats = new StatsStore({ config: bootstrap.stats, fixedTags: options.statsTags });
    this.#drain = new DrainManager({
      drainTimeMilliseconds: options.drainTimeSeconds * 1000,
      strategy: options.drainStrategy,
      ...(config.random ? { random: config.random } : {}),
    });
    this.#clusters = new ClusterManager(bootstrap.clusters, this.stats);
    this.#listeners = new ListenerManager({
      listeners: bootstrap.listeners,
      clusters: this.#clusters,
      stats: this.stats,
      drain: this.#drain,
      log: logs.logger('config', 'test/envoy-standin/listener-manager.ts'),
    });
    this.#admin = new AdminServer({
      stats: this.stats,
      state: this.state,
      logs,
      log: logs.logger('admin', 'test/envoy-standin/admin-server.ts'),
      faults: config.faults,
      requestLog: new JsonLineLog(config.observation.adminRequestLog, {
        pid: process.pid,
        epoch: options.restartEpoch,
      }),
      hotRestartVersion: options.disableHotRestart ? 'disabled' : hotRestartVersion,
      serverInfo: () => this.serverInfo(),
      listeners: () => this.#listenerInfo(),
      certs: () => this.#certificates.toJson(new Date()),
      refreshServerStats: () => this.refreshServerStats(),
      quitQuitQuit: () => void this.shutdown('quitquitquit'),
      drainListeners: (request) => this.#drainListenersFromAdmin(request),
    });
    this.#createServerStats();
    this.state.on('change', (state) => {
      this.stats.gauge('server.state', neverImport).set(serverStateValues[state]);
      this.stats.gauge('server.live', neverImport).set(state === 'LIVE' ? 1 : 0);
      this.#events.append({ event: 'state', state });
    });
  }

  #createServerStats(): void {
    const { options, unknownStaticFields } = this.#config;
    const { stats } = this;
    stats.gauge('server.state', neverImport).set(serverStateValues.PRE_INITIALIZING);
    stats.gauge('server.live', neverImport).set(0);
    stats.gauge('server.hot_restart_epoch', neverImport).set(options.restartEpoch);
    stats.gauge('server.hot_restart_generation').set(1);
    stats.gauge('server.concurrency', neverImport).set(options.concurrency);
    stats.gauge('server.version', neverImport).set(Number.parseInt(envoyBuildSha.slice(-6), 16));
    stats.gauge('server.days_until_first_cert_expiring', neverImport).set(Number.MAX_SAFE_INTEGER);
    stats.gauge('server.total_connections').set(0);
    stats.gauge('server.parent_connections').set(0);
    stats.counter('server.static_unknown_fields').inc(unknownStaticFields);
    stats.counter('server.dynamic_unknown_fields');
    stats.counter('server.debug_assertion_failures');
    stats.counter('server.envoy_bug_failures');
    stats.counter('server.main_thread.watchdog_miss');
    stats.gauge('listener_manager.workers_started', neverImport).set(0);
    stats.counter('runtime.load_success').inc();
    stats.gauge('runtime.num_keys', neverImport).set(0);
    this.refreshServerStats();
  }

  refreshServerStats(): void {
    const { stats } = this;
    stats.gauge('server.uptime', neverImport).set(Math.floor((Date.now() - this.#startedAt) / 1000));
    const memory = process.memoryUsage();
    stats.gauge('server.memory_allocated', neverImport).set(memory.heapUsed);
    stats.gauge('server.memory_heap_size', neverImport).set(memory.heapTotal);
    stats.gauge('server.memory_physical_size', neverImport).set(memory.rss);
    const days = this.#certificates.daysUntilFirstExpiry(new Date());
    if (days !== undefined) stats.gauge('server.days_until_first_cert_expiring', neverImport).set(days);
    let connections = 0;
    for (const gauge of stats.gauges()) {
      if (gauge.name.startsWith('listener.') && gauge.name.endsWith('.downstream_cx_active'))
        connections += gauge.value;
    }
    stats.gauge('server.total_connections').set(connections);
  }

  serverInfo(): Record<string, unknown> {
    const { options, bootstrap, baseId } = this.#config;
    const seconds = (milliseconds: number) => `${Math.floor(milliseconds / 1000)}s`;
    return {
      version: envoyVersion,
      state: this.state.state,
      uptime_current_epoch: seconds(Date.now() - this.#startedAt),
      uptime_all_epochs: seconds(Date.now() - this.#originalStartTime),
      hot_restart_version: options.disableHotRestart ? 'disabled' : hotRestartVersion,
      command_line_options: {
        base_id: String(baseId),
        use_dynamic_base_id: options.useDynamicBaseId,
        skip_hot_restart_on_no_parent: options.skipHotRestartOnNoParent,
        skip_hot_restart_parent_stats: options.skipHotRestartParentStats,
        base_id_path: options.baseIdPath,
        concurrency: options.concurrency,
        config_path: options.configPath,
        config_yaml: options.configYaml,
        allow_unknown_static_fields: options.allowUnknownStaticFields,
        reject_unknown_dynamic_fields: options.rejectUnknownDynamicFields,
        ignore_unknown_dynamic_fields: options.ignoreUnknownDynamicFields,
        admin_address_path: options.adminAddressPath,
        local_address_ip_version: options.localAddressIpVersion,
        log_level: this.#config.logs.list().find(([name]) => name === 'main')?.[1] ?? 'info',
        component_log_level: options.componentLogLevel,
        log_format: options.logFormat,
        log_format_escaped: options.logFormatEscaped,
        log_path: options.logPath,
        service_cluster: options.serviceCluster,
        service_node: options.serviceNode,
        service_zone: options.serviceZone,
        file_flush_interval: `${options.fileFlushIntervalMilliseconds / 1000}s`,
        drain_time: `${options.drainTimeSeconds}s`,
        drain_strategy: options.drainStrategy === 'immediate' ? 'Immediate' : 'Gradual',
        parent_shutdown_time: `${options.parentShutdownTimeSeconds}s`,
        mode: options.mode === 'serve' ? 'Serve' : options.mode === 'validate' ? 'Validate' : 'InitOnly',
        disable_hot_restart: options.disableHotRestart,
        enable_mutex_tracing: options.enableMutexTracing,
        restart_epoch: options.restartEpoch,
        cpuset_threads: options.cpusetThreads,
        disabled_extensions: options.disabledExtensions,
        enable_fine_grain_logging: options.enableFineGrainLogging,
        socket_path: options.socketPath,
        socket_mode: options.socketMode,
        enable_core_dump: options.enableCoreDump,
        stats_tag: options.statsTags.map(([name, value]) => `${name}:${value}`),
      },
      node: {
        id: bootstrap.node.id,
        cluster: bootstrap.node.cluster,
        metadata: bootstrap.node.metadata,
        ...(bootstrap.node.locality ? { locality: bootstrap.node.locality } : {}),
        user_agent_name: 'envoy',
      },
    };
  }

  #listenerInfo() {
    const fromStatic = this.#listeners.list().map((listener) => ({
      name: listener.config.name,
      address: listener.config.address,
      boundPort: listener.boundPort,
    }));
    const fromLds = [...this.#dynamicListeners.values()]
      .filter(
        (listener): listener is DynamicListener & { address: EnvoyAddress } => listener.address !== undefined,
      )
      .map((listener) => ({ name: listener.name, address: listener.address, boundPort: undefined }));
    return [...fromStatic, ...fromLds];
  }

  /** Runs the server up to serving. Throws InitializationError where Envoy exits 1 during start-up. */
  async start(): Promise<void> {
    const { options, bootstrap, hotRestart } = this.#config;
    const log = this.#log;
    this.#events.append({ event: 'started', baseId: this.#config.baseId });

    if (hotRestart) {
      hotRestart.setParentHandlers({
        initializing: () => !this.#listeners.workersStarted,
        shutdownAdmin: () => {
          log.info('shutting down admin due to child startup');
          void this.#admin.close();
          // A new child means the grandparent (if still alive) must go: at most three processes.
          hotRestart.terminateParent();
          this.#events.append({ event: 'admin_shut_down_for_child' });
          return {
            originalStartTimeMilliseconds: this.#originalStartTime,
            listenAddresses: this.#listeners.listeningAddresses(),
          };
        },
        stats: () => ({
          counters: Object.fromEntries(
            [...this.stats.counters()]
              .filter((counter) => counter.used)
              .map((counter) => [counter.name, counter.value]),
          ),
        }),
        drainListeners: () => {
          log.info('closing and draining listeners');
          this.#events.append({ event: 'draining_for_child' });
          this.#listeners.stopListeners('all');
          this.#drain.startDrainSequence('all', () => this.#listeners.closeIdleConnections());
          if (options.drainStrategy === 'immediate') this.#listeners.closeIdleConnections();
        },
        terminate: () => {
          log.info('shutting down due to child request');
          this.#events.append({ event: 'terminated_by_child' });
          process.kill(process.pid, 'SIGTERM');
        },
      });
      if (hotRestart.parentConnected) {
        const reply = await hotRestart.shutdownParentAdmin();
        if (reply) this.#originalStartTime = reply.originalStartTimeMilliseconds;
        if (!options.skipHotRestartParentStats) {
          await this.#mergeParentStats();
          this.#parentStatsTimer = setInterval(() => void this.#mergeParentStats(), 5000);
        }
      }
    }

    if (bootstrap.adminAddress) {
      let adminAddress: string;
      try {
        adminAddress = await this.#admin.listen(bootstrap.adminAddress);
      } catch (error) {
        throw new InitializationError((error as Error).message);
      }
      log.info(`admin address: ${adminAddress}`);
      this.#events.append({ event: 'admin_listening', address: adminAddress });
      if (options.adminAddressPath !== '') {
        try {
          writeFileSync(options.adminAddressPath, adminAddress);
        } catch {
          log.critical(`cannot open admin address output file ${options.adminAddressPath} for writing.`);
        }
      }
    } else {
      log.info('No admin address given, so no admin HTTP server started.');
    }

    log.info('loading tracing configuration');
    log.info(`loading 0 static secret(s)`);
    log.info(`loading ${bootstrap.clusters.length} cluster(s)`);
    log.info(`loading ${bootstrap.listeners.length} listener(s)`);
    log.info('loading stats configuration');

    const sdsCluster = this.#clusters.get('sds-grpc');
    if (sdsCluster && sdsCluster.endpoints.length > 0) {
      this.#sds = new SdsClient({
        clusterName: 'sds-grpc',
        endpoints: sdsCluster.endpoints,
        node: bootstrap.node,
        certificates: this.#certificates,
        stats: this.stats,
        log: this.#config.logs.logger('secret', 'test/envoy-standin/sds-client.ts'),
        ...(this.#config.random ? { random: this.#config.random } : {}),
        onUpdate: () => this.refreshServerStats(),
      });
      this.#sds.start();
    }

    log.info('starting main dispatch loop');
    void this.#initialize().catch((error: Error) => {
      log.critical(`error initializing configuration '${options.configPath}': ${error.message}`);
      this.#events.append({ event: 'exit', code: 1 });
      void this.#stopEverything().then(() => this.#config.exit(1));
    });
  }

  /** Cluster manager (CDS) → init manager (LDS) → workers, as Envoy's RunHelper sequences them. */
  async #initialize(): Promise<void> {
    const { bootstrap, faults } = this.#config;
    const { dynamic } = bootstrap;
    const adsCluster = dynamic.ads && this.#clusters.get(dynamic.ads.clusterName);
    if (dynamic.ads && adsCluster) {
      this.#ads = new AdsClient({
        config: dynamic.ads,
        endpoints: adsCluster.endpoints,
        node: bootstrap.node,
        stats: this.stats,
        log: this.#config.logs.logger('config', 'test/envoy-standin/ads-client.ts'),
        ...(this.#config.random ? { random: this.#config.random } : {}),
      });
      this.#ads.start();
    }
    const ads = this.#ads;
    const initialized = (typeUrl: string) =>
      new Promise<void>((resolve) => {
        const onInitialized = (initializedType: string) => {
          if (initializedType !== typeUrl) return;
          ads?.off('initialized', onInitialized);
          resolve();
        };
        ads?.on('initialized', onInitialized);
      });

    if (ads && dynamic.cdsFromAds) {
      const cdsReady = initialized(typeUrls.cluster);
      ads.subscribe(
        typeUrls.cluster,
        'cluster_manager.cds',
        (resources) => this.#applyClusters(resources),
        dynamic.cdsInitialFetchTimeoutMilliseconds,
      );
      await cdsReady;
    }
    this.#upstreamLog.info('cm init: all clusters initialized');
    this.#log.info('all clusters initialized. initializing init manager');
    this.state.setInitState('INITIALIZING');
    const holdInitializing =
      faults.initializingMilliseconds > 0 ? delay(faults.initializingMilliseconds) : undefined;

    if (ads && dynamic.ldsFromAds) {
      const ldsReady = initialized(typeUrls.listener);
      ads.subscribe(
        typeUrls.listener,
        'listener_manager.lds',
        (resources) => this.#applyListeners(resources),
        dynamic.ldsInitialFetchTimeoutMilliseconds,
      );
      await ldsReady;
    }
    if (holdInitializing) {
      if (faults.initializingMilliseconds === Number.POSITIVE_INFINITY) await new Promise(() => undefined);
      await holdInitializing;
    }
    if (this.#shuttingDown) return;
    this.#log.info('all dependencies initialized. starting workers');
    this.state.setInitState('LIVE');
    await this.#startWorkers();
  }

  async #startWorkers(): Promise<void> {
    const { hotRestart, options } = this.#config;
    try {
      await this.#listeners.startWorkers();
    } catch (error) {
      throw new InitializationError((error as Error).message);
    }
    this.stats.gauge('listener_manager.workers_started', neverImport).set(1);
    this.stats.histogram('server.initialization_time_ms').record(Date.now() - this.#startedAt);
    this.#events.append({ event: 'workers_started' });
    if (hotRestart?.parentConnected) {
      // Ready to take traffic on every port: the parent stops listening and drains, then goes after
      // --parent-shutdown-time-s.
      hotRestart.drainParentListeners();
      this.#events.append({ event: 'parent_drain_requested' });
      this.#parentShutdownTimer = setTimeout(() => {
        this.#log.info('shutting down parent after drain');
        hotRestart.terminateParent();
        if (this.#parentStatsTimer) clearInterval(this.#parentStatsTimer);
        this.#events.append({ event: 'parent_terminate_requested' });
      }, options.parentShutdownTimeSeconds * 1000);
    }
  }

  async #mergeParentStats(): Promise<void> {
    const counters = await this.#config.hotRestart?.parentStats();
    if (!counters) return;
    for (const [name, value] of Object.entries(counters)) {
      const previous = this.#parentCounters.get(name) ?? 0;
      this.#parentCounters.set(name, value);
      if (value > previous) this.stats.counter(name).inc(value - previous);
    }
  }

  #applyClusters(resources: ReadonlyMap<string, XdsResource>): string | undefined {
    for (const [name] of resources) {
      if (name === '') {
        return 'Proto constraint validation failed (ClusterValidationError.Name: value length must be at least 1 characters): name: ""';
      }
    }
    const names = [...resources.keys()].filter((name) => {
      const existing = this.#clusters.get(name);
      return !existing || existing.addedViaApi;
    });
    const { added, removed } = this.#clusters.setDynamicClusters(names);
    this.#upstreamLog.info(`cds: add ${resources.size} cluster(s), remove ${removed} cluster(s)`);
    this.#upstreamLog.info(
      `cds: added/updated ${added} cluster(s), skipped ${resources.size - added} unmodified cluster(s)`,
    );
    return undefined;
  }

  #applyListeners(resources: ReadonlyMap<string, XdsResource>): string | undefined {
    const next = new Map<string, DynamicListener>();
    for (const [name, { resource }] of resources) {
      if (name === '') return 'Error adding/updating listener(s) : listener name must not be empty';
      if (resource.address === undefined || resource.address === null) {
        return `Error adding/updating listener(s) ${name}: error adding listener named '${name}': address is necessary`;
      }
      let address: EnvoyAddress | undefined;
      try {
        address = parseAddress(resource.address, `listener ${name}`);
      } catch (error) {
        return `Error adding/updating listener(s) ${name}: ${(error as Error).message}`;
      }
      next.set(name, { name, address });
    }
    const added = [...next.keys()].filter((name) => !this.#dynamicListeners.has(name));
    const removed = [...this.#dynamicListeners.keys()].filter((name) => !next.has(name));
    this.#dynamicListeners.clear();
    for (const [name, listener] of next) this.#dynamicListeners.set(name, listener);
    for (const name of added) this.#upstreamLog.info(`lds: add/update listener '${name}'`);
    if (added.length > 0) this.stats.counter('listener_manager.listener_added').inc(added.length);
    if (removed.length > 0) this.stats.counter('listener_manager.listener_removed').inc(removed.length);
    this.stats
      .gauge('listener_manager.total_listeners_active')
      .set(this.#config.bootstrap.listeners.length + this.#dynamicListeners.size);
    return undefined;
  }

  #drainListenersFromAdmin(request: { inboundOnly: boolean; graceful: boolean; skipExit: boolean }): void {
    const scope = request.inboundOnly ? 'inbound' : 'all';
    this.#events.append({ event: 'drain_listeners', ...request });
    if (!request.graceful) {
      this.#listeners.stopListeners(scope);
      return;
    }
    const started = this.#drain.startDrainSequence(scope, () => {
      if (!request.skipExit) this.#listeners.stopListeners(scope);
      this.#listeners.closeIdleConnections();
      this.#events.append({ event: 'drain_sequence_complete', ...request });
    });
    if (started && this.#config.options.drainStrategy === 'immediate') this.#listeners.closeIdleConnections();
  }

  async #stopEverything(): Promise<void> {
    if (this.#parentStatsTimer) clearInterval(this.#parentStatsTimer);
    if (this.#parentShutdownTimer) clearTimeout(this.#parentShutdownTimer);
    this.#drain.stop();
    this.#ads?.stop();
    this.#sds?.stop();
    this.#listeners.close();
    await this.#admin.close();
    this.#clusters.close();
    this.#config.hotRestart?.close();
  }

  /** Envoy's clean shutdown (SIGTERM, SIGINT, /quitquitquit): no drain, exit 0. */
  async shutdown(reason: string): Promise<void> {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    this.#log.info(`shutting down server instance (${reason})`);
    await this.#stopEverything();
    this.#log.info('main dispatch loop exited');
    this.#log.info('exiting');
    this.#events.append({ event: 'exit', code: 0, reason });
    this.#config.exit(0);
  }

  /** Listener addresses as strings (for logs and tests). */
  listeningAddresses(): string[] {
    return this.#listeners.list().map((listener) => addressAsString(listener.config.address));
  }
}
