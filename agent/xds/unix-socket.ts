import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Prepares a Unix socket path for listening, as Istio's agent does: creates the directory (0750) and removes
 * a socket left behind by an earlier run. Anything else at the path is an error naming it.
 */
export async function prepareSocketPath(socketPath: string, purpose: string): Promise<void> {
  await mkdir(path.dirname(socketPath), { recursive: true, mode: 0o750 });
  const existing = await lstat(socketPath).catch(() => undefined);
  if (!existing) return;
  if (!existing.isSocket()) {
    throw new Error(`${purpose} socket path ${socketPath} exists and is not a socket`);
  }
  await unlink(socketPath);
}

/** Lets Envoy, running as another user in the pod (istio-proxy), connect. */
export async function openSocketPermissions(socketPath: string): Promise<void> {
  await chmod(socketPath, 0o666);
}

/** Removes the socket file after the server stopped (already gone is fine). */
export async function removeSocket(socketPath: string): Promise<void> {
  await unlink(socketPath).catch(() => {});
}
