import { Counter, collectDefaultMetrics, Registry } from 'prom-client';
import { proxyAddresses } from '../bootstrap/build.ts';
import { baseIdFile } from '../bootstrap/envoy-args.ts';
import type { AgentConfig } from './config/agent-config.ts';
import { ExitCode } from './exit-codes.ts';
import { WorkloadIdentity } from './identity/workload-identity.ts';
import type { Logging } from './log.ts';
import { EnvoyAdminClient } from './proxy/admin-client.ts';
import { writeBootstrapFile } from './proxy/bootstrap-file.ts';
import { buildDesiredProxy } from './proxy/desired-proxy.ts';
import { ProxyReloader } from './proxy/reload.ts';
import { ProxySupervisor } from './proxy/supervisor.ts';
import { drainForTermination } from './proxy/termination.ts';
import type { ShutdownSignals } from './shutdown-signals.ts';
import { StatusServer, statusServerOptionsFromConfig } from './status/server.ts';
import { InputWatcher } from './watch/input-watcher.ts';
import { XdsProxy } from './xds/xds-proxy.ts';

export interface AgentRuntime {
  /** Re-reads the configuration (same flags, fresh environment snapshot and files) for reloads. */
  readonly loadConfig: () => AgentConfig;
  readonly shutdownSignals: ShutdownSignals;
}

type Outcome =
  | { kind: 'signal'; signal: NodeJS.Signals }
  | { kind: 'quit' }
  | { kind: 'gave-up'; reason: string };

/**
 * The composition root: builds the agent's parts from one configuration, wires their events and owns the
 * lifecycle (start: identity → status server → Envoy → watchers; stop in reverse). Resolves with the exit code.
 */
export async function runAgent(
  config: AgentConfig,
  logging: Logging,
  runtime: AgentRuntime,
): Promise<number> {
  const log = logging.scope('default');
  log.info(
    `starting pilot-agent ${config.nodeType} for ${config.pod.name}.${config.pod.namespace} (identity ${config.security.spiffeId})`,
  );
  const registry = new Registry();
  // Process metrics under the agent's prefix, as Istio's agent exports its runtime's.
  collectDefaultMetrics({ register: registry, prefix: 'istio_agent_' });
  const stopping: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stopping.reverse())
      await stop().catch((error: Error) => log.warn(`stopping a part failed: ${error.message}`));
  };

  let finish!: (outcome: Outcome) => void;
  const finished = new Promise<Outcome>((resolve) => (finish = resolve));
  void runtime.shutdownSignals.received.then((signal) => finish({ kind: 'signal', signal }));

  try {
    // Identity first: the SDS socket must be there when Envoy asks for its certificates.
    let identity: WorkloadIdentity | undefined;
    if (config.security.pilotCertProvider === 'none') {
      log.info('PILOT_CERT_PROVIDER=none: no workload certificate is requested and no SDS server runs');
    } else {
      identity = new WorkloadIdentity({ config, logging, registry });
      identity.on('first-certificate', (certificate) =>
        log.info(
          `first certificate held for ${certificate.spiffeIds.join(', ')} (serial ${certificate.serialNumber}, expires ${certificate.notAfter.toISOString()}, from ${certificate.source === 'ca' ? 'istiod' : 'files'})`,
        ),
      );
      const started = identity;
      stopping.push(() => started.stop());
      await started.start();
    }

    // Envoy's xds-grpc cluster points at the XDS proxy's socket; it forwards to istiod.
    const xds = new XdsProxy({ config, logging, registry });
    stopping.push(() => xds.stop());
    await xds.start();

    const initial = await buildDesiredProxy(config);
    for (const warning of initial.warnings) log.warn(warning);
    const loopback = proxyAddresses(config).loopback;
    const admin = new EnvoyAdminClient({ host: loopback, port: config.ports.proxyAdmin });

    // The status port next: Envoy's 15021 listener routes the kubelet's probes to it.
    const statusServer = new StatusServer({
      ...statusServerOptionsFromConfig(config),
      admin,
      envoyMetrics: new EnvoyAdminClient({ host: loopback, port: config.ports.envoyPrometheus }),
      registry,
      readinessConditions: [
        () => (identity && !identity.ready ? 'workload certificate not yet received from the CA' : undefined),
      ],
      onQuit: () => finish({ kind: 'quit' }),
      onDrain: () => admin.drainListeners({ inboundOnly: true, graceful: true, skipExit: true }),
      logging,
    });
    statusServer.on('error', (error) => log.error(`status server failed: ${error.message}`));
    stopping.push(() => statusServer.stop());
    await statusServer.start();
    const supervisor = new ProxySupervisor({
      binaryPath: config.proxyConfig.binaryPath,
      workingDirectory: config.paths.workingDirectory,
      environment: process.env,
      bootstrapFile: config.paths.bootstrapFile,
      baseIdFile: baseIdFile(config),
      hotRestart: config.hotRestartEnabled,
      restartBudget: {
        budget: config.envoyRestart.budget,
        initialMilliseconds: config.envoyRestart.initialBackoffMilliseconds,
      },
      admin,
      logger: logging.scope('envoy'),
      registry,
      writeBootstrap: (content) => writeBootstrapFile(config.paths.bootstrapFile, content),
    });
    supervisor.on('gave-up', ({ reason }) => finish({ kind: 'gave-up', reason }));
    // A cold start is a new Envoy: its readiness must be proven again.
    supervisor.on('epoch-started', ({ cold }) => cold && statusServer.readiness.reset());
    stopping.push(async () => {
      await supervisor.stop();
      admin.close();
    });
    await supervisor.start(initial.desired);

    const reloader = new ProxyReloader({
      loadConfig: runtime.loadConfig,
      supervisor,
      logger: logging.scope('reload'),
      registry,
    });
    const watcher = new InputWatcher({
      files: [
        config.paths.podLabelsFile,
        config.paths.podAnnotationsFile,
        config.paths.meshConfigFile,
        ...(config.paths.bootstrapOverrideFile ? [config.paths.bootstrapOverrideFile] : []),
      ],
      directories: [config.paths.fileMountedCertsDirectory],
      debounceMilliseconds: config.fileDebounceMilliseconds,
      logger: logging.scope('watch'),
      failures: fileWatcherFailures(registry),
    });
    watcher.on('changed', (paths) => void reloader.reload(`a change of ${paths.join(', ')}`));
    stopping.push(() => watcher.stop());
    await watcher.start();
    const onHangUp = () => void reloader.reload('SIGHUP', { force: true });
    process.on('SIGHUP', onHangUp);
    stopping.push(async () => void process.off('SIGHUP', onHangUp));

    const outcome = await finished;
    statusServer.readiness.terminate();
    switch (outcome.kind) {
      case 'signal':
        log.info(`received ${outcome.signal}, draining Envoy before exiting`);
        await drainForTermination({
          admin,
          drain: config.drain,
          ownListenerPorts: [config.ports.envoyStatus, config.ports.envoyPrometheus],
          logger: log,
        });
        await stopAll();
        log.info('pilot-agent stopped');
        return ExitCode.ok;
      case 'quit':
        log.info('/quitquitquit: stopping Envoy and the agent without draining');
        await stopAll();
        return ExitCode.ok;
      case 'gave-up':
        log.error(`giving up on Envoy: ${outcome.reason}`);
        await stopAll();
        return ExitCode.envoyRestartBudgetExhausted;
    }
  } catch (error) {
    await stopAll();
    throw error;
  } finally {
    runtime.shutdownSignals.dispose();
  }
}

/** Istio's counter of file watcher failures, shared with the mounted-certificate watcher. */
function fileWatcherFailures(registry: Registry): Counter {
  const name = 'istio_agent_num_file_watcher_failures_total';
  return (
    (registry.getSingleMetric(name) as Counter | undefined) ??
    new Counter({ name, help: 'Number of failures of the file watchers.', registers: [registry] })
  );
}
