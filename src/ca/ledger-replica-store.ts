/**
 * The replica's side of a ledger file (ledger-replica.ts): applying rows read from the shared log,
 * the cursor, and the rows the log lacks. Its own connection to the same SQLite file, with
 * synchronous=NORMAL: a replicated row lost in a power cut is read again from the log, since the
 * cursor rolls back with it, so these commits skip the fsync the ledger's own rows need (and the
 * ledger's connection keeps FULL without switching back and forth).
 */
import Database from "better-sqlite3";
import { toEntry, type LedgerEntry, type ReplicationCursor, type Row } from "./ledger.js";

export interface Applied {
  /** serials whose revocation these rows brought in */
  revoked: string[];
  /** rows written (0 when every row was here already, as an instance's own rows coming back are) */
  wrote: number;
}

export class ReplicaStore {
  private readonly db: Database.Database;
  private readonly upsert: Database.Statement;
  private readonly state: Database.Statement;
  private readonly cursorStmt: Database.Statement;

  /** `path` is a ledger CertificateLedger.open made (the schema is its) */
  constructor(readonly path: string) {
    this.db = new Database(path, { fileMustExist: true });
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    // makes the rows not yet in the stream cheap to find; only a replicated ledger has it (in a
    // single instance every row stays unconfirmed, and the index would be a copy of the table)
    this.db.exec("CREATE INDEX IF NOT EXISTS certificates_unreplicated ON certificates (serial) WHERE in_stream = 0");
    this.upsert = this.db.prepare(
      `INSERT INTO certificates (serial, identity, sans, not_before, not_after, fingerprint, policy_version, issued_at, signer, revoked_at, revocation_reason, in_stream)
       VALUES (@serial, @identity, @sans, @notBefore, @notAfter, @fingerprint, @policyVersion, @issuedAt, @signer, @revokedAt, @revocationReason, 1)
       ON CONFLICT (serial) DO UPDATE SET
         in_stream = CASE WHEN revoked_at IS NULL OR (excluded.revoked_at IS NOT NULL AND excluded.revoked_at <= revoked_at) THEN 1 ELSE in_stream END,
         revocation_reason = CASE WHEN excluded.revoked_at IS NOT NULL AND (revoked_at IS NULL OR excluded.revoked_at < revoked_at) THEN excluded.revocation_reason ELSE revocation_reason END,
         revoked_at = CASE WHEN excluded.revoked_at IS NOT NULL AND (revoked_at IS NULL OR excluded.revoked_at < revoked_at) THEN excluded.revoked_at ELSE revoked_at END`,
    );
    this.state = this.db.prepare("SELECT in_stream AS s, revoked_at AS t FROM certificates WHERE serial = ?");
    this.cursorStmt = this.db.prepare("INSERT INTO replication_cursor (log, incarnation, last_seq) VALUES (?, ?, ?) ON CONFLICT (log) DO UPDATE SET incarnation = excluded.incarnation, last_seq = excluded.last_seq");
  }

  /**
   * Applies rows read from the shared log, idempotent by serial, in one transaction. A row already
   * here keeps its facts; a revocation is merged, the earliest one winning, so every replica
   * converges whatever order two instances' revocations of one certificate arrive in. A row is
   * marked in the stream unless it holds a revocation the stream does not have yet (made here,
   * still to be published). The cursor moves in the same transaction when a row was written;
   * when none was, it is the caller's to save later (`saveCursor`): reading those rows again
   * after a crash writes nothing either.
   */
  apply(entries: LedgerEntry[], log: string, cursor: ReplicationCursor): Applied {
    return this.db.transaction(() => {
      const out: Applied = { revoked: [], wrote: 0 };
      for (const e of entries) {
        const have = this.state.get(e.serial) as { s: number; t: number | null } | undefined;
        const revoked = e.revokedAt !== undefined && (!have || have.t === null || e.revokedAt < have.t);
        // most rows come back to the instance that wrote them, confirmed already: a point lookup
        // costs a tenth of even a no-op upsert
        if (have && have.s === 1 && !revoked) continue;
        this.upsert.run({ ...e, sans: JSON.stringify(e.sans), revokedAt: e.revokedAt ?? null, revocationReason: e.revokedAt === undefined ? null : (e.revocationReason ?? "unspecified") });
        out.wrote++;
        if (revoked) out.revoked.push(e.serial);
      }
      if (out.wrote > 0) this.cursorStmt.run(log, cursor.incarnation, cursor.lastSeq);
      return out;
    })();
  }

  saveCursor(log: string, cursor: ReplicationCursor): void {
    this.cursorStmt.run(log, cursor.incarnation, cursor.lastSeq);
  }

  cursor(log: string): ReplicationCursor | undefined {
    const r = this.db.prepare("SELECT incarnation, last_seq FROM replication_cursor WHERE log = ?").get(log) as { incarnation: string; last_seq: number } | undefined;
    return r ? { incarnation: r.incarnation, lastSeq: r.last_seq } : undefined;
  }

  /** the log this ledger followed is gone: nothing it confirmed is in the new one, and its cursor means nothing */
  forget(log: string): void {
    this.db.transaction(() => {
      this.db.prepare("UPDATE certificates SET in_stream = 0 WHERE in_stream = 1").run();
      this.db.prepare("DELETE FROM replication_cursor WHERE log = ?").run(log);
    })();
  }

  /** rows whose current state the stream does not hold yet, in serial order after `after` */
  unreplicated(limit: number, after = ""): LedgerEntry[] {
    return (this.db.prepare("SELECT * FROM certificates WHERE in_stream = 0 AND serial > ? ORDER BY serial LIMIT ?").all(after, limit) as Row[]).map(toEntry);
  }

  unreplicatedCount(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM certificates WHERE in_stream = 0").get() as { n: number }).n;
  }

  /** the stream acknowledged these rows in the state given (a revocation made since stays unconfirmed) */
  markReplicated(entries: LedgerEntry[]): void {
    const upd = this.db.prepare("UPDATE certificates SET in_stream = 1 WHERE serial = ? AND revoked_at IS ?");
    this.db.transaction(() => {
      for (const e of entries) upd.run(e.serial, e.revokedAt ?? null);
    })();
  }

  close(): void {
    this.db.close();
  }
}
