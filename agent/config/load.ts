import { readFileSync } from 'node:fs';
import { type AgentConfig, buildAgentConfig, type FileReader, type ProxyFlags } from './agent-config.ts';
import { ConfigError } from './errors.ts';

/** The one place that touches the file system for configuration: missing files read as undefined. */
export const readConfigFile: FileReader = (absolutePath) => {
  try {
    return readFileSync(absolutePath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new ConfigError(absolutePath, `cannot be read (${code ?? (error as Error).message})`);
  }
};

/** Loads the configuration from this process's environment, working directory and files. */
export function loadAgentConfig(
  flags: ProxyFlags,
  environment: NodeJS.ProcessEnv = process.env,
): AgentConfig {
  return buildAgentConfig({ environment, flags, workingDirectory: process.cwd(), readFile: readConfigFile });
}
