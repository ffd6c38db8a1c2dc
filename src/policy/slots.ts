/**
 * A counting semaphore: at most `size` holders at once, the rest wait in arrival order. The
 * legacy helper uses it so that hundreds of async workers do not fork hundreds of helpers.
 */
export class Slots {
  private used = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`slots: size must be a positive integer, got ${size}`);
  }

  get inUse(): number {
    return this.used;
  }

  /** runs fn once a slot is free and frees the slot when fn settles */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.used >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    else this.used++;
    try {
      return await fn();
    } finally {
      // hand the slot straight to the next waiter, so used stays counted for it
      const next = this.waiting.shift();
      if (next) next();
      else this.used--;
    }
  }
}
