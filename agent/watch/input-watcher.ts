import { EventEmitter } from 'node:events';
import path from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import type { Counter } from 'prom-client';
import type { Logger } from '../log.ts';
import { Debouncer } from './debounce.ts';

export interface InputWatcherOptions {
  /** Files to watch; they need not exist yet (a later creation is a change). */
  readonly files: readonly string[];
  /** Directories whose whole content is one input (`./etc/certs`). */
  readonly directories?: readonly string[];
  readonly debounceMilliseconds: number;
  readonly logger: Logger;
  /** `istio_agent_num_file_watcher_failures_total`. */
  readonly failures?: Counter;
}

export interface InputWatcherEvents {
  /** The watched paths that changed during one debounce window. */
  changed: [paths: readonly string[]];
}

/**
 * Watches the agent's file inputs (pod labels and annotations, the bootstrap override, the mesh config,
 * `./etc/certs`) and reports changes after a quiet period. A file is watched through its directory: the
 * kubelet updates downward-API and ConfigMap volumes by swapping a `..data` symlink, which changes no file
 * in place, so a swap counts as a change of every watched file of that directory.
 */
export class InputWatcher extends EventEmitter<InputWatcherEvents> {
  readonly #options: InputWatcherOptions;
  readonly #debouncer: Debouncer<string>;
  #watcher: FSWatcher | undefined;

  constructor(options: InputWatcherOptions) {
    super();
    this.#options = options;
    this.#debouncer = new Debouncer(options.debounceMilliseconds, (paths) =>
      this.emit('changed', [...paths].sort()),
    );
  }

  /** Resolves once the initial scan is done, so that a change made afterwards is seen. */
  async start(): Promise<void> {
    const directories = [
      ...new Set([
        ...this.#options.files.map((file) => path.dirname(file)),
        ...(this.#options.directories ?? []),
      ]),
    ];
    const watcher = watch(directories, { ignoreInitial: true, followSymlinks: true, persistent: true });
    this.#watcher = watcher;
    watcher.on('all', (_event, changed) => {
      for (const input of this.#inputsAffectedBy(changed)) this.#debouncer.push(input);
    });
    watcher.on('error', (error) => {
      this.#options.failures?.inc();
      this.#options.logger.error({ err: error }, `file watcher failed: ${(error as Error).message}`);
    });
    await new Promise<void>((resolve) => watcher.once('ready', resolve));
  }

  async stop(): Promise<void> {
    this.#debouncer.cancel();
    await this.#watcher?.close();
    this.#watcher = undefined;
  }

  /** The watched inputs an event's path belongs to; events on unwatched neighbours are ignored. */
  #inputsAffectedBy(changed: string): string[] {
    const affected: string[] = [];
    for (const directory of this.#options.directories ?? []) {
      if (changed === directory || changed.startsWith(`${directory}/`)) affected.push(directory);
    }
    for (const file of this.#options.files) {
      const directory = path.dirname(file);
      const relative = path.relative(directory, changed);
      const outside = relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative);
      if (relative === '' || outside) continue;
      const swapped = relative === '..data' || relative.startsWith(`..data${path.sep}`);
      if (
        relative === path.basename(file) ||
        (swapped && (relative === '..data' || path.basename(relative) === path.basename(file)))
      ) {
        affected.push(file);
      }
    }
    return affected;
  }
}
