import type { Clock, Timer } from '../../agent/clock.ts';

interface PendingTimer {
  readonly due: number;
  readonly sequence: number;
  readonly callback: () => void;
  cancelled: boolean;
}

/** A clock that only moves when the test moves it; timers fire in due order. */
export class ManualClock implements Clock {
  #now: number;
  #sequence = 0;
  #timers: PendingTimer[] = [];

  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, delayMilliseconds: number): Timer {
    const timer: PendingTimer = {
      due: this.#now + Math.max(0, delayMilliseconds),
      sequence: this.#sequence++,
      callback,
      cancelled: false,
    };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Delays (from now) of the timers still pending, soonest first. */
  get pendingDelays(): number[] {
    return this.#pending().map((timer) => timer.due - this.#now);
  }

  /** Moves time forward, firing every timer that falls due on the way. */
  advance(milliseconds: number): void {
    const target = this.#now + milliseconds;
    for (;;) {
      const next = this.#pending()[0];
      if (!next || next.due > target) break;
      this.#fire(next);
    }
    this.#now = target;
  }

  /** Jumps to the soonest pending timer and fires it; false when none is pending. */
  fireNext(): boolean {
    const next = this.#pending()[0];
    if (!next) return false;
    this.#fire(next);
    return true;
  }

  #fire(timer: PendingTimer): void {
    this.#now = Math.max(this.#now, timer.due);
    timer.cancelled = true;
    timer.callback();
  }

  #pending(): PendingTimer[] {
    this.#timers = this.#timers.filter((timer) => !timer.cancelled);
    return [...this.#timers].sort((a, b) => a.due - b.due || a.sequence - b.sequence);
  }
}
