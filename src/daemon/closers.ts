/**
 * What a start has opened so far, so that a failure part-way closes exactly that, newest first.
 * A closer that fails is logged and passed over: the error that stopped the start is the one
 * the caller must see.
 */
export class Closers {
  private readonly list: Array<{ what: string; close: () => Promise<void> | void }> = [];

  constructor(private readonly onError: (what: string, e: Error) => void) {}

  add(what: string, close: () => Promise<void> | void): void {
    this.list.push({ what, close });
  }

  /** closes everything added, newest first, then throws `e` */
  async fail(e: Error): Promise<never> {
    for (const c of this.list.splice(0).reverse()) {
      try {
        await c.close();
      } catch (err) {
        this.onError(c.what, err as Error);
      }
    }
    throw e;
  }
}
