/**
 * Event-driven waiting for tests: whoever owns the state calls notify() on every change, and
 * until() resolves the first time the predicate holds (checked at once and on each change), or
 * rejects after the timeout with whatever the caller says about the state then.
 */
export class Waiters {
  private readonly waiting = new Set<() => void>();

  notify(): void {
    for (const w of [...this.waiting]) w();
  }

  until<T>(holds: () => boolean, value: () => T, timeoutMs: number, timedOut: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        if (!holds()) return;
        clearTimeout(t);
        this.waiting.delete(check);
        resolve(value());
      };
      const t = setTimeout(() => {
        this.waiting.delete(check);
        reject(timedOut());
      }, timeoutMs);
      this.waiting.add(check);
      check();
    });
  }
}
