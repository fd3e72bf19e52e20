import { once } from 'node:events';
import { unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { addressAsString, addressToJson, type EnvoyAddress, listenOptions } from './addresses.ts';
import type { JsonLineLog } from './event-log.ts';
import type { Faults } from './faults.ts';
import { describeErrno } from './listener-manager.ts';
import { type ComponentLogger, type LogRegistry, logLevelNames, parseLogLevel } from './log.ts';
import { writePrometheus } from './prometheus.ts';
import type { ServerStateTracker } from './server-state.ts';
import type { StatsStore } from './stats.ts';
import { renderStatsJson, renderStatsText } from './stats-render.ts';

export interface AdminListenerInfo {
  readonly name: string;
  readonly address: EnvoyAddress;
  readonly boundPort: number | undefined;
}

/** What the admin API reads and drives; the server provides it. */
export interface AdminContext {
  readonly stats: StatsStore;
  readonly state: ServerStateTracker;
  readonly logs: LogRegistry;
  readonly log: ComponentLogger;
  readonly faults: Faults;
  readonly requestLog: JsonLineLog;
  readonly hotRestartVersion: string;
  serverInfo(): Record<string, unknown>;
  listeners(): readonly AdminListenerInfo[];
  certs(): unknown;
  /** Envoy refreshes server gauges (uptime, memory, state) on each stats flush; here before each read. */
  refreshServerStats(): void;
  quitQuitQuit(): void;
  drainListeners(request: { inboundOnly: boolean; graceful: boolean; skipExit: boolean }): void;
}

interface Handler {
  readonly prefix: string;
  readonly help: string;
  readonly mutates: boolean;
  readonly run: (params: Map<string, string>, response: ServerResponse) => void | Promise<void>;
}

const textType = 'text/plain; charset=UTF-8';
const jsonType = 'application/json';

/** Envoy's query parsing: `a&b=c`, percent-decoded (`+` stays a plus). */
function parseQuery(query: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const part of query.split('&')) {
    if (part === '') continue;
    const separator = part.indexOf('=');
    const rawKey = separator === -1 ? part : part.slice(0, separator);
    const rawValue = separator === -1 ? '' : part.slice(separator + 1);
    const decode = (text: string) => {
      try {
        return decodeURIComponent(text);
      } catch {
        return text;
      }
    };
    const key = decode(rawKey);
    if (!params.has(key)) params.set(key, decode(rawValue));
  }
  return params;
}

function send(response: ServerResponse, status: number, body: string, contentType = textType): void {
  response.statusCode = status;
  response.setHeader('content-type', contentType);
  response.setHeader('content-length', Buffer.byteLength(body));
  response.end(body);
}

/**
 * Envoy's admin API on the bootstrap's admin address: the endpoints a supervisor uses, Envoy's response
 * formats, POST required on every endpoint that changes state (405 "Method GET not allowed, POST
 * required."), 404 with the command list for anything else.
 */
export class AdminServer {
  readonly #context: AdminContext;
  readonly #server: Server;
  readonly #handlers: Handler[];

  constructor(context: AdminContext) {
    this.#context = context;
    this.#handlers = this.#createHandlers();
    this.#server = createServer({ keepAliveTimeout: 3_600_000, requestTimeout: 0 }, (request, response) => {
      void this.#handle(request, response);
    });
    this.#server.headersTimeout = 0;
    const { stats } = context;
    this.#server.on('connection', (socket) => {
      const active = stats.gauge('listener.admin.downstream_cx_active');
      active.inc();
      stats.counter('listener.admin.downstream_cx_total').inc();
      socket.once('close', () => active.dec());
    });
  }

  /** Binds the admin address; resolves with the address as Envoy prints it (`127.0.0.1:15000`). */
  async listen(address: EnvoyAddress): Promise<string> {
    if (address.kind === 'pipe' && !address.path.startsWith('@')) {
      try {
        unlinkSync(address.path);
      } catch {
        // Nothing stale.
      }
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) =>
        reject(new Error(`cannot bind '${addressAsString(address)}': ${describeErrno(error)}`));
      this.#server.once('error', onError);
      this.#server.listen(listenOptions(address), () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    const bound = this.#server.address();
    if (address.kind === 'socket' && typeof bound === 'object' && bound) {
      return addressAsString({ ...address, port: bound.port });
    }
    return addressAsString(address);
  }

  /** Stops accepting and closes every admin connection (shutdown, or a hot-restart child's request). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const context = this.#context;
    const method = request.method ?? 'GET';
    const url = request.url ?? '/';
    context.requestLog.append({ method, path: url });
    const queryIndex = url.indexOf('?');
    const path = queryIndex === -1 ? url : url.slice(0, queryIndex);
    const params = parseQuery(queryIndex === -1 ? '' : url.slice(queryIndex + 1));
    const { faults, stats } = context;
    stats.counter('http.admin.downstream_rq_total').inc();
    response.once('finish', () => {
      stats.counter(`http.admin.downstream_rq_${Math.floor(response.statusCode / 100)}xx`).inc();
    });
    response.setHeader('cache-control', 'no-cache, max-age=0');
    response.setHeader('x-content-type-options', 'nosniff');
    response.setHeader('server', 'envoy');
    request.resume();

    if (
      faults.adminDelayMilliseconds > 0 &&
      (faults.adminDelayPaths.length === 0 ||
        faults.adminDelayPaths.some((prefix) => path.startsWith(prefix)))
    ) {
      await new Promise((resolve) => setTimeout(resolve, faults.adminDelayMilliseconds));
      if (response.destroyed) return;
    }

    // Envoy matches the longest registered prefix equal to the path (handlers are exact paths).
    const handler = this.#handlers.find((candidate) => candidate.prefix === path);
    if (!handler) {
      send(response, 404, `invalid path. ${this.#help()}`);
      return;
    }
    if (handler.mutates && method !== 'POST') {
      context.log.error(`admin path "${handler.prefix}" mutates state, method=${method} rather than POST`);
      send(response, 405, `Method ${method} not allowed, POST required.`);
      return;
    }
    try {
      await handler.run(params, response);
    } catch (error) {
      if (!response.headersSent) send(response, 500, `${(error as Error).message}\n`);
      else response.destroy();
    }
  }

  #help(): string {
    return `admin commands are:\n${this.#handlers.map((handler) => `  ${handler.prefix}: ${handler.help}\n`).join('')}`;
  }

  #filter(params: Map<string, string>, response: ServerResponse): RegExp | undefined | false {
    const filter = params.get('filter');
    if (filter === undefined || filter === '') return undefined;
    try {
      return new RegExp(filter);
    } catch {
      send(response, 400, 'Invalid re2 regex');
      return false;
    }
  }

  async #prometheus(params: Map<string, string>, response: ServerResponse): Promise<void> {
    const filter = this.#filter(params, response);
    if (filter === false) return;
    this.#context.refreshServerStats();
    response.statusCode = 200;
    response.setHeader('content-type', textType);
    let aborted = false;
    response.once('close', () => {
      aborted = true;
    });
    await writePrometheus(
      this.#context.stats,
      {
        usedOnly: params.has('usedonly'),
        ...(filter ? { filter } : {}),
        extraSeries: this.#context.faults.extraPrometheusSeries,
      },
      async (text) => {
        if (aborted) throw new Error('client went away');
        if (!response.write(text)) await once(response, 'drain');
      },
    ).catch((error: Error) => {
      if (!aborted) throw error;
    });
    if (!aborted) response.end();
  }

  #createHandlers(): Handler[] {
    const context = this.#context;
    const handler = (prefix: string, help: string, mutates: boolean, run: Handler['run']): Handler => ({
      prefix,
      help,
      mutates,
      run,
    });
    const loggingListing = () =>
      `active loggers:\n${context.logs
        .list()
        .map(([name, level]) => `  ${name}: ${level}\n`)
        .join('')}\n`;

    return [
      handler('/', 'Admin home page', false, (_params, response) =>
        send(
          response,
          200,
          `<html><head><title>Envoy Admin</title></head><body><pre>${this.#help()}</pre></body></html>\n`,
          'text/html; charset=UTF-8',
        ),
      ),
      handler('/certs', 'print certs on machine', false, (_params, response) =>
        send(response, 200, `${JSON.stringify(context.certs(), null, 1)}\n`, jsonType),
      ),
      handler('/drain_listeners', 'drain listeners', true, (params, response) => {
        const graceful = params.has('graceful');
        const skipExit = params.has('skip_exit');
        if (skipExit && !graceful) {
          send(response, 400, 'skip_exit requires graceful\n');
          return;
        }
        context.drainListeners({ inboundOnly: params.has('inboundonly'), graceful, skipExit });
        send(response, 200, 'OK\n');
      }),
      handler('/healthcheck/fail', 'cause the server to fail health checks', true, (_params, response) => {
        context.state.setHealthCheckFailed(true);
        send(response, 200, 'OK\n');
      }),
      handler('/healthcheck/ok', 'cause the server to pass health checks', true, (_params, response) => {
        context.state.setHealthCheckFailed(false);
        send(response, 200, 'OK\n');
      }),
      handler('/help', 'print out list of admin commands', false, (_params, response) =>
        send(response, 200, this.#help()),
      ),
      handler(
        '/hot_restart_version',
        'print the hot restart compatibility version',
        false,
        (_params, response) => send(response, 200, context.hotRestartVersion),
      ),
      handler('/listeners', 'print listener info', false, (params, response) => {
        const listeners = context.listeners();
        if (params.get('format') === 'json') {
          const body = {
            listener_statuses: listeners.map((listener) => ({
              name: listener.name,
              local_address: addressToJson(listener.address, listener.boundPort),
            })),
          };
          send(response, 200, `${JSON.stringify(body, null, 1)}\n`, jsonType);
          return;
        }
        send(
          response,
          200,
          listeners
            .map((listener) => {
              const address =
                listener.address.kind === 'socket' && listener.boundPort !== undefined
                  ? { ...listener.address, port: listener.boundPort }
                  : listener.address;
              return `${listener.name}::${addressAsString(address)}\n`;
            })
            .join(''),
        );
      }),
      handler('/logging', 'query/change logging levels', true, (params, response) => {
        const level = params.get('level') || undefined;
        const paths = params.get('paths') || undefined;
        const others = [...params.keys()].filter((key) => key !== 'level' && key !== 'paths');
        const error = (() => {
          const count = (level ? 1 : 0) + (paths ? 1 : 0) + others.length;
          if (count === 0) return undefined;
          if (count !== 1) return 'invalid number of parameters';
          const changes: Array<[string, number]> = [];
          if (level) {
            const parsed = parseLogLevel(level);
            if (parsed === undefined) return `unknown logger level`;
            context.logs.setAll(parsed);
            context.log.info(`change all log levels: level='${logLevelNames[parsed]}'`);
            return undefined;
          }
          const pairs = paths
            ? paths.split(',').filter((entry) => entry.trim() !== '')
            : others.map((name) => `${name}:${params.get(name) ?? ''}`);
          for (const pair of pairs) {
            const separator = pair.indexOf(':');
            const name = separator === -1 ? pair : pair.slice(0, separator);
            const value = separator === -1 ? '' : pair.slice(separator + 1);
            if (name === '' || value === '') return 'empty logger name or empty logger level';
            const parsed = parseLogLevel(value);
            if (parsed === undefined) return 'unknown logger level';
            changes.push([name, parsed]);
          }
          if (changes.some(([name]) => !context.logs.has(name))) return 'unknown logger name';
          for (const [name, parsed] of changes) {
            context.logs.set(name, parsed);
            context.log.info(`change log level: name='${name}' level='${logLevelNames[parsed]}'`);
          }
          return undefined;
        })();
        if (error !== undefined) {
          const usage =
            `error: ${error}\n\n` +
            'usage: /logging?<name>=<level> (change single level)\n' +
            'usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n' +
            'usage: /logging?level=<level> (change all levels)\n' +
            `levels: ${logLevelNames.map((name) => `${name} `).join('')}\n`;
          send(response, 400, usage + loggingListing());
          return;
        }
        send(response, 200, loggingListing());
      }),
      handler('/quitquitquit', 'exit the server', true, (_params, response) => {
        response.once('finish', () => context.quitQuitQuit());
        send(response, 200, 'OK\n');
      }),
      handler(
        '/ready',
        'print server state, return 200 if LIVE, otherwise return 503',
        false,
        (_params, response) => {
          const state = context.state.state;
          send(response, state === 'LIVE' ? 200 : 503, `${state}\n`);
        },
      ),
      handler('/server_info', 'print server version/status information', false, (_params, response) =>
        send(response, 200, `${JSON.stringify(context.serverInfo(), null, 1)}\n`, jsonType),
      ),
      handler('/stats', 'print server stats', false, async (params, response) => {
        const format = params.get('format');
        if (format === 'prometheus') {
          await this.#prometheus(params, response);
          return;
        }
        const filter = this.#filter(params, response);
        if (filter === false) return;
        context.refreshServerStats();
        const query = { usedOnly: params.has('usedonly'), ...(filter ? { filter } : {}) };
        if (format === 'json') send(response, 200, renderStatsJson(context.stats, query), jsonType);
        else if (format === undefined || format === 'text')
          send(response, 200, renderStatsText(context.stats, query));
        else send(response, 400, `usage: /stats?format=(html|active-html|json|prometheus|text)\n`);
      }),
      handler('/stats/prometheus', 'print server stats in prometheus format', false, (params, response) =>
        this.#prometheus(params, response),
      ),
    ];
  }
}
