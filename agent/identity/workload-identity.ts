import { EventEmitter } from 'node:events';
import type { Registry } from 'prom-client';
import { type Clock, type Random, SleepAbortedError, sleep, systemClock, type Timer } from '../clock.ts';
import type { AgentConfig } from '../config/agent-config.ts';
import {
  caChannelSettings,
  createIstiodChannelFactory,
  type IstiodChannelFactory,
} from '../istiod/channel-factory.ts';
import type { Logger, Logging } from '../log.ts';
import { certificateBackoff, ExponentialBackoff } from './backoff.ts';
import { CaClient } from './ca-client.ts';
import { CertificateStore, WorkloadSecret, workloadResourceName } from './certificate-store.ts';
import { InvalidCertificateChainError, verifyIssuedChain } from './certificate-verification.ts';
import { generateKeyAndCsr } from './key-and-csr.ts';
import { csrRequestType, type IdentityMetrics, registerIdentityMetrics } from './metrics.ts';
import { MountedCertificates, mountedCertificatesPresent } from './mounted-certificates.ts';
import { writeOutputCertificates } from './output-certificates.ts';
import { rotationDelay } from './rotation.ts';
import { SdsServer } from './sds-server.ts';

/** What the events say about a certificate: never the key. */
export interface CertificateSummary {
  readonly spiffeIds: readonly string[];
  readonly serialNumber: string;
  readonly notAfter: Date;
  readonly source: 'ca' | 'files';
}

export interface CertificateFailure {
  readonly error: Error;
  /** When the next attempt is due (from now). */
  readonly retryInMilliseconds: number;
}

export interface WorkloadIdentityEvents {
  /** The agent holds its first certificate: SDS can answer Envoy. */
  'first-certificate': [certificate: CertificateSummary];
  /** A newer certificate replaced the previous one (CA rotation or changed mounted files). */
  rotated: [certificate: CertificateSummary, previous: CertificateSummary];
  /** No certificate yet and this attempt failed; the agent stays not ready and tries again. */
  'first-certificate-failed': [failure: CertificateFailure];
  /** A rotation failed; the current certificate is still served until the retry succeeds. */
  'rotation-failed': [failure: CertificateFailure & { readonly expiresAt: Date }];
}

export interface WorkloadIdentityOptions {
  readonly config: AgentConfig;
  readonly logging: Logging;
  /** The agent's registry, served on the status port's merged metrics. */
  readonly registry: Registry;
  readonly clock?: Clock;
  readonly random?: Random;
  /** How CSRs reach istiod; the shared istiod channel factory for `CA_ADDR` unless a test replaces it. */
  readonly openCaChannel?: () => Promise<IstiodChannelFactory>;
}

/**
 * The workload's identity, for the agent's whole life: obtains the certificate (from istiod's CA, or from
 * mounted files), rotates it, serves it to Envoy over SDS, mirrors it to `OUTPUT_CERTS`, and reports through
 * events, logs and the agent's metrics.
 */
export class WorkloadIdentity extends EventEmitter<WorkloadIdentityEvents> {
  readonly store = new CertificateStore();
  readonly #config: AgentConfig;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #log: Logger;
  readonly #metrics: IdentityMetrics;
  readonly #sds: SdsServer;
  readonly #caClient: CaClient;
  readonly #abort = new AbortController();
  readonly #rotationBackoff: ExponentialBackoff;
  readonly #firstCertificate: Promise<WorkloadSecret>;
  #resolveFirst!: (secret: WorkloadSecret) => void;
  #rejectFirst!: (error: Error) => void;
  #mounted: MountedCertificates | undefined;
  #rotationTimer: Timer | undefined;
  #outputWrites: Promise<void> = Promise.resolve();
  #mode: 'ca' | 'files' | undefined;
  #started = false;

  constructor(options: WorkloadIdentityOptions) {
    super();
    this.#config = options.config;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#log = options.logging.scope('cache');
    this.#metrics = registerIdentityMetrics(options.registry, () => this.#expirySeconds());
    this.#sds = new SdsServer({
      socketPath: this.#config.paths.sdsSocket,
      store: this.store,
      logger: options.logging.scope('sds'),
    });
    const caSettings = caChannelSettings(this.#config);
    this.#caClient = new CaClient({
      openChannel: options.openCaChannel ?? (() => createIstiodChannelFactory(caSettings)),
      clock: this.#clock,
      random: this.#random,
      logger: options.logging.scope('ca'),
      metrics: this.#metrics,
      tokenFile: this.#config.paths.tokenFile,
      ...(this.#config.security.certSigner !== undefined
        ? { certSigner: this.#config.security.certSigner }
        : {}),
    });
    this.#rotationBackoff = new ExponentialBackoff(certificateBackoff, this.#random);
    this.#firstCertificate = new Promise<WorkloadSecret>((resolve, reject) => {
      this.#resolveFirst = resolve;
      this.#rejectFirst = reject;
    });
    this.#firstCertificate.catch(() => {});
    this.store.on('workload-changed', (secret) => this.#mirrorToOutput(secret));
    this.store.on('root-changed', () => {
      const secret = this.store.secret;
      if (secret) this.#mirrorToOutput(secret);
    });
  }

  /** Where certificates come from; known once started. */
  get mode(): 'ca' | 'files' | undefined {
    return this.#mode;
  }

  /** The agent holds a certificate (readiness). */
  get ready(): boolean {
    return this.store.secret !== undefined;
  }

  /** Resolves with the first certificate held; rejects if the part stops before. */
  firstCertificate(): Promise<WorkloadSecret> {
    return this.#firstCertificate;
  }

  /**
   * Opens the SDS socket and starts obtaining the certificate in the background; resolves once SDS listens.
   * Throws when the SDS socket cannot be served (a start-up error).
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error('the workload identity was already started');
    this.#started = true;
    const { security, paths } = this.#config;
    const filesPresent = await mountedCertificatesPresent(paths.fileMountedCertsDirectory);
    if (security.fileMountedCerts || filesPresent) {
      this.#mode = 'files';
      await this.#sds.start();
      this.#mounted = new MountedCertificates({
        directory: paths.fileMountedCertsDirectory,
        clock: this.#clock,
        debounceMilliseconds: this.#config.fileDebounceMilliseconds,
        logger: this.#log,
        metrics: this.#metrics,
        onSecret: (secret) => this.#hold(secret),
      });
      await this.#mounted.start();
      return;
    }
    this.#mode = 'ca';
    this.#log.info(
      `requesting the workload certificate for ${security.spiffeId} from ${security.caAddress} (${describeKey(this.#config)}, TTL ${Math.round(security.secretTtlMilliseconds / 1000)}s)`,
    );
    // The CSR goes out while SDS loads its protos; the store keeps the answer until Envoy asks.
    void this.#obtainFirstCertificate();
    await this.#sds.start();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    this.#rotationTimer?.cancel();
    this.#rejectFirst(new Error('the workload identity stopped before it held a certificate'));
    this.#caClient.close();
    await this.#mounted?.stop();
    await this.#sds.stop();
    await this.#outputWrites;
  }

  async #obtainFirstCertificate(): Promise<void> {
    const backoff = new ExponentialBackoff(certificateBackoff, this.#random);
    while (!this.#abort.signal.aborted) {
      try {
        const secret = await this.#requestCertificate();
        this.#hold(secret);
        return;
      } catch (error) {
        if (this.#abort.signal.aborted) return;
        const retryInMilliseconds = backoff.next();
        this.#log.error(
          `no workload certificate yet: ${(error as Error).message}; retrying in ${retryInMilliseconds} ms`,
        );
        this.emit('first-certificate-failed', { error: error as Error, retryInMilliseconds });
        try {
          await sleep(this.#clock, retryInMilliseconds, this.#abort.signal);
        } catch (sleepError) {
          if (sleepError instanceof SleepAbortedError) return;
          throw sleepError;
        }
      }
    }
  }

  /** One full round: a fresh key, a CSR, istiod's answer, and its checks. */
  async #requestCertificate(): Promise<WorkloadSecret> {
    const { security } = this.#config;
    const { privateKeyPem, privateKey, csrPem } = await generateKeyAndCsr(
      security.keyAlgorithm,
      security.spiffeId,
      security.pkcs8Key,
    );
    const validitySeconds = Math.max(1, Math.round(security.secretTtlMilliseconds / 1000));
    const chain = await this.#caClient.createCertificate(csrPem, validitySeconds, this.#abort.signal);
    const receivedAt = this.#clock.now();
    try {
      const verified = verifyIssuedChain(chain, privateKey, security.spiffeId, receivedAt);
      return new WorkloadSecret({ ...verified, privateKeyPem, source: 'ca', receivedAt });
    } catch (error) {
      if (error instanceof InvalidCertificateChainError) {
        this.#metrics.failedOutgoingRequests.inc({ request_type: csrRequestType });
        throw new InvalidCertificateChainError(`istiod's answer was rejected: ${error.message}`);
      }
      throw error;
    }
  }

  /** Serves `secret`, announces it and, for CA certificates, schedules its rotation. */
  #hold(secret: WorkloadSecret): void {
    if (this.#abort.signal.aborted) return;
    const previous = this.store.secret;
    const workloadChanged =
      previous?.certificateChainPem !== secret.certificateChainPem ||
      previous.privateKeyPem !== secret.privateKeyPem;
    this.store.update(secret);
    if (previous && !workloadChanged) {
      // Mounted files rewritten with the same key and chain: only the root may have changed.
      if (previous.rootCertPem !== secret.rootCertPem) this.#log.info('trusted root certificate changed');
      return;
    }
    const summary = summarise(secret);
    const expiry = secret.leaf.notAfter.toISOString();
    if (!previous) {
      this.#log.info(
        `workload certificate held: ${summary.spiffeIds.join(', ')} serial ${summary.serialNumber}, expires ${expiry} (from ${secret.source === 'ca' ? 'istiod' : 'files'})`,
      );
      this.#resolveFirst(secret);
      this.emit('first-certificate', summary);
    } else {
      this.#log.info(
        `workload certificate rotated: serial ${previous.leaf.serialNumber} → ${summary.serialNumber}, expires ${expiry}`,
      );
      this.emit('rotated', summary, summarise(previous));
    }
    if (secret.source === 'ca') this.#scheduleRotation(secret);
  }

  #scheduleRotation(secret: WorkloadSecret): void {
    const delay = rotationDelay({
      receivedAt: secret.receivedAt,
      notAfter: secret.leaf.notAfter.getTime(),
      gracePeriodRatio: this.#config.security.secretGracePeriodRatio,
      now: this.#clock.now(),
      random: this.#random,
    });
    this.#log.info(`scheduled certificate for rotation in ${formatDuration(delay)}`);
    this.#rotationTimer?.cancel();
    this.#rotationTimer = this.#clock.setTimer(() => void this.#rotate(), delay);
  }

  async #rotate(): Promise<void> {
    if (this.#abort.signal.aborted) return;
    try {
      const secret = await this.#requestCertificate();
      this.#rotationBackoff.reset();
      this.#hold(secret);
    } catch (error) {
      if (this.#abort.signal.aborted) return;
      const current = this.store.secret as WorkloadSecret;
      const retryInMilliseconds = this.#rotationBackoff.next();
      const expiresAt = current.leaf.notAfter;
      const expired = expiresAt.getTime() <= this.#clock.now();
      this.#log.error(
        `certificate rotation failed: ${(error as Error).message}; still serving serial ${current.leaf.serialNumber} (${expired ? 'EXPIRED at' : 'expires'} ${expiresAt.toISOString()}), retrying in ${retryInMilliseconds} ms`,
      );
      this.emit('rotation-failed', { error: error as Error, retryInMilliseconds, expiresAt });
      this.#rotationTimer = this.#clock.setTimer(() => void this.#rotate(), retryInMilliseconds);
    }
  }

  #mirrorToOutput(secret: WorkloadSecret): void {
    const directory = this.#config.paths.outputCertsDirectory;
    if (directory === undefined) return;
    this.#outputWrites = this.#outputWrites.then(async () => {
      try {
        const written = await writeOutputCertificates(directory, secret);
        if (written.length > 0) this.#log.info(`wrote ${written.join(', ')} to ${directory}`);
      } catch (error) {
        this.#log.error(`OUTPUT_CERTS: ${(error as Error).message}`);
      }
    });
  }

  #expirySeconds(): ReadonlyMap<string, number> {
    const secret = this.store.secret;
    if (!secret) return new Map();
    return new Map([[workloadResourceName, (secret.leaf.notAfter.getTime() - this.#clock.now()) / 1000]]);
  }
}

function summarise(secret: WorkloadSecret): CertificateSummary {
  return {
    spiffeIds: secret.leaf.uris,
    serialNumber: secret.leaf.serialNumber,
    notAfter: secret.leaf.notAfter,
    source: secret.source,
  };
}

function describeKey(config: AgentConfig): string {
  const algorithm = config.security.keyAlgorithm;
  return algorithm.kind === 'RSA' ? `RSA ${algorithm.size}` : `ECDSA ${algorithm.curve}`;
}

function formatDuration(milliseconds: number): string {
  if (milliseconds < 10_000) return `${milliseconds} ms`;
  const seconds = Math.round(milliseconds / 1000);
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return `${hours > 0 ? `${hours}h` : ''}${minutes > 0 ? `${minutes}m` : ''}${seconds % 60}s`;
}
