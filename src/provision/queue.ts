/**
 * The one work queue every intake feeds: deduplicated by identity (a node queued or in
 * progress is never queued again), bounded (a flood of events cannot exhaust memory),
 * with a hold list for nodes that just restarted so they are not provisioned twice during
 * their splay, and an age limit so a node that waited too long is dropped and found again.
 */
export type IntakeSource = "event" | "discovery" | "registration" | "manual" | "retry";

export type AddResult = "queued" | "duplicate" | "full" | "held";

interface Entry {
  identity: string;
  source: IntakeSource;
  at: number;
}

export interface WorkItem extends Entry {
  /** ms the node waited in the queue */
  waitedMs: number;
}

export interface QueueOptions {
  maxSize: number;
  /** entries older than this are dropped at take() time; they are found again by intake */
  maxWaitMs: number;
  now?: () => number;
  /** told about each node dropped for waiting longer than maxWaitMs */
  onStale?: (identity: string) => void;
}

const PRUNE_MIN = 10_000;

export class WorkQueue {
  private readonly items: Entry[] = [];
  private head = 0;
  /** queued or in progress */
  private readonly known = new Map<string, "queued" | "busy">();
  private readonly held = new Map<string, number>();
  /** held-list size that triggers the next sweep of expired holds */
  private pruneAt = PRUNE_MIN;
  /** nodes that announced themselves while held: offered again when the hold ends */
  private readonly wanted = new Map<string, IntakeSource>();
  /** nodes to queue again at a time (ms since epoch), a failed flow's retry; intake may come first */
  private readonly retries = new Map<string, number>();
  private readonly takers: Array<(e: Entry | undefined) => void> = [];
  private readonly o: QueueOptions;
  private readonly now: () => number;
  private closed = false;
  private paused = false;
  dropped = 0;

  constructor(o: QueueOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.items.length - this.head;
  }

  get busy(): number {
    return this.known.size - this.size;
  }

  /** queued + in progress */
  get waiting(): number {
    return this.known.size;
  }

  get heldCount(): number {
    return this.held.size;
  }

  has(identity: string): boolean {
    return this.known.has(identity);
  }

  isHeld(identity: string): boolean {
    const until = this.held.get(identity);
    if (until === undefined) return false;
    if (until <= this.now()) {
      this.held.delete(identity);
      return false;
    }
    return true;
  }

  add(identity: string, source: IntakeSource): AddResult {
    if (this.known.has(identity)) return "duplicate";
    if (this.isHeld(identity)) {
      // a startup event during the hold means the node came back (upgraded, or restarted
      // into provisioning mode); a discovery reply only means it has not left yet
      if (source === "event" || source === "registration") this.wanted.set(identity, source);
      return "held";
    }
    if (this.size >= this.o.maxSize) return "full";
    this.retries.delete(identity);
    const e: Entry = { identity, source, at: this.now() };
    const taker = this.paused ? undefined : this.takers.shift();
    if (taker) {
      this.known.set(identity, "busy");
      taker(e);
      return "queued";
    }
    this.known.set(identity, "queued");
    this.items.push(e);
    return "queued";
  }

  /** Resolves with the next fresh entry (marking it busy), or undefined once closed. */
  async take(): Promise<WorkItem | undefined> {
    for (;;) {
      let e: Entry | undefined;
      if (this.size > 0 && !this.paused) {
        e = this.items[this.head++];
        if (this.head > 1024 && this.head * 2 > this.items.length) {
          this.items.splice(0, this.head);
          this.head = 0;
        }
        this.known.set(e.identity, "busy");
      } else {
        if (this.closed) return undefined;
        e = await new Promise<Entry | undefined>((resolve) => this.takers.push(resolve));
        if (!e) return undefined;
      }
      const waitedMs = this.now() - e.at;
      if (waitedMs > this.o.maxWaitMs) {
        this.known.delete(e.identity);
        this.dropped++;
        this.o.onStale?.(e.identity);
        continue;
      }
      return { ...e, waitedMs };
    }
  }

  /** The node is finished; holdMs keeps it from being queued again for that long. */
  done(identity: string, holdMs = 0): void {
    this.known.delete(identity);
    if (holdMs > 0) this.held.set(identity, this.now() + holdMs);
    // Sweeping on every done() once 10k nodes were held (all of them still within their hold)
    // made a 50k-node run spend 10% of its main thread here. Doubling the threshold after each
    // sweep keeps the cost amortised O(1) while expired holds never pile up past twice the live ones.
    if (this.held.size > this.pruneAt) {
      this.pruneHeld();
      this.pruneAt = Math.max(PRUNE_MIN, this.held.size * 2);
    }
  }

  /** an operator released the node: its hold ends now */
  release(identity: string): boolean {
    this.wanted.delete(identity);
    return this.held.delete(identity);
  }

  /**
   * Queues the nodes that asked while held and whose hold has ended (an upgraded node that
   * came back, a node that restarted into provisioning mode again): without this they would
   * wait for the next discovery cycle. Returns how many were queued.
   */
  releaseHeld(): number {
    if (this.wanted.size === 0) return 0;
    let n = 0;
    for (const [id, source] of this.wanted) {
      if (this.isHeld(id)) continue;
      this.wanted.delete(id);
      if (this.add(id, source) === "queued") n++;
    }
    return n;
  }

  /** Queues the node again in `delayMs` (a retry), unless intake queues it first. */
  retryIn(identity: string, delayMs: number): void {
    this.retries.set(identity, this.now() + delayMs);
  }

  /** The node is queued again once its hold ends, without waiting for intake to find it. */
  wantAfterHold(identity: string, source: IntakeSource): void {
    this.wanted.set(identity, source);
  }

  get retrying(): number {
    return this.retries.size;
  }

  /** Queues the nodes whose retry is due, or all of them with `all` (the broker is back). */
  releaseRetries(all = false): number {
    if (this.retries.size === 0) return 0;
    const now = this.now();
    let n = 0;
    for (const [id, at] of this.retries) {
      if (!all && at > now) continue;
      this.retries.delete(id);
      if (this.add(id, "retry") === "queued") n++;
    }
    return n;
  }

  private pruneHeld(): void {
    const now = this.now();
    for (const [id, until] of this.held) if (until <= now) this.held.delete(id);
  }

  /** Drops everything queued (not in progress), e.g. when leadership is lost. */
  clear(): number {
    let n = 0;
    for (let i = this.head; i < this.items.length; i++) {
      const id = this.items[i].identity;
      if (this.known.get(id) === "queued") {
        this.known.delete(id);
        n++;
      }
    }
    this.items.length = 0;
    this.head = 0;
    this.wanted.clear();
    this.retries.clear();
    return n;
  }

  /** While paused nothing is handed out; intake still queues (bounded) so resume loses nothing. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    while (this.takers.length > 0 && this.size > 0) {
      const e = this.items[this.head++];
      this.known.set(e.identity, "busy");
      this.takers.shift()!(e);
    }
  }

  close(): void {
    this.closed = true;
    this.paused = false;
    for (const t of this.takers.splice(0)) t(undefined);
  }
}
