/**
 * The certificate ledger: every certificate a signer returned, in a local SQLite database (WAL,
 * synchronous=FULL: a committed row survives a crash of the process or the machine). Rows are
 * committed in batches, one transaction per event-loop turn, and a caller learns its row is
 * durable only after the commit: the daemon sends no certificate before that.
 * Under HA the file is also each instance's copy of the replicated ledger (ledger-replica.ts):
 * `in_stream` says whether a row's current state is in the shared stream, and the replication
 * cursor is committed in the same transaction as the rows it applied.
 * Why SQLite, and what JetStream adds: docs/ca.md, "The certificate ledger".
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

export interface LedgerEntry {
  /** lowercase hex, no leading zero bytes */
  serial: string;
  identity: string;
  sans: string[];
  /** epoch ms */
  notBefore: number;
  notAfter: number;
  /** sha256 of the certificate DER, lowercase hex */
  fingerprint: string;
  /** the policy that decided the certificate ("name@version"), "" when signed by hand */
  policyVersion: string;
  /** epoch ms when the signer returned it */
  issuedAt: number;
  /** builtin, cfssl, exec, cli */
  signer: string;
  revokedAt?: number;
  revocationReason?: string;
}

export interface ExpirySummary {
  within7d: number;
  within30d: number;
  /** the earliest notAfter of a certificate not yet expired and not revoked, epoch ms */
  earliestNotAfter?: number;
}

/** RFC 5280 §5.3.1 reason codes that make sense for a provisioner; the names are the CLI's */
export const REVOCATION_REASONS = ["unspecified", "keyCompromise", "caCompromise", "affiliationChanged", "superseded", "cessationOfOperation"] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

interface Row {
  serial: string;
  identity: string;
  sans: string;
  not_before: number;
  not_after: number;
  fingerprint: string;
  policy_version: string;
  issued_at: number;
  signer: string;
  revoked_at: number | null;
  revocation_reason: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS certificates (
  serial TEXT PRIMARY KEY,
  identity TEXT NOT NULL,
  sans TEXT NOT NULL,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  fingerprint TEXT NOT NULL,
  policy_version TEXT NOT NULL,
  issued_at INTEGER NOT NULL,
  signer TEXT NOT NULL,
  revoked_at INTEGER,
  revocation_reason TEXT,
  in_stream INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS certificates_identity ON certificates (identity, issued_at);
-- (not_after, revoked_at) covers the expiry counts: no table lookup per row (a partial index on
-- not_after alone made the 30-day count of a 1M-row ledger take seconds)
CREATE INDEX IF NOT EXISTS certificates_expiry ON certificates (not_after, revoked_at);
CREATE INDEX IF NOT EXISTS certificates_revoked ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS replication_cursor (
  log TEXT PRIMARY KEY,
  incarnation TEXT NOT NULL,
  last_seq INTEGER NOT NULL
);
`;

/** a ledger made before replication existed gains the column; ADD COLUMN with a default rewrites nothing */
function migrate(db: Database.Database): void {
  const cols = db.prepare("SELECT name FROM pragma_table_info('certificates')").all() as Array<{ name: string }>;
  if (!cols.some((c) => c.name === "in_stream")) db.exec("ALTER TABLE certificates ADD COLUMN in_stream INTEGER NOT NULL DEFAULT 0");
}

/** where a replica stands in a shared log: the log's incarnation (a recreated log starts again at 1) and the last sequence applied */
export interface ReplicationCursor {
  incarnation: string;
  lastSeq: number;
}

function toEntry(r: Row): LedgerEntry {
  const e: LedgerEntry = {
    serial: r.serial,
    identity: r.identity,
    sans: JSON.parse(r.sans) as string[],
    notBefore: r.not_before,
    notAfter: r.not_after,
    fingerprint: r.fingerprint,
    policyVersion: r.policy_version,
    issuedAt: r.issued_at,
    signer: r.signer,
  };
  if (r.revoked_at !== null) {
    e.revokedAt = r.revoked_at;
    e.revocationReason = r.revocation_reason ?? "unspecified";
  }
  return e;
}

const DAY_MS = 86_400_000;

export class CertificateLedger {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly insertMany: (rows: LedgerEntry[]) => void;
  private readonly sql: { upsert: Database.Statement; revokedAt: Database.Statement; moveCursor: Database.Statement };
  private pending: Array<{ entry: LedgerEntry; resolve: () => void; reject: (e: Error) => void }> = [];
  private scheduled = false;

  private constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    // FULL fsyncs the WAL at every commit: a row reported durable survives power loss too
    this.db.pragma("synchronous = FULL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(SCHEMA);
    migrate(this.db);
    // a serial already present keeps its row: recording the same certificate again must not undo
    // a revocation, nor mark a row that replication already confirmed as unconfirmed
    this.insert = this.db.prepare(
      `INSERT INTO certificates (serial, identity, sans, not_before, not_after, fingerprint, policy_version, issued_at, signer)
       VALUES (@serial, @identity, @sans, @notBefore, @notAfter, @fingerprint, @policyVersion, @issuedAt, @signer)
       ON CONFLICT (serial) DO NOTHING`,
    );
    this.sql = {
      upsert: this.db.prepare(
        `INSERT INTO certificates (serial, identity, sans, not_before, not_after, fingerprint, policy_version, issued_at, signer, revoked_at, revocation_reason, in_stream)
         VALUES (@serial, @identity, @sans, @notBefore, @notAfter, @fingerprint, @policyVersion, @issuedAt, @signer, @revokedAt, @revocationReason, 1)
         ON CONFLICT (serial) DO UPDATE SET
           in_stream = CASE WHEN revoked_at IS NULL OR (excluded.revoked_at IS NOT NULL AND excluded.revoked_at <= revoked_at) THEN 1 ELSE in_stream END,
           revocation_reason = CASE WHEN excluded.revoked_at IS NOT NULL AND (revoked_at IS NULL OR excluded.revoked_at < revoked_at) THEN excluded.revocation_reason ELSE revocation_reason END,
           revoked_at = CASE WHEN excluded.revoked_at IS NOT NULL AND (revoked_at IS NULL OR excluded.revoked_at < revoked_at) THEN excluded.revoked_at ELSE revoked_at END`,
      ),
      revokedAt: this.db.prepare("SELECT revoked_at AS t FROM certificates WHERE serial = ?"),
      moveCursor: this.db.prepare("INSERT INTO replication_cursor (log, incarnation, last_seq) VALUES (?, ?, ?) ON CONFLICT (log) DO UPDATE SET incarnation = excluded.incarnation, last_seq = excluded.last_seq"),
    };
    this.insertMany = this.db.transaction((rows: LedgerEntry[]) => {
      for (const r of rows) this.insert.run({ ...r, sans: JSON.stringify(r.sans) });
    });
  }

  static open(path: string): CertificateLedger {
    try {
      return new CertificateLedger(path);
    } catch (e) {
      throw new Error(`certificate ledger ${path} could not be opened: ${(e as Error).message}`);
    }
  }

  /**
   * Resolves once the entry is committed. Entries recorded in the same turn of the event loop
   * share one transaction (one fsync), which keeps the CA's throughput.
   */
  record(entry: LedgerEntry): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ entry, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    try {
      this.insertMany(batch.map((b) => b.entry));
    } catch (e) {
      const err = new Error(`certificate ledger ${this.path}: ${(e as Error).message}`);
      for (const b of batch) b.reject(err);
      return;
    }
    for (const b of batch) b.resolve();
  }

  /** a single entry, committed before it returns (the CLI's path) */
  recordNow(entry: LedgerEntry): void {
    this.insertMany([entry]);
  }

  bySerial(serial: string): LedgerEntry | undefined {
    const r = this.db.prepare("SELECT * FROM certificates WHERE serial = ?").get(normaliseSerial(serial)) as Row | undefined;
    return r ? toEntry(r) : undefined;
  }

  byIdentity(identity: string): LedgerEntry[] {
    return (this.db.prepare("SELECT * FROM certificates WHERE identity = ? ORDER BY issued_at").all(identity) as Row[]).map(toEntry);
  }

  /** certificates not revoked whose notAfter is in [from, until), soonest first */
  expiring(until: number, opts: { from?: number; limit?: number } = {}): LedgerEntry[] {
    const rows = this.db
      .prepare("SELECT * FROM certificates WHERE revoked_at IS NULL AND not_after >= ? AND not_after < ? ORDER BY not_after LIMIT ?")
      .all(opts.from ?? Date.now(), until, opts.limit ?? -1) as Row[];
    return rows.map(toEntry);
  }

  all(limit = -1): LedgerEntry[] {
    return (this.db.prepare("SELECT * FROM certificates ORDER BY issued_at LIMIT ?").all(limit) as Row[]).map(toEntry);
  }

  count(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM certificates").get() as { n: number }).n;
  }

  /** counts over the not_after index only; the metrics call this periodically */
  expirySummary(now = Date.now()): ExpirySummary {
    const q = this.db.prepare("SELECT count(*) AS n FROM certificates WHERE revoked_at IS NULL AND not_after >= ? AND not_after < ?");
    const within = (days: number) => (q.get(now, now + days * DAY_MS) as { n: number }).n;
    const first = this.db.prepare("SELECT min(not_after) AS t FROM certificates WHERE revoked_at IS NULL AND not_after >= ?").get(now) as { t: number | null };
    return { within7d: within(7), within30d: within(30), ...(first.t !== null ? { earliestNotAfter: first.t } : {}) };
  }

  /** marks certificates revoked; returns those newly revoked (already revoked ones are left as they were) */
  revoke(target: { serial: string } | { identity: string }, reason: RevocationReason, at = Date.now()): LedgerEntry[] {
    const tx = this.db.transaction(() => {
      const rows = ("serial" in target
        ? this.db.prepare("SELECT * FROM certificates WHERE serial = ? AND revoked_at IS NULL").all(normaliseSerial(target.serial))
        : this.db.prepare("SELECT * FROM certificates WHERE identity = ? AND revoked_at IS NULL").all(target.identity)) as Row[];
      const upd = this.db.prepare("UPDATE certificates SET revoked_at = ?, revocation_reason = ?, in_stream = 0 WHERE serial = ?");
      for (const r of rows) upd.run(at, reason, r.serial);
      return rows.map((r) => ({ ...toEntry(r), revokedAt: at, revocationReason: reason }));
    });
    return tx();
  }

  /** revoked certificates not yet expired (what a CRL must list) */
  revoked(now = Date.now()): LedgerEntry[] {
    return (this.db.prepare("SELECT * FROM certificates WHERE revoked_at IS NOT NULL AND not_after >= ? ORDER BY revoked_at").all(now) as Row[]).map(toEntry);
  }

  /** changes whenever a certificate is revoked (by this process, another on the same file, or replication) */
  revocationStamp(): string {
    // the sum too: replication can move a revocation to an earlier time without changing the count or the latest
    const r = this.db.prepare("SELECT count(*) AS n, max(revoked_at) AS t, total(revoked_at) AS s FROM certificates WHERE revoked_at IS NOT NULL").get() as { n: number; t: number | null; s: number };
    return `${r.n}:${r.t ?? 0}:${r.s}`;
  }

  /**
   * Applies rows read from the shared log, idempotent by serial, and moves the cursor in the same
   * transaction (so a crash re-reads exactly what was not applied). A row already here keeps its
   * facts; a revocation is merged, the earliest one winning, so every replica converges whatever
   * order two instances' revocations of one certificate arrive in. A row is marked in the stream
   * unless it holds a revocation the stream does not have yet (made here, still to be published).
   * Returns the serials whose revocation changed.
   */
  applyReplicated(entries: LedgerEntry[], log: string, cursor: ReplicationCursor): string[] {
    const tx = this.db.transaction(() => {
      const changed: string[] = [];
      for (const e of entries) {
        const before = e.revokedAt === undefined ? undefined : ((this.sql.revokedAt.get(e.serial) as { t: number | null } | undefined)?.t ?? null);
        this.sql.upsert.run({ ...e, sans: JSON.stringify(e.sans), revokedAt: e.revokedAt ?? null, revocationReason: e.revokedAt === undefined ? null : (e.revocationReason ?? "unspecified") });
        if (e.revokedAt !== undefined && (before === null || (before !== undefined && e.revokedAt < before))) changed.push(e.serial);
      }
      this.sql.moveCursor.run(log, cursor.incarnation, cursor.lastSeq);
      return changed;
    });
    // a replicated row lost in a power cut is read again from the log (the cursor rolls back with
    // it), so these commits skip the fsync the ledger's own rows need
    this.db.pragma("synchronous = NORMAL");
    try {
      return tx();
    } finally {
      this.db.pragma("synchronous = FULL");
    }
  }

  replicationCursor(log: string): ReplicationCursor | undefined {
    const r = this.db.prepare("SELECT incarnation, last_seq FROM replication_cursor WHERE log = ?").get(log) as { incarnation: string; last_seq: number } | undefined;
    return r ? { incarnation: r.incarnation, lastSeq: r.last_seq } : undefined;
  }

  /**
   * Makes the rows not yet in the stream cheap to find. Only a replicated ledger needs it: in a
   * single instance every row stays unconfirmed, and the index would be a copy of the table.
   */
  trackReplication(): void {
    this.db.exec("CREATE INDEX IF NOT EXISTS certificates_unreplicated ON certificates (serial) WHERE in_stream = 0");
  }

  /** the log this ledger followed is gone: nothing it confirmed is in the new one, and its cursor means nothing */
  forgetReplication(log: string): void {
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
    if (this.pending.length) this.flush();
    this.db.close();
  }
}

export function normaliseSerial(s: string): string {
  return s.trim().toLowerCase().replace(/:/g, "").replace(/^(00)+(?=.)/, "");
}
