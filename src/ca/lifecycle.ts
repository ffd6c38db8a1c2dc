/**
 * The certificate lifecycle around a signer: the ledger's expiry summary for the metrics,
 * revocation, and the built-in CA's CRL, kept as a file and served by the admin endpoint. The CRL
 * is made again on every revocation (also one made by `ca revoke` in another process: the
 * ledger's revocation stamp changes, or one another HA instance made arrives through the replica)
 * and when half its validity has passed, so it never expires while the daemon runs.
 */
import { chmodSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { Settings } from "../config/index.js";
import { loadCa } from "./builtin-ca.js";
import { buildCrl, type Crl } from "./crl.js";
import type { CertificateLedger, ExpirySummary, LedgerEntry, RevocationReason } from "./ledger.js";
import type { LedgerReplica } from "./ledger-replica.js";

export type RevokeTarget = { serial: string } | { identity: string };

export interface CaLifecycle {
  readonly ledger: CertificateLedger;
  /**
   * Revokes here and, under HA, waits for the shared stream's ack; rejects with ReplicationError
   * when it does not come (the revocation stands here and is sent again by the backfill).
   */
  revoke(target: RevokeTarget, reason: RevocationReason): Promise<LedgerEntry[]>;
  /** the current CRL (PEM) of the built-in CA; undefined for cfssl/exec, whose CA publishes its own */
  crl(): Crl | undefined;
  /** cached for a few seconds: a scrape must not count a million rows every time */
  expiry(): ExpirySummary;
  close(): void;
}

const EXPIRY_CACHE_MS = 15_000;

/** Makes the built-in CA's CRL and writes it atomically (a reader never sees half a file). */
export function writeCrl(o: { caDir: string; ledger: CertificateLedger; file?: string; validityMs: number; now?: Date }): Crl {
  const ca = loadCa(o.caDir);
  const now = o.now ?? new Date();
  // the CRL number must grow (RFC 5280 §5.2.3): milliseconds since the epoch do, across processes
  const crl = buildCrl({ key: ca.key, caCertDer: ca.certDer, revoked: o.ledger.revoked(now.getTime()), now, validityMs: o.validityMs, number: BigInt(now.getTime()) });
  if (o.file) {
    const tmp = `${o.file}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    writeFileSync(tmp, crl.pem, { mode: 0o644, flag: "wx" });
    chmodSync(tmp, 0o644);
    renameSync(tmp, o.file);
  }
  return crl;
}

export function openCaLifecycle(s: Pick<Settings, "ca">, ledger: CertificateLedger, onError: (e: Error) => void = () => {}, replica?: LedgerReplica): CaLifecycle {
  const caDir = s.ca.type === "builtin" ? s.ca.dir : undefined;
  let current: Crl | undefined;
  let stamp = "";
  let timer: NodeJS.Timeout | undefined;
  let cached: { at: number; v: ExpirySummary } | undefined;

  const refresh = (force: boolean): Crl | undefined => {
    if (!caDir) return undefined;
    const now = Date.now();
    const st = ledger.revocationStamp();
    const halfGone = current ? now >= current.thisUpdate.getTime() + (current.nextUpdate.getTime() - current.thisUpdate.getTime()) / 2 : true;
    if (!force && current && st === stamp && !halfGone) return current;
    current = writeCrl({ caDir, ledger, file: s.ca.crlFile, validityMs: s.ca.crlValidityMs });
    stamp = st;
    schedule();
    return current;
  };
  const schedule = (): void => {
    if (timer) clearTimeout(timer);
    if (!current) return;
    const due = current.thisUpdate.getTime() + (current.nextUpdate.getTime() - current.thisUpdate.getTime()) / 2 - Date.now();
    // setTimeout holds at most ~24.8 days; a longer wait is re-armed on the way
    timer = setTimeout(() => {
      try {
        refresh(false);
      } catch (e) {
        onError(e as Error);
        schedule();
      }
    }, Math.min(Math.max(due, 1000), 2 ** 31 - 1));
    timer.unref();
  };
  refresh(true);
  // another instance's revocation: this instance's CRL file lists it at once, not at the next request
  replica?.on("applied", (a) => {
    if (a.revoked.length === 0) return;
    try {
      refresh(false);
    } catch (e) {
      onError(e as Error);
    }
  });

  return {
    ledger,
    async revoke(target, reason) {
      const done = ledger.revoke(target, reason);
      if (done.length === 0) return done;
      refresh(true);
      await replica?.publish(done);
      return done;
    },
    crl: () => refresh(false),
    expiry() {
      const now = Date.now();
      if (!cached || now - cached.at > EXPIRY_CACHE_MS) cached = { at: now, v: ledger.expirySummary(now) };
      return cached.v;
    },
    close() {
      if (timer) clearTimeout(timer);
    },
  };
}
