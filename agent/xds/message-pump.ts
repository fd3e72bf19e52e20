import type { Readable, Writable } from 'node:stream';

export interface MessagePumpOptions {
  /**
   * Bytes handed to the sink and not yet flushed by it, above which the source is paused even if the sink
   * would still accept more (its own limit counts messages, not bytes).
   */
  readonly maxBufferedBytes: number;
  /** Called with each message as it is forwarded (counting). */
  readonly onMessage?: (message: Buffer) => void;
}

/**
 * Forwards messages from one gRPC stream to another, in order and with flow control: when the sink cannot
 * take more (its write returns false, or more than `maxBufferedBytes` wait to be flushed), the source is
 * paused until the sink drains. A paused source stops asking gRPC for messages, so HTTP/2 flow control
 * pushes back on the sender instead of the agent buffering without bound. Ends are not forwarded: the
 * caller decides how each side closes.
 */
export class MessagePump {
  readonly #source: Readable;
  readonly #sink: Writable;
  readonly #options: MessagePumpOptions;
  #bufferedBytes = 0;
  #paused = false;
  #stopped = false;
  #forwarded = 0;
  readonly #onData = (message: Buffer) => this.#forward(message);
  readonly #onDrain = () => this.#maybeResume();

  constructor(source: Readable, sink: Writable, options: MessagePumpOptions) {
    this.#source = source;
    this.#sink = sink;
    this.#options = options;
  }

  /** Messages forwarded so far. */
  get forwarded(): number {
    return this.#forwarded;
  }

  /** Bytes written to the sink that it has not flushed yet. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Whether the source is held back because the sink is full. */
  get paused(): boolean {
    return this.#paused;
  }

  start(): void {
    this.#sink.on('drain', this.#onDrain);
    this.#source.on('data', this.#onData);
  }

  /** Detaches from both streams; messages still in the source stay there. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#source.off('data', this.#onData);
    this.#sink.off('drain', this.#onDrain);
  }

  #forward(message: Buffer): void {
    if (this.#stopped || this.#sink.destroyed || this.#sink.writableEnded) return;
    this.#forwarded += 1;
    this.#options.onMessage?.(message);
    const size = message.length;
    this.#bufferedBytes += size;
    const accepted = this.#sink.write(message, () => {
      this.#bufferedBytes -= size;
      this.#maybeResume();
    });
    if (!accepted || this.#bufferedBytes > this.#options.maxBufferedBytes) {
      this.#paused = true;
      this.#source.pause();
    }
  }

  #maybeResume(): void {
    if (!this.#paused || this.#stopped) return;
    if (this.#sink.writableNeedDrain || this.#bufferedBytes > this.#options.maxBufferedBytes) return;
    this.#paused = false;
    this.#source.resume();
  }
}
