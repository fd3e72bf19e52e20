import { writeSync } from 'node:fs';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { AgentLogLevel } from './config/log-levels.ts';

export type { Logger } from 'pino';

const pinoLevels: Record<AgentLogLevel, pino.LevelWithSilent> = {
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  fatal: 'fatal',
  none: 'silent',
};

/** Paths whose values are secrets; pino replaces them before anything is written. */
const redactedPaths = [
  'key',
  'privateKey',
  'token',
  'authorization',
  'password',
  '*.key',
  '*.privateKey',
  '*.token',
  '*.authorization',
  'headers.authorization',
  'metadata.authorization',
];

export interface LoggingOptions {
  /** Levels per scope, with `default` for every scope not named (Istio's `--log_output_level`). */
  readonly levels: Readonly<Record<string, AgentLogLevel>>;
  readonly asJson: boolean;
  /** Where lines go; stdout by default, as Istio's `--log_target`. */
  readonly destination?: DestinationStream;
}

/** The agent's loggers: one pino logger per Istio-style scope ("ca", "xds", "envoy", …). */
export interface Logging {
  scope(name: string): Logger;
}

export function createLogging(options: LoggingOptions): Logging {
  const destination = options.destination ?? synchronousFileDescriptor(1);
  const root = pino(
    {
      level: 'trace',
      base: null,
      messageKey: 'msg',
      timestamp: () => `,"time":"${istioTimestamp(new Date())}"`,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: redactedPaths, censor: '[REDACTED]' },
    },
    options.asJson ? destination : istioTextStream(destination),
  );
  const scopes = new Map<string, Logger>();
  return {
    scope(name) {
      let logger = scopes.get(name);
      if (!logger) {
        const level = options.levels[name] ?? options.levels.default ?? 'info';
        logger = root.child({ scope: name }, { level: pinoLevels[level] });
        scopes.set(name, logger);
      }
      return logger;
    },
  };
}

/** Istio's timestamps carry microseconds: 2026-11-25T10:00:00.000000Z. */
function istioTimestamp(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function synchronousFileDescriptor(fd: number): DestinationStream {
  return { write: (line: string) => void writeSync(fd, line) };
}

/**
 * Re-renders pino's JSON lines in Istio's text shape: `time<TAB>level<TAB>scope<TAB>message<TAB>key=value…`,
 * with the scope column left out for the default scope, as Istio prints it.
 */
function istioTextStream(destination: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      const { time, level, scope, msg, ...fields } = JSON.parse(line) as Record<string, unknown>;
      let text = `${time}\t${level}\t`;
      if (scope !== undefined && scope !== 'default') text += `${scope}\t`;
      text += String(msg ?? '');
      for (const [key, value] of Object.entries(fields)) {
        text += `\t${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`;
      }
      destination.write(`${text}\n`);
    },
  };
}
