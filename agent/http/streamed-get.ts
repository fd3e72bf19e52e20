import { connect, isIPv6, type Socket } from 'node:net';

/** Largest response head (status line and headers) accepted. */
const maximumHeadBytes = 64 * 1024;
const readBufferBytes = 64 * 1024;

export class StreamedGetError extends Error {
  readonly code: string | undefined;

  constructor(message: string, code?: string) {
    super(message);
    this.name = 'StreamedGetError';
    this.code = code;
  }
}

export interface StreamedGetOptions {
  readonly host: string;
  readonly port: number;
  /** Path and query, starting with `/`. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/**
 * Receives a body piece by piece. `bytes` is a view of a read buffer that is reused as soon as the call
 * returns: whatever must outlive the call has to be copied. Returning false pauses reading until
 * {@link StreamedGet.resume}.
 */
export type BodyConsumer = (bytes: Buffer) => boolean;

type BodyFraming =
  | { readonly kind: 'length'; remaining: number }
  | { readonly kind: 'chunked' }
  | { readonly kind: 'close' };

/**
 * One HTTP/1.1 GET whose body is read into a single reused buffer (`net.Socket`'s `onread`), so that
 * streaming megabytes through does not allocate a buffer per read: memory stays flat however large the
 * body and however many run at once. The connection is closed after the response (`Connection: close`).
 */
export class StreamedGet {
  readonly status: number;
  /** Response headers, names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly #state: ReaderState;

  private constructor(status: number, headers: Record<string, string>, state: ReaderState) {
    this.status = status;
    this.headers = headers;
    this.#state = state;
  }

  /** Connects, sends the request and resolves once the response head arrived. */
  static open(options: StreamedGetOptions): Promise<StreamedGet> {
    return new Promise((resolve, reject) => {
      const state = new ReaderState();
      const readBuffer = Buffer.allocUnsafe(readBufferBytes);
      const socket = connect({
        host: options.host,
        port: options.port,
        onread: {
          buffer: readBuffer,
          callback: (length: number) => {
            state.onRead(readBuffer.subarray(0, length));
            return true;
          },
        },
      });
      state.socket = socket;
      state.onHead = (status, headers) => resolve(new StreamedGet(status, headers, state));
      state.onFailure = reject;
      const abort = () =>
        state.fail(
          new StreamedGetError(`aborted: ${String(options.signal?.reason ?? 'aborted')}`, 'ABORT_ERR'),
        );
      if (options.signal?.aborted) {
        abort();
        return;
      }
      options.signal?.addEventListener('abort', abort, { once: true });
      state.cleanup = () => options.signal?.removeEventListener('abort', abort);
      socket.on('error', (error: NodeJS.ErrnoException) =>
        state.fail(new StreamedGetError(error.message, error.code)),
      );
      socket.on('end', () => state.onEnd());
      socket.on('close', () => state.onEnd());
      const host = isIPv6(options.host) ? `[${options.host}]` : options.host;
      let head = `GET ${options.path} HTTP/1.1\r\nHost: ${host}:${options.port}\r\nConnection: close\r\n`;
      for (const [name, value] of Object.entries(options.headers ?? {})) {
        if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) continue;
        head += `${name}: ${value}\r\n`;
      }
      socket.write(`${head}\r\n`);
    });
  }

  /** True once the whole body was read. */
  get complete(): boolean {
    return this.#state.complete;
  }

  /**
   * Reads the body into `consumer`; resolves when it ended, rejects on a connection error, an abort or a
   * body cut short. Body bytes that arrived with the head are delivered first.
   */
  read(consumer: BodyConsumer): Promise<void> {
    return this.#state.read(consumer);
  }

  /** Continues reading after the consumer returned false. */
  resume(): void {
    this.#state.resume();
  }

  /** Stops reading and closes the connection (a body not read to its end). */
  close(): void {
    this.#state.close();
  }
}

/** The response parser and the socket's read loop. */
class ReaderState {
  socket: Socket | undefined;
  onHead: ((status: number, headers: Record<string, string>) => void) | undefined;
  onFailure: ((error: Error) => void) | undefined;
  cleanup: (() => void) | undefined;
  complete = false;
  #head: Buffer[] = [];
  #headBytes = 0;
  #framing: BodyFraming | undefined;
  /** Body bytes that arrived before `read` was called (with the head, or while nobody was reading). */
  #early: Buffer[] = [];
  #consumer: BodyConsumer | undefined;
  #done: { resolve: () => void; reject: (error: Error) => void } | undefined;
  #failure: Error | undefined;
  #settled = false;
  // Chunked decoding: bytes left in the current chunk, and the state between chunks.
  #chunkRemaining = 0;
  #chunkState: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  #sizeLine = '';
  #trailerLine = '';

  onRead(bytes: Buffer): void {
    if (this.#settled) return;
    if (this.#framing === undefined) {
      this.#readHead(bytes);
      return;
    }
    this.#body(bytes);
  }

  #readHead(bytes: Buffer): void {
    this.#head.push(Buffer.from(bytes));
    this.#headBytes += bytes.length;
    const head = Buffer.concat(this.#head);
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) {
      if (this.#headBytes > maximumHeadBytes) this.fail(new StreamedGetError('response head too large'));
      return;
    }
    this.#head = [];
    const lines = head.toString('latin1', 0, end).split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!status) {
      this.fail(
        new StreamedGetError(`not an HTTP response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`),
      );
      return;
    }
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) this.#framing = { kind: 'chunked' };
    else if (headers['content-length'] !== undefined && /^\d+$/.test(headers['content-length'])) {
      this.#framing = { kind: 'length', remaining: Number(headers['content-length']) };
    } else this.#framing = { kind: 'close' };
    if (this.#framing.kind === 'length' && this.#framing.remaining === 0) this.#finish();
    const onHead = this.onHead;
    this.onHead = undefined;
    onHead?.(Number(status[1]), headers);
    const rest = head.subarray(end + 4);
    if (rest.length > 0 && !this.#settled) this.#body(rest);
  }

  #body(bytes: Buffer): void {
    const framing = this.#framing as BodyFraming;
    if (framing.kind === 'length') {
      const take = Math.min(bytes.length, framing.remaining);
      framing.remaining -= take;
      this.#deliver(bytes.subarray(0, take));
      if (framing.remaining === 0) this.#finish();
    } else if (framing.kind === 'close') this.#deliver(bytes);
    else this.#chunked(bytes);
  }

  #chunked(bytes: Buffer): void {
    let index = 0;
    while (index < bytes.length && !this.#settled) {
      switch (this.#chunkState) {
        case 'size': {
          const newline = bytes.indexOf(10, index);
          const end = newline === -1 ? bytes.length : newline;
          this.#sizeLine += bytes.toString('latin1', index, end);
          if (this.#sizeLine.length > 1024) {
            this.fail(new StreamedGetError('malformed chunked encoding'));
            return;
          }
          if (newline === -1) return;
          index = newline + 1;
          const size = Number.parseInt(this.#sizeLine.split(';')[0]?.trim() ?? '', 16);
          this.#sizeLine = '';
          if (!Number.isFinite(size) || size < 0) {
            this.fail(new StreamedGetError('malformed chunked encoding'));
            return;
          }
          if (size === 0) this.#chunkState = 'trailer';
          else {
            this.#chunkRemaining = size;
            this.#chunkState = 'data';
          }
          break;
        }
        case 'data': {
          const take = Math.min(bytes.length - index, this.#chunkRemaining);
          this.#deliver(bytes.subarray(index, index + take));
          index += take;
          this.#chunkRemaining -= take;
          if (this.#chunkRemaining === 0) this.#chunkState = 'data-end';
          break;
        }
        case 'data-end': {
          // The CRLF after a chunk's data.
          const newline = bytes.indexOf(10, index);
          if (newline === -1) return;
          index = newline + 1;
          this.#chunkState = 'size';
          break;
        }
        case 'trailer': {
          const newline = bytes.indexOf(10, index);
          const end = newline === -1 ? bytes.length : newline;
          this.#trailerLine += bytes.toString('latin1', index, end);
          if (newline === -1) return;
          index = newline + 1;
          const line = this.#trailerLine.trim();
          this.#trailerLine = '';
          if (line === '') {
            this.#finish();
            return;
          }
          break;
        }
      }
    }
  }

  #deliver(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.#consumer === undefined || this.#early.length > 0) {
      // Nobody reads yet: keep a copy (the read buffer is reused) and stop reading until someone does.
      this.#early.push(Buffer.from(bytes));
      this.socket?.pause();
      return;
    }
    if (!this.#consumer(bytes)) this.socket?.pause();
  }

  read(consumer: BodyConsumer): Promise<void> {
    this.#consumer = consumer;
    return new Promise((resolve, reject) => {
      this.#done = { resolve, reject };
      this.#drainEarly();
      if (this.#failure) reject(this.#failure);
      else if (this.complete && this.#early.length === 0) resolve();
    });
  }

  #drainEarly(): void {
    while (this.#early.length > 0 && this.#consumer) {
      const bytes = this.#early.shift() as Buffer;
      if (!this.#consumer(bytes)) {
        this.socket?.pause();
        return;
      }
    }
    if (this.complete) this.#done?.resolve();
    else this.socket?.resume();
  }

  resume(): void {
    if (this.#early.length > 0) this.#drainEarly();
    else if (!this.#settled) this.socket?.resume();
  }

  #finish(): void {
    if (this.#settled) return;
    this.complete = true;
    this.#settled = true;
    this.cleanup?.();
    this.socket?.destroy();
    if (this.#early.length === 0) this.#done?.resolve();
  }

  onEnd(): void {
    if (this.#settled) return;
    if (this.#framing?.kind === 'close') {
      this.#finish();
      return;
    }
    this.fail(
      new StreamedGetError(
        this.#framing === undefined
          ? 'connection closed before the response'
          : 'connection closed before the end of the body',
        'ECONNRESET',
      ),
    );
  }

  fail(error: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#failure = error;
    this.#early = [];
    this.cleanup?.();
    this.socket?.destroy();
    this.onFailure?.(error);
    this.#done?.reject(error);
  }

  close(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#early = [];
    this.cleanup?.();
    this.socket?.destroy();
    this.#done?.resolve();
  }
}
