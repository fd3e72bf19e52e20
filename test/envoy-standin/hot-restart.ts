import { unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { constants } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { ComponentLogger } from './log.ts';

/**
 * Envoy's hot restart between epochs of one base id, over Unix domain sockets named as Envoy names them:
 * `<socket_path>_<parent|child>_<base_id×10 + epoch % 3>` (abstract when the path starts with `@`).
 *
 * Envoy exchanges protobuf datagrams and passes listening sockets with SCM_RIGHTS. Node can do neither,
 * so here the processes speak JSON lines over stream sockets and the child binds the same ports with
 * SO_REUSEPORT while its parent still serves. The sequence is Envoy's: the child asks its parent to shut
 * down admin (the parent then terminates its own parent, so at most three processes live), pulls the
 * parent's stats, starts its workers, asks the parent to drain its listeners and, after
 * --parent-shutdown-time-s, to terminate.
 */

/** The base id or epoch is taken by another process. */
export class DomainSocketInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DomainSocketInUseError';
  }
}

/** Envoy's RELEASE_ASSERT failures in hot restart: the process aborts. */
export class HotRestartAssertError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HotRestartAssertError';
  }
}

export interface ShutdownAdminReply {
  readonly originalStartTimeMilliseconds: number;
  /** Listener addresses the parent listens on (the child takes them over with SO_REUSEPORT). */
  readonly listenAddresses: readonly string[];
}

/** What the parent side of this process answers to its child. */
export interface ParentHandlers {
  /** True until this process has started its workers (Envoy's INITIALIZING shared-memory flag). */
  initializing(): boolean;
  shutdownAdmin(): ShutdownAdminReply;
  stats(): { counters: Record<string, number> };
  drainListeners(): void;
  terminate(): void;
}

export interface HotRestartOptions {
  /** The base id as given (`--base-id`); Envoy scales it by 10. */
  readonly baseId: number;
  readonly epoch: number;
  readonly socketPath: string;
  readonly log: ComponentLogger;
  /** Pause between connection attempts to a missing parent (Envoy: 1 s). */
  readonly retryIntervalMilliseconds: number;
  /** Attempts before giving up (Envoy: SENDMSG_MAX_RETRIES = 10). */
  readonly retryCount?: number;
}

const maxConcurrentProcesses = 3;

export function domainSocketName(
  socketPath: string,
  role: 'parent' | 'child',
  scaledBaseId: number,
  id: number,
) {
  return `${socketPath}_${role}_${scaledBaseId + (id % maxConcurrentProcesses)}`;
}

const nodeSocketPath = (name: string) => (name.startsWith('@') ? `\0${name.slice(1)}` : name);

function errnoNumber(code: string | undefined): number {
  return (code && (constants.errno as Record<string, number>)[code]) || 0;
}

async function listen(server: Server, name: string): Promise<void> {
  if (!name.startsWith('@')) {
    // Envoy unlinks a filesystem socket path before binding it.
    try {
      unlinkSync(name);
    } catch {
      // Nothing to remove.
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(nodeSocketPath(name), () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A newline-delimited JSON channel over a stream socket. */
class MessageChannel {
  readonly socket: Socket;
  readonly #waiters: Array<(message: Record<string, unknown> | undefined) => void> = [];
  readonly #onRequest: ((message: Record<string, unknown>) => void) | undefined;
  #buffer = '';

  constructor(socket: Socket, onRequest?: (message: Record<string, unknown>) => void) {
    this.socket = socket;
    this.#onRequest = onRequest;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      for (let newline = this.#buffer.indexOf('\n'); newline !== -1; newline = this.#buffer.indexOf('\n')) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        let message: Record<string, unknown>;
        try {
          message = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if ('reply' in message) this.#waiters.shift()?.(message);
        else this.#onRequest?.(message);
      }
    });
    socket.on('close', () => {
      for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    });
    socket.on('error', () => socket.destroy());
  }

  send(message: Record<string, unknown>): void {
    if (!this.socket.destroyed) this.socket.write(`${JSON.stringify(message)}\n`);
  }

  /** Sends a request and waits for its reply (undefined when the peer went away). */
  request(message: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.send(message);
    });
  }
}

export class HotRestart {
  readonly #options: HotRestartOptions;
  readonly #scaledBaseId: number;
  readonly #parentServer = createServer();
  readonly #childServer = createServer();
  #handlers: ParentHandlers | undefined;
  #parent: MessageChannel | undefined;
  #parentTerminated = true;

  private constructor(options: HotRestartOptions) {
    this.#options = options;
    this.#scaledBaseId = options.baseId * 10;
    this.#parentServer.on('connection', (socket) => this.#serveChild(socket));
    // The child-role socket receives nothing here (replies travel on the child's own connection); it is
    // bound so that a second process with the same base id and epoch collides exactly as in Envoy.
    this.#childServer.on('connection', (socket) => socket.destroy());
  }

  /** Binds this epoch's two sockets. Throws DomainSocketInUseError when the base id/epoch is taken. */
  static async bind(options: HotRestartOptions): Promise<HotRestart> {
    const restart = new HotRestart(options);
    for (const [role, server] of [
      ['child', restart.#childServer],
      ['parent', restart.#parentServer],
    ] as const) {
      const name = domainSocketName(options.socketPath, role, restart.#scaledBaseId, options.epoch);
      try {
        await listen(server, name);
      } catch (error) {
        restart.close();
        const errno = errnoNumber((error as NodeJS.ErrnoException).code);
        const message = `unable to bind domain socket with base_id=${restart.#scaledBaseId}, id=${options.epoch}, errno=${errno} (see --base-id option)`;
        if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new DomainSocketInUseError(message);
        throw new Error(message);
      }
    }
    return restart;
  }

  get parentConnected(): boolean {
    return this.#parent !== undefined && !this.#parentTerminated;
  }

  setParentHandlers(handlers: ParentHandlers): void {
    this.#handlers = handlers;
  }

  #serveChild(socket: Socket): void {
    const channel: MessageChannel = new MessageChannel(socket, (message) => {
      const handlers = this.#handlers;
      if (!handlers) return;
      switch (message.request) {
        case 'hello':
          channel.send({ reply: 'hello', initializing: handlers.initializing() });
          break;
        case 'shutdown_admin': {
          const reply = handlers.shutdownAdmin();
          channel.send({
            reply: 'shutdown_admin',
            original_start_time_ms: reply.originalStartTimeMilliseconds,
            listen_addresses: reply.listenAddresses,
          });
          break;
        }
        case 'stats':
          channel.send({ reply: 'stats', ...handlers.stats() });
          break;
        case 'drain_listeners':
          handlers.drainListeners();
          break;
        case 'terminate':
          handlers.terminate();
          break;
        default:
          this.#options.log.error(
            `child sent an unknown hot restart request ${JSON.stringify(message.request)}`,
          );
      }
    });
  }

  async #connectOnce(name: string): Promise<Socket | NodeJS.ErrnoException> {
    return new Promise((resolve) => {
      const socket = connect({ path: nodeSocketPath(name) });
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error));
    });
  }

  /**
   * Reaches the parent epoch. With `allowFailure` (--skip-hot-restart-on-no-parent) a refused connection
   * returns false at once; otherwise it is retried, then the process aborts as Envoy's RELEASE_ASSERT does.
   */
  async connectToParent(allowFailure: boolean): Promise<boolean> {
    const { epoch, log } = this.#options;
    if (epoch === 0) return false;
    const name = domainSocketName(this.#options.socketPath, 'parent', this.#scaledBaseId, epoch - 1);
    const attempts = this.#options.retryCount ?? 10;
    let lastErrno = 0;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const result = await this.#connectOnce(name);
      if (!(result instanceof Error)) {
        this.#parent = new MessageChannel(result);
        this.#parentTerminated = false;
        return true;
      }
      lastErrno = result.code === 'ENOENT' ? errnoNumber('ECONNREFUSED') : errnoNumber(result.code);
      if (allowFailure) return false;
      log.error('hot restart sendmsg() connection refused, retrying');
      await delay(this.#options.retryIntervalMilliseconds);
    }
    throw new HotRestartAssertError(`hot restart sendmsg() failed: returned -1, errno ${lastErrno}`);
  }

  async #request(message: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
    if (!this.#parent || this.#parentTerminated) return undefined;
    return this.#parent.request(message);
  }

  /** Whether the parent still has its INITIALIZING flag set. */
  async parentInitializing(): Promise<boolean> {
    const reply = await this.#request({ request: 'hello', epoch: this.#options.epoch });
    return reply?.initializing === true;
  }

  async shutdownParentAdmin(): Promise<ShutdownAdminReply | undefined> {
    const reply = await this.#request({ request: 'shutdown_admin' });
    if (!reply) return undefined;
    return {
      originalStartTimeMilliseconds: Number(reply.original_start_time_ms ?? Date.now()),
      listenAddresses: Array.isArray(reply.listen_addresses) ? reply.listen_addresses.map(String) : [],
    };
  }

  async parentStats(): Promise<Record<string, number> | undefined> {
    const reply = await this.#request({ request: 'stats' });
    const counters = reply?.counters;
    return typeof counters === 'object' && counters !== null
      ? (counters as Record<string, number>)
      : undefined;
  }

  drainParentListeners(): void {
    if (!this.#parentTerminated) this.#parent?.send({ request: 'drain_listeners' });
  }

  /** Asks the parent to exit (Envoy's TerminateRequest); no more requests go to it afterwards. */
  terminateParent(): void {
    if (this.#parentTerminated || !this.#parent) return;
    this.#parent.send({ request: 'terminate' });
    this.#parentTerminated = true;
    const socket = this.#parent.socket;
    socket.end();
  }

  close(): void {
    this.#parentServer.close();
    this.#childServer.close();
    this.#parent?.socket.destroy();
  }
}
