import { ConfigError, quoteForError } from './errors.ts';

/** Envoy's log levels (`-l`, `--component-log-level`, admin `/logging`). */
export const envoyLogLevels = [
  'trace',
  'debug',
  'info',
  'warning',
  'warn',
  'error',
  'critical',
  'off',
] as const;
export type EnvoyLogLevel = (typeof envoyLogLevels)[number];

export interface ProxyLogLevels {
  /** The global level for Envoy's `-l`. */
  readonly level: EnvoyLogLevel;
  /** Component levels for `--component-log-level`, in the order given, later entries winning. */
  readonly componentLevels: Readonly<Record<string, EnvoyLogLevel>>;
}

function checkEnvoyLevel(source: string, level: string): EnvoyLogLevel {
  if (!(envoyLogLevels as readonly string[]).includes(level)) {
    throw new ConfigError(
      source,
      `unknown log level ${quoteForError(level)} (expected one of ${envoyLogLevels.join(', ')})`,
    );
  }
  return level as EnvoyLogLevel;
}

/**
 * Istio's `--proxyLogLevel` / `--proxyComponentLogLevel` semantics: both are split on commas; an entry
 * with `:` is a component level, the one without is the global level.
 */
export function parseProxyLogLevels(
  proxyLogLevel: { source: string; value: string },
  componentLogLevel: { source: string; value: string },
): ProxyLogLevels {
  let level: EnvoyLogLevel = 'warning';
  const componentLevels: Record<string, EnvoyLogLevel> = {};
  for (const { source, value } of [proxyLogLevel, componentLogLevel]) {
    for (const rawEntry of value.split(',')) {
      const entry = rawEntry.trim();
      if (entry === '') continue;
      const separator = entry.indexOf(':');
      if (separator < 0) {
        level = checkEnvoyLevel(source, entry);
        continue;
      }
      const component = entry.slice(0, separator).trim();
      if (!/^[a-z0-9_]+$/.test(component)) {
        throw new ConfigError(
          source,
          `${quoteForError(entry)} is not a component level (expected component:level, e.g. misc:error)`,
        );
      }
      componentLevels[component] = checkEnvoyLevel(source, entry.slice(separator + 1).trim());
    }
  }
  return Object.freeze({ level, componentLevels: Object.freeze(componentLevels) });
}

/** The agent's own log levels per scope, as Istio's `--log_output_level` (`scope:level,…`). */
export const agentLogLevels = ['debug', 'info', 'warn', 'error', 'fatal', 'none'] as const;
export type AgentLogLevel = (typeof agentLogLevels)[number];

export function parseAgentOutputLevels(
  source: string,
  value: string,
): Readonly<Record<string, AgentLogLevel>> {
  const levels: Record<string, AgentLogLevel> = { default: 'info' };
  for (const rawEntry of value.split(',')) {
    const entry = rawEntry.trim();
    if (entry === '') continue;
    const separator = entry.lastIndexOf(':');
    const scope = separator < 0 ? 'default' : entry.slice(0, separator).trim();
    const level = (separator < 0 ? entry : entry.slice(separator + 1)).trim();
    if (!(agentLogLevels as readonly string[]).includes(level)) {
      throw new ConfigError(
        source,
        `unknown log level ${quoteForError(level)} for scope ${quoteForError(scope)} (expected one of ${agentLogLevels.join(', ')})`,
      );
    }
    levels[scope] = level as AgentLogLevel;
  }
  return Object.freeze(levels);
}
