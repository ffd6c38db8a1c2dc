/**
 * A fixed pool of sign worker threads. Requests made in the same tick are batched into one
 * message per worker, because at thousands of signs per second the per-message cost of
 * structured cloning and thread wake-ups is a real share of the work.
 */
import { Worker } from "node:worker_threads";
import { workerEntry } from "./worker-entry.js";
import { availableParallelism } from "node:os";
import { CaUnavailableError, CsrRefusedError } from "../types/index.js";
import type { FromWorker, SignTask, SignTaskResult, SignWorkerData, ToWorker } from "./sign-protocol.js";

type Success = Extract<SignTaskResult, { ok: true }>;

interface Pending {
  task: SignTask;
  resolve: (r: Success) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  threadId: number;
  inFlight: Map<number, Pending>;
  stopping: boolean;
  exited: Promise<number>;
}

export interface SignPoolOptions {
  size?: number;
  /** tasks handed to one worker before it reports back; bounds latency and memory */
  maxInFlightPerWorker?: number;
}

// The daemon's event loop (RPC, policy, CSR checks) needs a core of its own; workers beyond the
// rest only compete with it. On the 2-core bench machine one worker instead of two gave 3% more
// nodes/min and 5% less CPU per node.
export function defaultPoolSize(): number {
  return Math.max(1, availableParallelism() - 1);
}

export class SignPool {
  readonly size: number;
  private readonly maxInFlight: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private flushScheduled = false;
  private closed = false;
  private broken: Error | undefined;
  private readonly respawning = new Set<Promise<void>>();
  private idleWaiters: Array<() => void> = [];
  private readonly signedPerThread = new Map<number, number>();

  private constructor(
    private readonly data: SignWorkerData,
    opts: SignPoolOptions,
  ) {
    this.size = opts.size ?? defaultPoolSize();
    if (!Number.isInteger(this.size) || this.size < 1) throw new Error(`worker count must be a positive integer, got ${opts.size}`);
    this.maxInFlight = opts.maxInFlightPerWorker ?? 64;
  }

  /** Starts every worker and waits until each has imported the CA key, so key errors surface here. */
  static async start(data: SignWorkerData, opts: SignPoolOptions = {}): Promise<SignPool> {
    const pool = new SignPool(data, opts);
    const started = await Promise.allSettled(Array.from({ length: pool.size }, () => pool.spawn()));
    for (const r of started) if (r.status === "fulfilled") pool.slots.push(r.value);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
      await pool.terminateAll();
      throw failed.reason;
    }
    return pool;
  }

  /** Thread ids of the live workers. */
  threadIds(): number[] {
    return this.slots.map((s) => s.threadId);
  }

  /** Certificates issued per worker thread id since start. */
  stats(): Record<number, number> {
    return Object.fromEntries(this.signedPerThread);
  }

  run(task: Omit<SignTask, "id">): Promise<Success> {
    if (this.closed) return Promise.reject(new CaUnavailableError("built-in CA is closed"));
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<Success>((resolve, reject) => {
      this.queue.push({ task: { ...task, id: this.nextId++ }, resolve, reject });
      this.scheduleFlush();
    });
  }

  /** Finishes every accepted request, then stops the threads and waits for them to exit. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.respawning);
    if (this.queue.length > 0 || this.slots.some((s) => s.inFlight.size > 0)) {
      await new Promise<void>((r) => this.idleWaiters.push(r));
    }
    // a crash while draining starts a replacement; it must be stopped too
    await Promise.all(this.respawning);
    for (const s of this.slots) {
      s.stopping = true;
      s.worker.postMessage({ type: "stop" } satisfies ToWorker);
    }
    const codes = await Promise.all(this.slots.map((s) => s.exited));
    this.slots.length = 0;
    const bad = codes.filter((c) => c !== 0);
    if (bad.length > 0) throw new Error(`sign workers exited with codes ${bad.join(", ")}`);
  }

  private spawn(): Promise<Slot> {
    return new Promise<Slot>((resolve, reject) => {
      const worker = new Worker(workerEntry("sign-worker"), { workerData: this.data });
      let ready = false;
      let exitResolve!: (code: number) => void;
      const exited = new Promise<number>((r) => (exitResolve = r));
      const slot: Slot = { worker, threadId: worker.threadId, inFlight: new Map(), stopping: false, exited };
      let lastError: Error | undefined;
      worker.on("message", (m: FromWorker) => {
        if (m.type === "ready") {
          ready = true;
          resolve(slot);
        } else this.onResults(slot, m.results);
      });
      worker.on("error", (e) => {
        lastError = e;
      });
      worker.on("exit", (code) => {
        exitResolve(code);
        if (!ready) {
          reject(new CaUnavailableError(`sign worker failed to start: ${lastError?.message ?? `exit code ${code}`}`, { cause: lastError }));
          return;
        }
        if (!slot.stopping) this.onCrash(slot, lastError ?? new Error(`exit code ${code}`));
      });
    });
  }

  // A crashed worker loses only its own batch; the pool replaces it and keeps serving.
  private onCrash(slot: Slot, err: Error): void {
    for (const p of slot.inFlight.values()) p.reject(new CaUnavailableError(`sign worker crashed: ${err.message}`, { cause: err }));
    slot.inFlight.clear();
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    const respawn = this.spawn().then(
      (s) => {
        // pushed even when closing: close() waits for respawns and then stops every slot
        this.slots.push(s);
        this.scheduleFlush();
      },
      (e: Error) => {
        // cannot restart: fail what waits rather than hang it
        if (this.slots.length === 0) {
          this.broken = e;
          for (const p of this.queue.splice(0)) p.reject(e);
          this.notifyIfIdle();
        }
      },
    );
    this.respawning.add(respawn);
    void respawn.finally(() => this.respawning.delete(respawn));
  }

  private onResults(slot: Slot, results: SignTaskResult[]): void {
    for (const r of results) {
      const p = slot.inFlight.get(r.id);
      if (!p) continue;
      slot.inFlight.delete(r.id);
      if (r.ok) {
        this.signedPerThread.set(r.threadId, (this.signedPerThread.get(r.threadId) ?? 0) + 1);
        p.resolve(r);
      } else if (r.error.code) p.reject(new CsrRefusedError(r.error.code, r.error.message));
      else p.reject(Object.assign(new Error(r.error.message), { name: r.error.name }));
    }
    this.flush();
    this.notifyIfIdle();
  }

  private notifyIfIdle(): void {
    if (this.queue.length > 0 || this.slots.some((s) => s.inFlight.size > 0)) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const open = this.slots.filter((s) => s.inFlight.size < this.maxInFlight);
      if (open.length === 0) return;
      const share = Math.ceil(this.queue.length / open.length);
      for (const s of open.sort((a, b) => a.inFlight.size - b.inFlight.size)) {
        const batch = this.queue.splice(0, Math.min(share, this.maxInFlight - s.inFlight.size));
        if (batch.length === 0) break;
        for (const p of batch) s.inFlight.set(p.task.id, p);
        s.worker.postMessage({ type: "sign", tasks: batch.map((p) => p.task) } satisfies ToWorker);
      }
    }
  }

  private async terminateAll(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }
}
