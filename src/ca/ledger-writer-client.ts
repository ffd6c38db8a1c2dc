/**
 * The main thread's side of the ledger's writer thread (ledger-writer.ts). One transaction is in
 * the thread at a time; rows handed over meanwhile wait and go together in the next one, so a
 * slow disk means bigger transactions, not a longer queue of them.
 */
import { Worker } from "node:worker_threads";
import { workerEntry } from "./worker-entry.js";

export interface ToLedgerWriter {
  id: number;
  rows: Array<Record<string, unknown>>;
}

export interface FromLedgerWriter {
  id: number;
  error?: string;
}

interface Waiting {
  rows: Array<Record<string, unknown>>;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class LedgerWriter {
  private readonly worker: Worker;
  private nextId = 1;
  private inFlight?: { id: number; batch: Waiting[] };
  private queued: Waiting[] = [];
  private failure?: Error;
  private readonly exited: Promise<void>;
  /** close()'s wait for the thread to go idle */
  private idle?: () => void;

  constructor(path: string) {
    this.worker = new Worker(workerEntry("ledger-writer"), { workerData: { path } });
    this.worker.on("message", (m: FromLedgerWriter) => this.done(m));
    this.worker.on("error", (e) => this.fail(new Error(`ledger writer thread failed: ${e.message}`)));
    this.exited = new Promise((resolve) =>
      this.worker.once("exit", (code) => {
        this.fail(new Error(`ledger writer thread exited (${code})`));
        resolve();
      }),
    );
  }

  /** the thread is gone (it died, or close() ran): make another for further rows */
  get broken(): boolean {
    return this.failure !== undefined;
  }

  /** resolves once the rows are committed; rejects when the transaction or the thread failed */
  write(rows: Array<Record<string, unknown>>): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.queued.push({ rows, resolve, reject });
      this.send();
    });
  }

  private send(): void {
    if (this.inFlight || this.queued.length === 0 || this.failure) return;
    const batch = this.queued;
    this.queued = [];
    const id = this.nextId++;
    this.inFlight = { id, batch };
    const msg: ToLedgerWriter = { id, rows: batch.length === 1 ? batch[0]!.rows : batch.flatMap((w) => w.rows) };
    this.worker.postMessage(msg);
  }

  private done(m: FromLedgerWriter): void {
    const f = this.inFlight;
    if (!f || f.id !== m.id) return;
    this.inFlight = undefined;
    const err = m.error !== undefined ? new Error(m.error) : undefined;
    for (const w of f.batch) {
      if (err) w.reject(err);
      else w.resolve();
    }
    this.send();
    if (!this.inFlight) this.idle?.();
  }

  // a thread that died fails what it held and everything after: the signer defers those nodes
  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    const lost = [...(this.inFlight?.batch ?? []), ...this.queued];
    this.inFlight = undefined;
    this.queued = [];
    for (const w of lost) w.reject(e);
    this.idle?.();
  }

  /** after the rows handed over so far are committed or failed */
  async close(): Promise<void> {
    if (this.inFlight || this.queued.length) await new Promise<void>((resolve) => (this.idle = resolve));
    this.idle = undefined;
    if (!this.failure) {
      this.failure = new Error("ledger writer closed");
      await this.worker.terminate();
      await this.exited;
    }
  }
}
