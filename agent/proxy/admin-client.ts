import { Agent, type IncomingMessage, request } from 'node:http';
import { StreamedGet } from '../http/streamed-get.ts';

/** Envoy's server states as `/ready` names them and `server.state` numbers them. */
export type EnvoyServerState = 'LIVE' | 'DRAINING' | 'PRE_INITIALIZING' | 'INITIALIZING';

export interface DrainListenersOptions {
  /** Only listeners with `traffic_direction: INBOUND`. */
  readonly inboundOnly?: boolean;
  /** Run the drain sequence before stopping the listeners. */
  readonly graceful?: boolean;
  /** Keep listeners up after a graceful drain. */
  readonly skipExit?: boolean;
}

export class EnvoyAdminError extends Error {
  readonly status: number | undefined;

  constructor(message: string, status?: number) {
    super(message);
    this.name = 'EnvoyAdminError';
    this.status = status;
  }
}

export interface EnvoyAdminClientOptions {
  readonly host?: string;
  readonly port: number;
  /** Per-request timeout; Istio uses 1 s for the config check and 3 s for the state check. */
  readonly timeoutMilliseconds?: number;
  /** Concurrent connections kept to the admin port (default 8); metrics scrapes may want more. */
  readonly maxSockets?: number;
}

/**
 * The one client of Envoy's admin API (`127.0.0.1:<proxyAdminPort>`): readiness, stats, draining, log
 * levels, shutdown. Connections are kept alive, because the status server asks on every kubelet probe.
 */
export class EnvoyAdminClient {
  readonly host: string;
  readonly port: number;
  readonly #timeoutMilliseconds: number;
  readonly #agent: Agent;

  constructor(options: EnvoyAdminClientOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port;
    this.#timeoutMilliseconds = options.timeoutMilliseconds ?? 3_000;
    this.#agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 8 });
  }

  get baseUrl(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** `GET /ready`: 200 only when LIVE. */
  async ready(timeoutMilliseconds?: number): Promise<{ readonly live: boolean; readonly state: string }> {
    const { status, body } = await this.#send('GET', '/ready', timeoutMilliseconds);
    return { live: status === 200, state: body.trim() };
  }

  /**
   * `GET /stats?usedonly&filter=<regex>` parsed into numbers; lines whose value is not a number
   * (histogram summaries, text readouts) are left out.
   */
  async stats(
    filter: string,
    options: { usedOnly?: boolean; timeoutMilliseconds?: number } = {},
  ): Promise<Map<string, number>> {
    const query = new URLSearchParams();
    if (options.usedOnly ?? true) query.set('usedonly', '');
    query.set('filter', filter);
    const { status, body } = await this.#send(
      'GET',
      `/stats?${query.toString().replace('usedonly=', 'usedonly')}`,
      options.timeoutMilliseconds,
    );
    if (status !== 200) throw new EnvoyAdminError(`GET /stats answered ${status}: ${body.trim()}`, status);
    return parseStats(body);
  }

  async serverInfo(): Promise<Record<string, unknown>> {
    const { status, body } = await this.#send('GET', '/server_info');
    if (status !== 200) throw new EnvoyAdminError(`GET /server_info answered ${status}`, status);
    return JSON.parse(body) as Record<string, unknown>;
  }

  async drainListeners(options: DrainListenersOptions = {}): Promise<void> {
    const flags = [
      options.inboundOnly && 'inboundonly',
      options.graceful && 'graceful',
      options.skipExit && 'skip_exit',
    ].filter(Boolean);
    await this.#post(`/drain_listeners${flags.length > 0 ? `?${flags.join('&')}` : ''}`);
  }

  /** `POST /logging`: the global level and/or component levels, applied live. */
  async setLogLevels(levels: {
    level?: string;
    componentLevels?: Readonly<Record<string, string>>;
  }): Promise<void> {
    if (levels.level !== undefined) await this.#post(`/logging?level=${encodeURIComponent(levels.level)}`);
    const paths = Object.entries(levels.componentLevels ?? {}).map(
      ([component, level]) => `${component}:${level}`,
    );
    if (paths.length > 0) await this.#post(`/logging?paths=${encodeURIComponent(paths.join(','))}`);
  }

  async quit(): Promise<void> {
    await this.#post('/quitquitquit');
  }

  /** Any admin request, for `pilot-agent request` (with an optional request body). */
  async send(
    method: string,
    path: string,
    options: { body?: string; timeoutMilliseconds?: number } = {},
  ): Promise<{ readonly status: number; readonly body: string }> {
    return this.#send(method, path, options.timeoutMilliseconds, options.body);
  }

  /** A streamed GET (for `/stats/prometheus`): the caller consumes and releases the response. */
  stream(
    path: string,
    options: { headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const outgoing = request(
        {
          host: this.host,
          port: this.port,
          path,
          method: 'GET',
          agent: this.#agent,
          headers: options.headers,
          signal: options.signal,
        },
        resolve,
      );
      outgoing.on('error', reject);
      outgoing.end();
    });
  }

  /**
   * A GET whose body is read piece by piece into one reused buffer (see {@link StreamedGet}), for large
   * bodies such as `/stats/prometheus` that must not be held in memory. On its own connection.
   */
  openStream(
    path: string,
    options: { headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<StreamedGet> {
    return StreamedGet.open({
      host: this.host,
      port: this.port,
      path,
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  close(): void {
    this.#agent.destroy();
  }

  async #post(path: string): Promise<void> {
    const { status, body } = await this.#send('POST', path);
    if (status !== 200) throw new EnvoyAdminError(`POST ${path} answered ${status}: ${body.trim()}`, status);
  }

  #send(
    method: string,
    path: string,
    timeoutMilliseconds = this.#timeoutMilliseconds,
    body?: string,
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const outgoing = request(
        {
          host: this.host,
          port: this.port,
          path,
          method,
          agent: this.#agent,
          signal: AbortSignal.timeout(timeoutMilliseconds),
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          response.on('error', reject);
        },
      );
      outgoing.on('error', (error) =>
        reject(
          new EnvoyAdminError(
            `${method} ${this.baseUrl}${path} failed: ${error.name === 'AbortError' ? `timed out after ${timeoutMilliseconds} ms` : error.message}`,
          ),
        ),
      );
      outgoing.end(body);
    });
  }
}

/** Parses Envoy's `/stats` text (`name: value` lines). */
export function parseStats(body: string): Map<string, number> {
  const stats = new Map<string, number>();
  for (const line of body.split('\n')) {
    const separator = line.lastIndexOf(': ');
    if (separator <= 0) continue;
    const value = Number(line.slice(separator + 2));
    if (Number.isFinite(value)) stats.set(line.slice(0, separator), value);
  }
  return stats;
}
