import { writeSync } from 'node:fs';
import { basename } from 'node:path';

/** spdlog's level names as Envoy prints them (index = spdlog level). `warn` is accepted as an alias. */
export const logLevelNames = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;
export type LogLevelName = (typeof logLevelNames)[number];
/** Index into `logLevelNames`; higher is more severe. */
export type LogLevel = number;

const shortLevelNames = ['T', 'D', 'I', 'W', 'E', 'C', 'O'];

/** Envoy's default `--log-format`. */
export const defaultLogFormat = '[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v';

/** Envoy's component loggers (source/common/common/logger.h, ALL_LOGGER_IDS), in registry order. */
export const componentLoggerNames = [
  'admin',
  'alternate_protocols_cache',
  'aws',
  'assert',
  'backtrace',
  'basic_auth',
  'cache_filter',
  'client',
  'config',
  'connection',
  'conn_handler',
  'decompression',
  'dns',
  'dubbo',
  'envoy_bug',
  'ext_authz',
  'ext_proc',
  'rocketmq',
  'file',
  'filter',
  'forward_proxy',
  'geolocation',
  'grpc',
  'happy_eyeballs',
  'hc',
  'health_checker',
  'http',
  'http2',
  'hystrix',
  'init',
  'io',
  'jwt',
  'kafka',
  'key_value_store',
  'lua',
  'main',
  'matcher',
  'misc',
  'mongo',
  'multi_connection',
  'oauth2',
  'quic',
  'quic_stream',
  'pool',
  'rate_limit_quota',
  'rbac',
  'rds',
  'redis',
  'router',
  'runtime',
  'stats',
  'secret',
  'tap',
  'testing',
  'thrift',
  'tracing',
  'upstream',
  'udp',
  'wasm',
  'websocket',
  'golang',
] as const;
export type ComponentName = (typeof componentLoggerNames)[number];

/** Parses a level name as Envoy's option parser and admin handler do (`warn` is an alias of `warning`). */
export function parseLogLevel(text: string): LogLevel | undefined {
  if (text === 'warn') return 3;
  const index = (logLevelNames as readonly string[]).indexOf(text);
  return index === -1 ? undefined : index;
}

export function isComponentName(name: string): name is ComponentName {
  return (componentLoggerNames as readonly string[]).includes(name);
}

export interface ComponentLogger {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  critical(message: string): void;
}

export interface LogRegistryOptions {
  readonly level: LogLevel;
  readonly componentLevels?: ReadonlyArray<readonly [string, LogLevel]>;
  readonly format?: string;
  /** `--log-format-escaped`: C-style escapes for control characters in messages. */
  readonly escape?: boolean;
  /** Where formatted lines go; stderr (synchronously, so lines survive an abrupt exit) by default. */
  readonly write?: (line: string) => void;
  readonly pid?: number;
  readonly now?: () => Date;
}

const pad = (value: number, width = 2) => String(value).padStart(width, '0');

function escapeMessage(message: string): string {
  let escaped = '';
  for (const character of message) {
    const code = character.charCodeAt(0);
    if (character === '\n') escaped += '\\n';
    else if (character === '\r') escaped += '\\r';
    else if (character === '\t') escaped += '\\t';
    else if (character === '\\') escaped += '\\\\';
    else if (character === '"') escaped += '\\"';
    else if (code < 0x20) escaped += `\\x${code.toString(16).padStart(2, '0')}`;
    else escaped += character;
  }
  return escaped;
}

/**
 * Envoy's logger registry: one level per component, changed live by `/logging`, and lines formatted with
 * the spdlog pattern of `--log-format` (the subset of flags Envoy's default and common formats use).
 */
export class LogRegistry {
  readonly #levels = new Map<string, LogLevel>();
  readonly #format: string;
  readonly #escape: boolean;
  readonly #write: (line: string) => void;
  readonly #pid: number;
  readonly #now: () => Date;

  constructor(options: LogRegistryOptions) {
    for (const name of componentLoggerNames) this.#levels.set(name, options.level);
    for (const [name, level] of options.componentLevels ?? []) this.#levels.set(name, level);
    this.#format = options.format ?? defaultLogFormat;
    this.#escape = options.escape ?? false;
    this.#write = options.write ?? ((line) => writeSync(2, line));
    this.#pid = options.pid ?? process.pid;
    this.#now = options.now ?? (() => new Date());
  }

  /** A logger for one of Envoy's components; `source` names the stand-in module (printed by `%g`). */
  logger(component: ComponentName, source: string): ComponentLogger {
    const log = (level: LogLevel) => (message: string) => this.log(component, level, message, source);
    return {
      trace: log(0),
      debug: log(1),
      info: log(2),
      warn: log(3),
      error: log(4),
      critical: log(5),
    };
  }

  enabled(component: string, level: LogLevel): boolean {
    return level >= (this.#levels.get(component) ?? 2) && level < 6;
  }

  log(component: string, level: LogLevel, message: string, source: string): void {
    if (!this.enabled(component, level)) return;
    this.#write(`${this.format(component, level, message, source)}\n`);
  }

  setAll(level: LogLevel): void {
    for (const name of this.#levels.keys()) this.#levels.set(name, level);
  }

  /** Changes one component's level; false when no such component exists. */
  set(component: string, level: LogLevel): boolean {
    if (!this.#levels.has(component)) return false;
    this.#levels.set(component, level);
    return true;
  }

  has(component: string): boolean {
    return this.#levels.has(component);
  }

  levelOf(component: string): LogLevel | undefined {
    return this.#levels.get(component);
  }

  /** Loggers in registry order with their level names, as `/logging` lists them. */
  list(): Array<[string, LogLevelName]> {
    return [...this.#levels].map(([name, level]) => [name, logLevelNames[level] ?? 'info']);
  }

  format(component: string, level: LogLevel, message: string, source: string): string {
    const time = this.#now();
    const text = this.#escape ? escapeMessage(message) : message;
    let output = '';
    const format = this.#format;
    for (let index = 0; index < format.length; index++) {
      const character = format[index];
      if (character !== '%' || index === format.length - 1) {
        output += character;
        continue;
      }
      const flag = format[++index];
      switch (flag) {
        case 'Y':
          output += time.getFullYear();
          break;
        case 'm':
          output += pad(time.getMonth() + 1);
          break;
        case 'd':
          output += pad(time.getDate());
          break;
        case 'H':
          output += pad(time.getHours());
          break;
        case 'M':
          output += pad(time.getMinutes());
          break;
        case 'S':
          output += pad(time.getSeconds());
          break;
        case 'T':
          output += `${pad(time.getHours())}:${pad(time.getMinutes())}:${pad(time.getSeconds())}`;
          break;
        case 'e':
          output += pad(time.getMilliseconds(), 3);
          break;
        case 'f':
          output += pad(time.getMilliseconds() * 1000, 6);
          break;
        case 'z': {
          const offset = -time.getTimezoneOffset();
          const sign = offset >= 0 ? '+' : '-';
          output += `${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
          break;
        }
        // Envoy runs its main thread as the process's first thread, so its thread id is the pid.
        case 't':
        case 'P':
          output += this.#pid;
          break;
        case 'l':
          output += logLevelNames[level] ?? 'info';
          break;
        case 'L':
          output += shortLevelNames[level] ?? 'I';
          break;
        case 'n':
          output += component;
          break;
        case 'v':
          output += text;
          break;
        case 'j':
          output += JSON.stringify(message).slice(1, -1);
          break;
        case 'g':
          output += source;
          break;
        case 's':
          output += basename(source);
          break;
        case '#':
          output += '0';
          break;
        case '!':
          output += component;
          break;
        case '%':
          output += '%';
          break;
        default:
          output += `%${flag}`;
      }
    }
    return output;
  }
}
