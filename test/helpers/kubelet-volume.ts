import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

let generation = 0;

/**
 * Writes files into a directory the way the kubelet updates downward-API, ConfigMap and Secret volumes:
 * a new timestamped directory, a `..data` symlink swapped atomically with rename, and each file a symlink
 * through `..data`.
 */
export async function writeKubeletVolume(directory: string, files: Record<string, string>): Promise<void> {
  await mkdir(directory, { recursive: true });
  const version = `..2026_11_25_10_00_00.${process.pid}_${++generation}`;
  await mkdir(path.join(directory, version));
  for (const [name, content] of Object.entries(files))
    await writeFile(path.join(directory, version, name), content);
  const dataLink = path.join(directory, '..data');
  const previous = await readlink(dataLink).catch(() => undefined);
  const temporaryLink = path.join(directory, '..data_tmp');
  await rm(temporaryLink, { force: true });
  await symlink(version, temporaryLink);
  await rename(temporaryLink, dataLink);
  if (previous !== undefined) await rm(path.join(directory, previous), { recursive: true, force: true });
  for (const name of Object.keys(files)) {
    const link = path.join(directory, name);
    await symlink(path.join('..data', name), link).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
}
