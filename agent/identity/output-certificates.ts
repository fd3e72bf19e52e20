import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WorkloadSecret } from './certificate-store.ts';

/** File names under `OUTPUT_CERTS`, as Istio writes them. */
export const outputFileNames = {
  privateKey: 'key.pem',
  certificateChain: 'cert-chain.pem',
  rootCert: 'root-cert.pem',
} as const;

/** The key is only ever readable by the agent's user; the certificates are public material. */
const privateKeyMode = 0o600;
const certificateMode = 0o644;

/**
 * Writes the served secret to `OUTPUT_CERTS` for other containers of the pod: each file atomically (a
 * temporary file renamed over it) and only when its content changed. Resolves with the names written.
 */
export async function writeOutputCertificates(directory: string, secret: WorkloadSecret): Promise<string[]> {
  await mkdir(directory, { recursive: true });
  const written: string[] = [];
  const files: [string, string, number][] = [
    [outputFileNames.privateKey, secret.privateKeyPem, privateKeyMode],
    [outputFileNames.certificateChain, secret.certificateChainPem, certificateMode],
    [outputFileNames.rootCert, secret.rootCertPem, certificateMode],
  ];
  for (const [name, content, mode] of files) {
    const file = path.join(directory, name);
    const current = await readFile(file, 'utf8').catch(() => undefined);
    if (current === content) continue;
    await writeAtomically(file, content, mode);
    written.push(name);
  }
  return written;
}

async function writeAtomically(file: string, content: string, mode: number): Promise<void> {
  const temporary = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`,
  );
  try {
    // `mode` on creation is filtered by the umask; chmod sets it exactly before the file becomes visible.
    await writeFile(temporary, content, { mode, flag: 'wx' });
    await chmod(temporary, mode);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new Error(
      `writing ${file} failed: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}
