/**
 * Items added in one turn of the event loop, handed over together in the next: the ledger commits
 * them in one transaction (one fsync), the HA replica sends them as one stream message.
 */
export class TickBatch<T> {
  private items: T[] = [];
  private scheduled = false;

  constructor(private readonly run: (items: T[]) => void) {}

  add(item: T): void {
    this.items.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** hands over what waits now, without waiting for the next turn (on close) */
  flush(): void {
    this.scheduled = false;
    const items = this.items;
    this.items = [];
    if (items.length > 0) this.run(items);
  }
}
