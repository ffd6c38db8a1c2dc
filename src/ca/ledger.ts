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
import type { DueCertificate, RenewalQuery, RenewalSource } from "../types/index.js";
import { TickBatch } from "./tick-batch.js";
import { LedgerWriter } from "./ledger-writer-client.js";

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

/** a row as SQLite returns it */
export interface Row {
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

export const INSERT_CERTIFICATE = `INSERT INTO certificates (serial, identity, sans, not_before, not_after, fingerprint, policy_version, issued_at, signer, in_stream)
  VALUES (@serial, @identity, @sans, @notBefore, @notAfter, @fingerprint, @policyVersion, @issuedAt, @signer, @inStream)
  ON CONFLICT (serial) DO NOTHING`;

export function insertParams(entry: LedgerEntry, inStream: boolean): Record<string, unknown> {
  return { ...entry, sans: JSON.stringify(entry.sans), inStream: inStream ? 1 : 0 };
}

/** WAL, and FULL: every commit fsyncs the WAL, so a row reported durable survives power loss too */
export function ledgerPragmas(db: Database.Database): void {
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
}

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

export function toEntry(r: Row): LedgerEntry {
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

interface PendingRow {
  entry: LedgerEntry;
  inStream: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class CertificateLedger implements RenewalSource {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly insertMany: (rows: Array<{ entry: LedgerEntry; inStream: boolean }>) => void;
  private readonly pending = new TickBatch<PendingRow>((batch) => this.commit(batch));
  /** the signer's commits, made on a thread of their own; undefined until the first record() */
  private writer?: LedgerWriter;
  private closed = false;

  private constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new Database(path);
    ledgerPragmas(this.db);
    this.db.exec(SCHEMA);
    migrate(this.db);
    // a serial already present keeps its row: recording the same certificate again must not undo
    // a revocation, nor mark a row that replication already confirmed as unconfirmed
    this.insert = this.db.prepare(INSERT_CERTIFICATE);
    this.insertMany = this.db.transaction((rows: Array<{ entry: LedgerEntry; inStream: boolean }>) => {
      for (const r of rows) this.insert.run(insertParams(r.entry, r.inStream));
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
   * share one transaction (one fsync), which keeps the CA's throughput. `inStream`: the shared
   * stream acknowledged the row already (the HA replica records after the ack).
   */
  record(entry: LedgerEntry, o: { inStream?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.add({ entry, inStream: o.inStream ?? false, resolve, reject });
    });
  }

  // The commit's fsync took milliseconds of the main thread per batch (about 6% of the daemon's
  // main thread in a 10,000-node bench run); the writer thread waits for the disk instead, and
  // the rows recorded meanwhile go into its next transaction.
  private commit(batch: PendingRow[]): void {
    if (this.closed) {
      const err = new Error(`certificate ledger ${this.path} is closed`);
      for (const b of batch) b.reject(err);
      return;
    }
    // a writer thread that died failed its rows (those nodes are retried); the next rows get a new one
    if (!this.writer || this.writer.broken) this.writer = new LedgerWriter(this.path);
    this.writer.write(batch.map((b) => insertParams(b.entry, b.inStream))).then(
      () => {
        for (const b of batch) b.resolve();
      },
      (e: Error) => {
        const err = new Error(`certificate ledger ${this.path}: ${e.message}`);
        for (const b of batch) b.reject(err);
      },
    );
  }

  /** a single entry, committed before it returns (the CLI's path) */
  recordNow(entry: LedgerEntry): void {
    this.insertMany([{ entry, inStream: false }]);
  }

  /** entries already gathered into a batch (the HA replica's, after the stream's ack): one transaction, committed before it returns */
  recordBatchNow(entries: LedgerEntry[], o: { inStream: boolean }): void {
    this.insertMany(entries.map((entry) => ({ entry, inStream: o.inStream })));
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

  /**
   * Nodes due for renewal: each identity's latest certificate (by issue time), when it is not
   * revoked, its notAfter is in [max(now, from), now + window) and it was issued before the window
   * began for it, soonest first. The expiry index finds the window; a probe of the identity index
   * rules out each certificate a newer one replaced (about 20 us a row: the caller's `from` keeps
   * a renewal pass from stepping over a past wave's old certificates again).
   */
  renewalsDue(q: RenewalQuery): DueCertificate[] {
    const rows = this.db
      .prepare(
        `SELECT c.identity, c.serial, c.fingerprint, c.not_after, c.issued_at FROM certificates c
         WHERE c.revoked_at IS NULL AND c.not_after >= ? AND c.not_after < ? AND c.not_after - c.issued_at > ?
           AND NOT EXISTS (SELECT 1 FROM certificates n WHERE n.identity = c.identity AND n.issued_at > c.issued_at)
         ORDER BY c.not_after LIMIT ?`,
      )
      .all(Math.max(q.now, q.from ?? 0), q.now + q.windowMs, q.windowMs, q.limit) as Array<Pick<Row, "identity" | "serial" | "fingerprint" | "not_after" | "issued_at">>;
    return rows.map((r) => ({ identity: r.identity, serial: r.serial, fingerprint: r.fingerprint, notAfter: r.not_after, issuedAt: r.issued_at }));
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

  /** after every row recorded so far is committed (or failed) */
  async close(): Promise<void> {
    this.pending.flush();
    this.closed = true;
    await this.writer?.close();
    this.db.close();
  }
}

export function normaliseSerial(s: string): string {
  return s.trim().toLowerCase().replace(/:/g, "").replace(/^(00)+(?=.)/, "");
}
