import { createPrivateKey } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import type { Clock, Timer } from '../clock.ts';
import type { Logger } from '../log.ts';
import { WorkloadSecret } from './certificate-store.ts';
import { verifyMountedCertificates } from './certificate-verification.ts';
import type { IdentityMetrics } from './metrics.ts';

/** The files Istio serves instead of asking the CA (`./etc/certs`, a mounted Secret or VM files). */
export const mountedCertificateFileNames = {
  certificateChain: 'cert-chain.pem',
  privateKey: 'key.pem',
  rootCert: 'root-cert.pem',
} as const;

/** True when all three files exist (Istio then uses them even without `FILE_MOUNTED_CERTS`). */
export async function mountedCertificatesPresent(directory: string): Promise<boolean> {
  const found = await Promise.all(
    Object.values(mountedCertificateFileNames).map((name) =>
      access(path.join(directory, name)).then(
        () => true,
        () => false,
      ),
    ),
  );
  return found.every(Boolean);
}

export interface MountedCertificatesOptions {
  readonly directory: string;
  readonly clock: Clock;
  /** `FILE_DEBOUNCE_DURATION`: a Secret update touches several files; read them once they settle. */
  readonly debounceMilliseconds: number;
  readonly logger: Logger;
  readonly metrics: IdentityMetrics;
  /** Called with each valid set of files, the first included. */
  readonly onSecret: (secret: WorkloadSecret) => void;
}

/**
 * Serves `cert-chain.pem`, `key.pem` and `root-cert.pem` from a directory and follows their changes
 * (chokidar, through kubelet's `..data` symlink swaps). A set that fails to load or verify is reported and
 * the last good one stays in place.
 */
export class MountedCertificates {
  readonly #options: MountedCertificatesOptions;
  #watcher: FSWatcher | undefined;
  #debounce: Timer | undefined;
  #stopped = false;

  constructor(options: MountedCertificatesOptions) {
    this.#options = options;
  }

  /** Loads the files (reporting a failure without throwing) and starts watching; resolves once watching. */
  async start(): Promise<void> {
    const { directory, logger, metrics } = this.#options;
    await this.#reload();
    const watcher = watch(directory, { ignoreInitial: true, followSymlinks: true });
    this.#watcher = watcher;
    watcher.on('all', (_event, file) => {
      if (path.basename(file).startsWith('.')) return;
      this.#debounce?.cancel();
      this.#debounce = this.#options.clock.setTimer(
        () => void this.#reload(),
        this.#options.debounceMilliseconds,
      );
    });
    watcher.on('error', (error) => {
      metrics.fileWatcherFailures.inc();
      logger.error(`watching ${directory} failed: ${(error as Error).message}`);
    });
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    logger.info(`serving the file-mounted certificates in ${directory} and watching them for changes`);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#debounce?.cancel();
    await this.#watcher?.close();
    this.#watcher = undefined;
  }

  /** Reads and checks the three files. */
  async load(): Promise<WorkloadSecret> {
    const { directory, clock } = this.#options;
    const read = async (name: string) => {
      const file = path.join(directory, name);
      try {
        return await readFile(file, 'utf8');
      } catch (error) {
        throw new Error(
          `${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        );
      }
    };
    const [certificateChainPem, privateKeyPem, rootCertPem] = await Promise.all([
      read(mountedCertificateFileNames.certificateChain),
      read(mountedCertificateFileNames.privateKey),
      read(mountedCertificateFileNames.rootCert),
    ]);
    let privateKey: ReturnType<typeof createPrivateKey>;
    try {
      privateKey = createPrivateKey(privateKeyPem);
    } catch {
      // The parser's message could quote the file; the file name is enough.
      throw new Error(
        `${path.join(directory, mountedCertificateFileNames.privateKey)} holds no readable private key`,
      );
    }
    let leaf: ReturnType<typeof verifyMountedCertificates>;
    try {
      leaf = verifyMountedCertificates(certificateChainPem, privateKey, rootCertPem);
    } catch (error) {
      throw new Error(`the certificates in ${directory} are not usable: ${(error as Error).message}`);
    }
    return new WorkloadSecret({
      certificateChainPem,
      privateKeyPem,
      rootCertPem,
      leaf,
      source: 'files',
      receivedAt: clock.now(),
    });
  }

  async #reload(): Promise<void> {
    if (this.#stopped) return;
    try {
      const secret = await this.load();
      if (!this.#stopped) this.#options.onSecret(secret);
    } catch (error) {
      this.#options.metrics.fileSecretFailures.inc();
      this.#options.logger.error(`${(error as Error).message}; keeping the certificates served so far`);
    }
  }
}
