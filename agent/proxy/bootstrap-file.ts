import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BootstrapSources } from '../../bootstrap/generate.ts';
import type { AgentConfig, FileReader } from '../config/agent-config.ts';
import { ConfigError } from '../config/errors.ts';
import { readConfigFile } from '../config/load.ts';

/**
 * Reads the files that shape the bootstrap: `ISTIO_BOOTSTRAP_OVERRIDE` and `ProxyConfig.customConfigFile`
 * (relative to the working directory, as Istio resolves them). A file that is named but missing is an error.
 */
export function readBootstrapSources(
  config: AgentConfig,
  readFile: FileReader = readConfigFile,
): BootstrapSources {
  const read = (file: string, setting: string) => {
    const text = readFile(file);
    if (text === undefined) throw new ConfigError(file, `does not exist (named by ${setting})`);
    return { file, text };
  };
  const customConfigFile = config.proxyConfig.customConfigFile;
  const overrideFile = config.paths.bootstrapOverrideFile;
  return {
    ...(customConfigFile
      ? {
          customConfig: read(
            path.resolve(config.paths.workingDirectory, customConfigFile),
            'ProxyConfig.customConfigFile',
          ),
        }
      : {}),
    ...(overrideFile ? { override: read(overrideFile, 'ISTIO_BOOTSTRAP_OVERRIDE') } : {}),
  };
}

/** The bootstrap as Envoy reads it from `envoy-rev.json`. */
export function serialiseBootstrap(bootstrap: unknown): string {
  return `${JSON.stringify(bootstrap, null, 2)}\n`;
}

/**
 * Writes the bootstrap atomically: a temporary file in the same directory, flushed, then renamed over the
 * target, so that an Envoy starting at any moment reads either the old or the new file, never half of one.
 */
export async function writeBootstrapFile(file: string, bootstrap: unknown): Promise<void> {
  await writeFileAtomically(
    file,
    typeof bootstrap === 'string' ? bootstrap : serialiseBootstrap(bootstrap),
    0o644,
  );
}

/** Writes `content` to `file` through a flushed temporary file renamed into place. */
export async function writeFileAtomically(
  file: string,
  content: string | Uint8Array,
  mode: number,
): Promise<void> {
  const directory = path.dirname(file);
  await mkdir(directory, { recursive: true });
  const temporary = path.join(
    directory,
    `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  try {
    const handle = await open(temporary, 'w', mode);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new Error(`cannot write ${file}: ${(error as Error).message}`, { cause: error });
  }
}
