import { ConfigError, quoteForError } from './errors.ts';
import { isPlainObject, parseJson } from './structured-text.ts';

/** The paths the status server answers for application probes, as Istio's `ISTIO_KUBE_APP_PROBERS` keys. */
export const appProbePathPattern =
  /^\/(app-health|app-lifecycle)\/[^/]+\/(livez|readyz|startupz|prestopz|poststartz)$/;

export interface HttpHeader {
  readonly name: string;
  readonly value: string;
}

export type AppProbe =
  | {
      readonly kind: 'http';
      readonly port: number;
      readonly path: string;
      readonly host?: string;
      readonly scheme: 'HTTP' | 'HTTPS';
      readonly headers: readonly HttpHeader[];
      readonly timeoutSeconds: number;
    }
  | { readonly kind: 'tcp'; readonly port: number; readonly host?: string; readonly timeoutSeconds: number }
  | {
      readonly kind: 'grpc';
      readonly port: number;
      readonly service?: string;
      readonly timeoutSeconds: number;
    };

/** Kubernetes' default probe timeout. */
const defaultTimeoutSeconds = 1;

/**
 * Parses `ISTIO_KUBE_APP_PROBERS`: a JSON map from a status-server path to
 * `{httpGet|tcpSocket|grpc, timeoutSeconds}` (exactly one probe kind per entry).
 */
export function parseAppProbers(source: string, text: string | undefined): ReadonlyMap<string, AppProbe> {
  const probes = new Map<string, AppProbe>();
  if (text === undefined || text.trim() === '') return probes;
  const value = parseJson(source, text, 'a map from probe path to {httpGet|tcpSocket|grpc, timeoutSeconds}');
  if (!isPlainObject(value))
    throw new ConfigError(source, 'expected a JSON object mapping probe paths to probers');
  for (const [path, prober] of Object.entries(value)) {
    const where = `${source}[${JSON.stringify(path)}]`;
    if (!appProbePathPattern.test(path)) {
      throw new ConfigError(
        where,
        `invalid probe path (expected /app-health/<container>/livez|readyz|startupz or /app-lifecycle/<container>/prestopz|poststartz)`,
      );
    }
    if (!isPlainObject(prober)) throw new ConfigError(where, 'expected a prober object');
    probes.set(path, parseProber(where, prober));
  }
  return probes;
}

function parseProber(where: string, prober: Record<string, unknown>): AppProbe {
  const kinds = ['httpGet', 'tcpSocket', 'grpc'].filter(
    (kind) => prober[kind] !== undefined && prober[kind] !== null,
  );
  if (kinds.length !== 1) {
    throw new ConfigError(
      where,
      `expected exactly one of httpGet, tcpSocket or grpc, found ${kinds.length === 0 ? 'none' : kinds.join(', ')}`,
    );
  }
  const timeout = prober.timeoutSeconds ?? defaultTimeoutSeconds;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0) {
    throw new ConfigError(
      `${where}.timeoutSeconds`,
      `${quoteForError(JSON.stringify(timeout))} is not a number of seconds`,
    );
  }
  const timeoutSeconds = timeout === 0 ? defaultTimeoutSeconds : timeout;
  const kind = kinds[0] as string;
  const action = prober[kind];
  if (!isPlainObject(action)) throw new ConfigError(`${where}.${kind}`, 'expected an object');
  const port = parseProbePort(`${where}.${kind}.port`, action.port);
  const host = optionalString(`${where}.${kind}.host`, action.host);
  if (kind === 'tcpSocket') return { kind: 'tcp', port, ...(host ? { host } : {}), timeoutSeconds };
  if (kind === 'grpc') {
    const service = optionalString(`${where}.grpc.service`, action.service);
    return { kind: 'grpc', port, ...(service ? { service } : {}), timeoutSeconds };
  }
  const path = optionalString(`${where}.httpGet.path`, action.path) ?? '/';
  const scheme = (optionalString(`${where}.httpGet.scheme`, action.scheme) ?? 'HTTP').toUpperCase();
  if (scheme !== 'HTTP' && scheme !== 'HTTPS') {
    throw new ConfigError(`${where}.httpGet.scheme`, `${quoteForError(scheme)} is not HTTP or HTTPS`);
  }
  const headers = parseHeaders(`${where}.httpGet.httpHeaders`, action.httpHeaders);
  return { kind: 'http', port, path, ...(host ? { host } : {}), scheme, headers, timeoutSeconds };
}

function parseProbePort(source: string, port: unknown): number {
  const value = typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new ConfigError(
      source,
      `${quoteForError(JSON.stringify(port))} is not a port number (1 to 65535; named ports must be resolved by the injector)`,
    );
  }
  return value;
}

function optionalString(source: string, value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string')
    throw new ConfigError(source, `${quoteForError(JSON.stringify(value))} is not a string`);
  return value;
}

function parseHeaders(source: string, value: unknown): readonly HttpHeader[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ConfigError(source, 'expected a list of {name, value}');
  return value.map((header, index) => {
    if (
      !isPlainObject(header) ||
      typeof header.name !== 'string' ||
      typeof (header.value ?? '') !== 'string'
    ) {
      throw new ConfigError(`${source}[${index}]`, 'expected {name, value} strings');
    }
    return { name: header.name, value: (header.value as string | undefined) ?? '' };
  });
}
