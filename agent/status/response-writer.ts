import type { ServerResponse } from 'node:http';
import type { OutputPiece } from './metrics-merge.ts';

/** Large enough that a 10 MB scrape takes a few dozen socket writes rather than hundreds. */
const slotBytes = 256 * 1024;

/**
 * Writes merge output into the scraper's response through a few reused buffers: pieces are copied into a
 * free buffer (they may be views of a source's read buffer, reused right after), the buffer is written,
 * and it returns to the free list once the socket took it. The list grows only while writes are in flight,
 * which the callers bound by pausing their sources when {@link write} returns false.
 */
export class ResponseWriter {
  readonly #response: ServerResponse;
  readonly #free: Buffer[] = [];
  #slot: Buffer | undefined;
  #used = 0;
  #flowing = true;
  #gone = false;
  #waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(response: ServerResponse) {
    this.#response = response;
    response.on('drain', () => {
      this.#flowing = true;
      for (const waiter of this.#waiters.splice(0)) waiter.resolve();
    });
    response.once('close', () => {
      if (response.writableFinished) return;
      this.#gone = true;
      for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error('the scraper went away'));
    });
  }

  /**
   * Copies the pieces out; a buffer is written when full. False when the scraper is behind (wait for
   * {@link drained}).
   */
  write(pieces: readonly OutputPiece[]): boolean {
    if (this.#gone) return false;
    for (const piece of pieces) {
      if (typeof piece === 'string') this.#copyText(piece);
      else this.#copyBytes(piece);
    }
    return this.#flowing;
  }

  /** Writes what is buffered and resolves once the response took it; rejects when the scraper went away. */
  drained(): Promise<void> {
    this.#send();
    if (this.#gone) return Promise.reject(new Error('the scraper went away'));
    if (this.#flowing) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #copyBytes(bytes: Buffer): void {
    let offset = 0;
    while (offset < bytes.length) {
      const slot = this.#currentSlot();
      const copied = bytes.copy(slot, this.#used, offset);
      this.#used += copied;
      offset += copied;
      if (this.#used === slot.length) this.#send();
    }
  }

  #copyText(text: string): void {
    if (text.length === 0) return;
    const length = Buffer.byteLength(text);
    if (length > slotBytes) {
      // Rare (a long run of rewritten lines): written as it is.
      this.#send();
      if (!this.#response.write(text)) this.#flowing = false;
      return;
    }
    if (this.#slot !== undefined && this.#used + length > this.#slot.length) this.#send();
    const slot = this.#currentSlot();
    this.#used += slot.write(text, this.#used, 'utf8');
  }

  #currentSlot(): Buffer {
    this.#slot ??= this.#free.pop() ?? Buffer.allocUnsafeSlow(slotBytes);
    return this.#slot;
  }

  #send(): void {
    const slot = this.#slot;
    if (slot === undefined || this.#used === 0) return;
    const used = this.#used;
    this.#slot = undefined;
    this.#used = 0;
    const accepted = this.#response.write(slot.subarray(0, used), () => this.#free.push(slot));
    if (!accepted) this.#flowing = false;
  }
}
