import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A temporary working directory standing in for the container's root: the agent resolves Istio's relative
 * paths (`./etc/istio/proxy`, `./var/run/secrets/…`) against it. Short, because Unix socket paths are
 * limited to 107 bytes.
 */
export interface TemporaryRoot {
  readonly directory: string;
  resolve(relative: string): string;
  /** Writes a file below the root, creating its directories. */
  write(relative: string, content: string | Uint8Array): Promise<string>;
  remove(): Promise<void>;
}

export async function createTemporaryRoot(prefix = 'pa-'): Promise<TemporaryRoot> {
  const directory = await mkdtemp(path.join(tmpdir(), prefix));
  return {
    directory,
    resolve: (relative) => path.resolve(directory, relative),
    async write(relative, content) {
      const file = path.resolve(directory, relative);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, content);
      return file;
    },
    remove: () => rm(directory, { recursive: true, force: true }),
  };
}
