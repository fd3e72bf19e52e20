import { ConfigError, quoteForError } from './errors.ts';
import { isPlainObject, parseJson } from './structured-text.ts';

/** Ports of the sidecar itself; scraping them as the application would loop or double-count. */
export const reservedSidecarPorts: readonly number[] = [
  15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15090,
];

export interface ApplicationScrapeTarget {
  readonly port: number;
  readonly path: string;
}

const defaultPath = '/metrics';
const defaultPort = 80;

/**
 * Which application endpoints the status server merges into `/stats/prometheus`: from
 * `ISTIO_PROMETHEUS_ANNOTATIONS` (`{"scrape","path","port","targets":[{"port","path"}]}`) or, when that is
 * unset, from the pod's own `prometheus.io/scrape|port|path` annotations. Empty when nothing is scraped.
 */
export function resolveApplicationScrapeTargets(
  environmentValue: string | undefined,
  annotations: Readonly<Record<string, string>>,
): readonly ApplicationScrapeTarget[] {
  const source = 'ISTIO_PROMETHEUS_ANNOTATIONS';
  if (environmentValue !== undefined && environmentValue.trim() !== '') {
    const value = parseJson(source, environmentValue, '{"scrape","path","port","targets":[{"port","path"}]}');
    if (!isPlainObject(value)) throw new ConfigError(source, 'expected a JSON object');
    if (String(value.scrape ?? 'true') === 'false') return [];
    const fallbackPath = pathOf(`${source}.path`, value.path) ?? defaultPath;
    const fallbackPort = portOf(`${source}.port`, value.port) ?? defaultPort;
    if (value.targets !== undefined && value.targets !== null) {
      if (!Array.isArray(value.targets))
        throw new ConfigError(`${source}.targets`, 'expected a list of {port, path}');
      return value.targets.map((target, index) => {
        const where = `${source}.targets[${index}]`;
        if (!isPlainObject(target)) throw new ConfigError(where, 'expected {port, path}');
        return checked(where, {
          port: portOf(`${where}.port`, target.port) ?? fallbackPort,
          path: pathOf(`${where}.path`, target.path) ?? fallbackPath,
        });
      });
    }
    return [checked(source, { port: fallbackPort, path: fallbackPath })];
  }
  if (annotations['prometheus.io/scrape'] !== 'true') return [];
  const target = {
    port: portOf('annotation prometheus.io/port', annotations['prometheus.io/port']) ?? defaultPort,
    path: pathOf('annotation prometheus.io/path', annotations['prometheus.io/path']) ?? defaultPath,
  };
  // Annotations pointing at the sidecar itself (the injector rewrites them to 15020) are not the application's.
  return reservedSidecarPorts.includes(target.port) ? [] : [Object.freeze(target)];
}

function checked(source: string, target: ApplicationScrapeTarget): ApplicationScrapeTarget {
  if (reservedSidecarPorts.includes(target.port)) {
    throw new ConfigError(
      source,
      `port ${target.port} is reserved for the sidecar (${reservedSidecarPorts.join(', ')}); the application's metrics must be on another port`,
    );
  }
  return Object.freeze(target);
}

function portOf(source: string, value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const port = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(source, `${quoteForError(JSON.stringify(value))} is not a port (1 to 65535)`);
  }
  return port;
}

function pathOf(source: string, value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string')
    throw new ConfigError(source, `${quoteForError(JSON.stringify(value))} is not a path`);
  return value.startsWith('/') ? value : `/${value}`;
}
