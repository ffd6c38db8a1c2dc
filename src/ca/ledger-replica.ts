/**
 * The ledger HA instances share. Each instance keeps its own SQLite ledger as the index (lookups
 * by identity and expiry stay milliseconds at a million rows); a shared append-only log (a
 * JetStream stream on the daemon's broker, ha/ledger-stream.ts) carries every row to every
 * instance, which applies it to its own file, idempotent by serial.
 *
 * - A certificate is acknowledged by the log, then committed locally, before the signer returns
 *   it: a certificate that leaves the daemon is in the stream (as durable as its replicas) and in
 *   this instance's file. Without the ack it is still committed here (marked unconfirmed), the
 *   sign fails and the node is retried. Rows signed in one turn of the event loop travel as one
 *   message, and their echo from the log costs this instance no write.
 * - A revocation is published the same way before the caller hears it is done.
 * - Rows the log lacks (a failed publish, `ca sign` or `ca revoke` run by hand, a ledger from
 *   before HA, a log made again) are sent by a backfill at start and then periodically.
 * The log is reached through LedgerLog only, so ca/ does not depend on NATS.
 */
import { EventEmitter } from "node:events";
import type { CertificateLedger, LedgerEntry, ReplicationCursor } from "./ledger.js";
import { decodeLedgerBatch, encodeLedgerBatch, ledgerBatchId } from "./ledger-event.js";
import { ReplicaStore } from "./ledger-replica-store.js";
import { TickBatch } from "./tick-batch.js";

type Pending = { entry: LedgerEntry; resolve: () => void; reject: (e: Error) => void };

/** an append-only log every instance reads in order: ha/'s StreamLog */
export interface LedgerLog {
  /** the log's name, the key of this replica's cursor */
  readonly stream: string;
  /** changes when the log is made again (its sequence numbers start over) */
  readonly incarnation: string;
  /** resolves once the log acknowledged the message; a message id seen recently is stored once */
  append(id: string, data: Uint8Array): Promise<void>;
  /** the sequence number of the last message in the log now */
  tail(): Promise<number>;
  /** delivers every message from `fromSeq` on, in order, then new ones as they come */
  follow(fromSeq: number, onMessage: (seq: number, data: Uint8Array) => void): Promise<void>;
  close(): Promise<void>;
}

/** the log did not acknowledge a row: what depends on it (a certificate, a revocation) must not proceed as shared */
export class ReplicationError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = "ReplicationError";
  }
}

export type ReplicationProblem = "publish" | "invalid_message" | "apply";

export interface LedgerApplied {
  /** the last sequence applied */
  lastSeq: number;
  /** rows read in this batch (an instance's own rows come back too) */
  rows: number;
  /** serials whose revocation this batch brought in */
  revoked: string[];
}

export interface LedgerReplicaStatus {
  stream: string;
  appliedSeq: number;
  /** rows of this instance's ledger the stream does not hold yet */
  unreplicated: number;
}

export declare interface LedgerReplica {
  on(event: "applied", listener: (a: LedgerApplied) => void): this;
  /** a message that is not a ledger row, a publish without ack, a local write that failed */
  on(event: "problem", listener: (reason: ReplicationProblem, e: Error, seq?: number) => void): this;
}

export interface LedgerReplicaOptions {
  /** how often rows the stream lacks are sent again; default 30 s */
  backfillIntervalMs?: number;
  /** wait before applying again after the local ledger refused a batch; default 1 s */
  retryMs?: number;
}

const APPLY_BATCH = 200;
const BACKFILL_BATCH = 500;
/** rows per message: ~400 bytes each, well under the broker's 1 MB default max_payload */
const ROWS_PER_MESSAGE = 250;

export class LedgerReplica extends EventEmitter {
  private cursor: ReplicationCursor;
  private queue: Array<{ seq: number; data: Uint8Array }> = [];
  private readonly outbox = new TickBatch<Pending>((batch) => {
    for (let i = 0; i < batch.length; i += ROWS_PER_MESSAGE) void this.sendChunk(batch.slice(i, i + ROWS_PER_MESSAGE));
  });
  private scheduled = false;
  private retry?: NodeJS.Timeout;
  private timer?: NodeJS.Timeout;
  private readonly inFlight = new Set<string>();
  private backfilling?: Promise<number>;
  private closed = false;
  private readonly caughtUpWaiters: Array<{ seq: number; resolve: () => void }> = [];
  private store?: ReplicaStore;
  /** the cursor moved past rows that needed no write, and is not saved yet */
  private cursorUnsaved?: NodeJS.Timeout;

  constructor(
    readonly ledger: CertificateLedger,
    private readonly log: LedgerLog,
    private readonly o: LedgerReplicaOptions = {},
  ) {
    super();
    this.cursor = { incarnation: log.incarnation, lastSeq: 0 };
  }

  /** starts applying the log from where this ledger stopped; the backfill starts once the log's tail at start is applied */
  async start(): Promise<void> {
    const store = (this.store = new ReplicaStore(this.ledger.path));
    const saved = store.cursor(this.log.stream);
    if (saved && saved.incarnation === this.log.incarnation) this.cursor = saved;
    else if (saved) {
      // the stream was made again: it holds none of what this ledger had confirmed, so all of it is sent again
      store.forget(this.log.stream);
    }
    const tail = await this.log.tail();
    await this.log.follow(this.cursor.lastSeq + 1, (seq, data) => this.enqueue(seq, data));
    // rows the stream holds but this file has not marked (a ledger copied from another instance,
    // a revocation both made) are marked by reading the stream, which spares sending them again
    void this.appliedUpTo(tail).then(() => {
      if (this.closed) return;
      void this.backfill();
      this.timer = setInterval(() => void this.backfill(), this.o.backfillIntervalMs ?? 30_000);
      this.timer.unref();
    });
  }

  /** resolves once every message up to `seq` is applied (or the replica closed) */
  appliedUpTo(seq: number): Promise<void> {
    if (this.closed || this.cursor.lastSeq >= seq) return Promise.resolve();
    return new Promise((resolve) => this.caughtUpWaiters.push({ seq, resolve }));
  }

  /** resolves once every message in the log now is applied here */
  async caughtUp(): Promise<void> {
    await this.appliedUpTo(await this.log.tail());
  }

  /**
   * The signer's record: resolves once the log acknowledged the row and it is committed here;
   * rejects with ReplicationError when the log did not (the row is committed here all the same,
   * for the backfill). Rows recorded in one turn of the event loop share a message.
   */
  record(entry: LedgerEntry): Promise<void> {
    return new Promise((resolve, reject) => this.outbox.add({ entry, resolve, reject }));
  }

  private async sendChunk(chunk: Pending[]): Promise<void> {
    let shared: Error | undefined;
    try {
      await this.publish(chunk.map((c) => c.entry));
    } catch (e) {
      shared = e as Error;
    }
    // after the ack, so a row marked confirmed is in the log; committed without it too: every
    // certificate a signer returned is in the ledger, and the backfill shares it later. At once,
    // in this turn: the rows' echo from the log, due any moment, then finds them and writes nothing
    try {
      this.ledger.recordBatchNow(
        chunk.map((c) => c.entry),
        { inStream: !shared },
      );
    } catch (e) {
      const err = new Error(`certificate ledger ${this.ledger.path}: ${(e as Error).message}`);
      for (const c of chunk) c.reject(err);
      return;
    }
    for (const c of chunk) {
      if (shared) c.reject(shared);
      else c.resolve();
    }
  }

  /** sends rows (a revocation made here) to the log; rejects with ReplicationError without every ack */
  async publish(entries: LedgerEntry[]): Promise<void> {
    for (const e of entries) this.inFlight.add(e.serial);
    try {
      const messages: LedgerEntry[][] = [];
      for (let i = 0; i < entries.length; i += ROWS_PER_MESSAGE) messages.push(entries.slice(i, i + ROWS_PER_MESSAGE));
      const acks = await Promise.allSettled(messages.map((rows) => this.log.append(ledgerBatchId(rows), encodeLedgerBatch(rows))));
      const failed = acks.filter((a): a is PromiseRejectedResult => a.status === "rejected");
      if (failed.length === 0) return;
      const err = new ReplicationError(`${entries.length} ledger row(s) not acknowledged by the stream ${this.log.stream}: ${(failed[0]!.reason as Error).message}`);
      this.emit("problem", "publish", err);
      throw err;
    } finally {
      for (const e of entries) this.inFlight.delete(e.serial);
    }
  }

  /**
   * Sends every row the log lacks, except those being published now, and marks them once
   * acknowledged. One pass at a time; a failed publish ends the pass (the next one retries).
   * Returns how many rows were sent.
   */
  backfill(): Promise<number> {
    this.backfilling ??= this.backfillPass().finally(() => (this.backfilling = undefined));
    return this.backfilling;
  }

  private async backfillPass(): Promise<number> {
    let sent = 0;
    let after = "";
    while (!this.closed) {
      const page = this.store!.unreplicated(BACKFILL_BATCH, after);
      if (page.length === 0) break;
      after = page[page.length - 1]!.serial;
      const rows = page.filter((e) => !this.inFlight.has(e.serial));
      try {
        await this.publish(rows);
      } catch {
        break; // counted as a problem by publish
      }
      this.store!.markReplicated(rows);
      sent += rows.length;
    }
    return sent;
  }

  status(): LedgerReplicaStatus {
    return { stream: this.log.stream, appliedSeq: this.cursor.lastSeq, unreplicated: this.store?.unreplicatedCount() ?? 0 };
  }

  private enqueue(seq: number, data: Uint8Array): void {
    this.queue.push({ seq, data });
    if (this.scheduled || this.retry) return;
    this.scheduled = true;
    setImmediate(() => this.apply());
  }

  /** applies what arrived in this turn of the event loop as one transaction; false when the ledger refused it */
  private apply(): boolean {
    this.scheduled = false;
    const batch = this.queue.splice(0, APPLY_BATCH);
    const entries: LedgerEntry[] = [];
    let last = this.cursor.lastSeq;
    for (const m of batch) {
      // an ordered consumer that was re-created can deliver a message again
      if (m.seq <= last) continue;
      last = m.seq;
      try {
        const d = decodeLedgerBatch(m.data);
        entries.push(...d.rows);
        for (const bad of d.invalid) this.emit("problem", "invalid_message", new Error(`row ${bad.index}: ${bad.error}`), m.seq);
      } catch (e) {
        this.emit("problem", "invalid_message", e as Error, m.seq);
      }
    }
    if (last !== this.cursor.lastSeq) {
      const cursor = { incarnation: this.log.incarnation, lastSeq: last };
      let revoked: string[];
      try {
        const a = this.store!.apply(entries, this.log.stream, cursor);
        revoked = a.revoked;
        if (a.wrote === 0) this.saveCursorSoon();
      } catch (e) {
        // nothing was applied (one transaction): keep the batch and try again, in order
        this.queue = batch.concat(this.queue);
        this.emit("problem", "apply", e as Error);
        if (!this.closed) {
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.apply();
          }, this.o.retryMs ?? 1000);
        }
        return false;
      }
      this.cursor = cursor;
      this.emit("applied", { lastSeq: last, rows: entries.length, revoked } satisfies LedgerApplied);
      this.releaseWaiters();
    }
    if (this.queue.length > 0 && !this.scheduled && !this.closed) {
      this.scheduled = true;
      setImmediate(() => this.apply());
    }
    return true;
  }

  /** a batch of rows already here moved the cursor without a write: save it within a second, not per batch */
  private saveCursorSoon(): void {
    if (this.cursorUnsaved || this.closed) return;
    this.cursorUnsaved = setTimeout(() => this.saveCursor(), 1000);
    this.cursorUnsaved.unref();
  }

  private saveCursor(): void {
    if (this.cursorUnsaved) clearTimeout(this.cursorUnsaved);
    this.cursorUnsaved = undefined;
    try {
      this.store?.saveCursor(this.log.stream, this.cursor);
    } catch (e) {
      // only costs re-reading rows that need no write after a restart
      this.emit("problem", "apply", e as Error);
    }
  }

  private releaseWaiters(): void {
    for (let i = this.caughtUpWaiters.length - 1; i >= 0; i--) {
      const w = this.caughtUpWaiters[i]!;
      if (this.closed || this.cursor.lastSeq >= w.seq) {
        this.caughtUpWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** stops following; what already arrived is applied first, so the cursor is as far as it can be */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    await this.log.close();
    try {
      while (this.queue.length > 0 && this.apply());
    } finally {
      this.releaseWaiters();
    }
    await this.backfilling;
    this.saveCursor();
    this.store?.close();
  }
}
