/** The certificate ledger on a real SQLite file: recording, lookups, expiry, revocation, a reopen. */
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateLedger, withLedger, type LedgerEntry, type SignedCertificate, type Signer } from "../../src/ca/index.js";
import Database from "better-sqlite3";
import { CaUnavailableError } from "../../src/types/index.js";
import { initBuiltinCa, openBuiltinCa } from "../../src/ca/index.js";
import { makeCsr } from "./csr-fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "ledger-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const DAY = 86_400_000;

function entry(i: number, o: Partial<LedgerEntry> = {}): LedgerEntry {
  const now = Date.now();
  return { serial: `a${i.toString(16).padStart(4, "0")}`, identity: `n${i % 10}.example.net`, sans: [`n${i % 10}.example.net`], notBefore: now - 1000, notAfter: now + i * DAY + DAY / 2, fingerprint: "f".repeat(64), policyVersion: "p@1", issuedAt: now + i, signer: "builtin", ...o };
}

describe("CertificateLedger", () => {
  test("records in batches, and finds by serial, identity and expiry after a reopen", async () => {
    const path = join(tmp, "a", "ledger.sqlite");
    const l = CertificateLedger.open(path);
    await Promise.all(Array.from({ length: 40 }, (_, i) => l.record(entry(i))));
    await l.close();
    const r = CertificateLedger.open(path);
    try {
      assert.equal(r.count(), 40);
      assert.deepEqual(r.bySerial("A0003")?.identity, "n3.example.net", "serials compare without case");
      assert.deepEqual(r.byIdentity("n3.example.net").map((e) => e.serial), ["a0003", "a000d", "a0017", "a0021"]);
      const soon = r.expiring(Date.now() + 7 * DAY);
      assert.deepEqual(soon.map((e) => e.serial), ["a0000", "a0001", "a0002", "a0003", "a0004", "a0005", "a0006"], "notAfter within 7 days, soonest first");
      const s = r.expirySummary();
      assert.equal(s.within7d, 7);
      assert.equal(s.within30d, 30);
      assert.equal(s.earliestNotAfter, r.bySerial("a0000")!.notAfter);
    } finally {
      await r.close();
    }
  });

  test("revocation by serial and by identity: once, with reason; revoked certificates leave the expiry counts", async () => {
    const l = CertificateLedger.open(join(tmp, "b.sqlite"));
    try {
      await Promise.all(Array.from({ length: 20 }, (_, i) => l.record(entry(i))));
      const stamp = l.revocationStamp();
      assert.deepEqual(l.revoke({ serial: "a0000" }, "keyCompromise", 1000).map((e) => e.serial), ["a0000"]);
      assert.notEqual(l.revocationStamp(), stamp);
      assert.deepEqual(l.revoke({ serial: "a0000" }, "superseded").length, 0, "already revoked");
      assert.deepEqual(l.revoke({ identity: "n1.example.net" }, "cessationOfOperation").map((e) => e.serial), ["a0001", "a000b"]);
      assert.equal(l.bySerial("a0000")?.revocationReason, "keyCompromise");
      assert.equal(l.bySerial("a0000")?.revokedAt, 1000);
      assert.deepEqual(l.revoked().map((e) => e.serial).sort(), ["a0000", "a0001", "a000b"]);
      assert.equal(l.expirySummary().within7d, 5, "a0000 and a0001 are revoked");
    } finally {
      await l.close();
    }
  });

  test("the built-in CA through withLedger: the ledger holds the certificate before sign() returns, with SANs, validity and policy", async () => {
    const dir = join(tmp, "ca");
    await initBuiltinCa(dir);
    const ledger = CertificateLedger.open(join(dir, "ledger.sqlite"));
    const ca = withLedger(await openBuiltinCa(dir, { workers: 1 }), ledger);
    try {
      const csrPem = await makeCsr({ cn: "node1.example.net" });
      const c = await ca.sign({ identity: "node1.example.net", csrPem, profile: { validityDays: 30, sans: ["10.0.0.5"] }, policyVersion: "lab@3" });
      const e = ledger.bySerial(c.serial);
      assert.ok(e, "recorded by the time sign() resolved");
      assert.deepEqual({ identity: e.identity, sans: e.sans, fp: e.fingerprint, notAfter: new Date(e.notAfter).toISOString(), policy: e.policyVersion, signer: e.signer }, { identity: "node1.example.net", sans: ["node1.example.net", "10.0.0.5"], fp: c.fingerprint, notAfter: c.notAfter, policy: "lab@3", signer: "builtin" });
    } finally {
      await ca.close();
    }
  });

  test("a certificate the ledger cannot record is not handed out: CaUnavailableError, so the node is deferred", async () => {
    const ledger = CertificateLedger.open(join(tmp, "closed.sqlite"));
    await ledger.close();
    const dir = join(tmp, "ca2");
    await initBuiltinCa(dir);
    const inner = await openBuiltinCa(dir, { workers: 1 });
    const signer: Signer = withLedger(inner, ledger);
    const csrPem = await makeCsr({ cn: "node2.example.net" });
    let got: SignedCertificate | undefined;
    await assert.rejects(
      signer.sign({ identity: "node2.example.net", csrPem, profile: { validityDays: 1, sans: [] } }).then((c) => (got = c)),
      (e: Error) => e instanceof CaUnavailableError && /not recorded, so not sent/.test(e.message),
    );
    assert.equal(got, undefined);
    await inner.close();
  });

  test("renewalsDue: each node's latest certificate, not revoked, expiring within the window and issued before it began, soonest first", () => {
    const l = CertificateLedger.open(join(tmp, "due", "ledger.sqlite"));
    try {
      const now = Date.now();
      const H = 3_600_000;
      const row = (serial: string, identity: string, issuedAgo: number, expiresIn: number): LedgerEntry => ({ serial, identity, sans: [identity], notBefore: now - issuedAgo, notAfter: now + expiresIn, fingerprint: serial.padEnd(64, "0"), policyVersion: "p@1", issuedAt: now - issuedAgo, signer: "builtin" });
      // a 30-day window
      const rows = [
        row("a1", "due-late.example.net", 300 * DAY, 20 * DAY),
        row("b1", "due-soon.example.net", 300 * DAY, 2 * DAY),
        // replaced by a newer certificate outside the window: not due
        row("c1", "replaced.example.net", 300 * DAY, 3 * DAY),
        row("c2", "replaced.example.net", 1 * DAY, 364 * DAY),
        // a newer certificate inside the window replaces the old one as the node's certificate
        row("d1", "twice.example.net", 300 * DAY, 1 * DAY),
        row("d2", "twice.example.net", 40 * DAY, 25 * DAY),
        row("e1", "revoked.example.net", 300 * DAY, 4 * DAY),
        row("f1", "expired.example.net", 365 * DAY, -H),
        row("g1", "far.example.net", 10 * DAY, 100 * DAY),
        // issued already inside the window (a 7-day certificate): its successor would be due at once
        row("h1", "short.example.net", 1 * DAY, 6 * DAY),
      ];
      for (const r of rows) l.recordNow(r);
      // recorded out of order (as a replica may apply them): the older certificate arrives last
      l.recordNow(row("i2", "late.example.net", 1 * DAY, 364 * DAY));
      l.recordNow(row("i1", "late.example.net", 300 * DAY, 5 * DAY));
      // and through another connection, as the HA replica and the writer thread write
      const other = new Database(l.path);
      other.prepare("INSERT INTO certificates (serial, identity, sans, not_before, not_after, fingerprint, policy_version, issued_at, signer) VALUES ('a2', 'due-late.example.net', '[]', 0, ?, 'f', 'p@1', ?, 'builtin')").run(now + 300 * DAY, now - DAY);
      other.close();
      rows.push(row("j1", "replicated.example.net", 300 * DAY, 6 * DAY));
      l.recordNow(rows.at(-1)!);
      l.revoke({ serial: "e1" }, "keyCompromise");
      const due = l.renewalsDue({ now, windowMs: 30 * DAY, limit: 100 });
      assert.deepEqual(due.map((d) => [d.identity, d.serial]), [["due-soon.example.net", "b1"], ["replicated.example.net", "j1"], ["twice.example.net", "d2"]]);
      assert.deepEqual(due[0], { identity: "due-soon.example.net", serial: "b1", fingerprint: "b1".padEnd(64, "0"), notAfter: now + 2 * DAY, issuedAt: now - 300 * DAY });
      assert.deepEqual(l.renewalsDue({ now, windowMs: 30 * DAY, limit: 1 }).map((d) => d.serial), ["b1"], "limit, soonest first");
      assert.deepEqual(l.renewalsDue({ now, windowMs: 30 * DAY, from: now + 3 * DAY, limit: 10 }).map((d) => d.serial), ["j1", "d2"], "from: a later notAfter on");
      assert.deepEqual(l.renewalsDue({ now, windowMs: DAY, limit: 100 }), [], "nothing within a day but the expired one");
    } finally {
      l.close();
    }
  });

});

describe("the ledger's writer thread", () => {
  test("a commit the database refuses rejects exactly the rows it held; the next rows commit", async () => {
    const l = CertificateLedger.open(join(tmp, "refuse.sqlite"));
    const admin = new Database(l.path);
    try {
      await l.record(entry(1));
      admin.exec("CREATE TRIGGER refuse BEFORE INSERT ON certificates BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
      const refused = await Promise.allSettled([l.record(entry(2)), l.record(entry(3))]);
      assert.deepEqual(refused.map((r) => r.status), ["rejected", "rejected"]);
      assert.match(String((refused[0] as PromiseRejectedResult).reason), /refuse\.sqlite: refused by the test/);
      admin.exec("DROP TRIGGER refuse");
      await Promise.all([l.record(entry(4)), l.record(entry(5))]);
      assert.deepEqual(l.all().map((e) => e.serial), ["a0001", "a0004", "a0005"]);
    } finally {
      admin.close();
      await l.close();
    }
  });

  test("rows recorded while a commit is on the disk go together in the next transaction, and close() waits for them", async () => {
    const l = CertificateLedger.open(join(tmp, "group.sqlite"));
    const first = l.record(entry(0));
    // these arrive in later turns while the first commit is out; they must not be lost or reordered into failure
    const later: Array<Promise<void>> = [];
    for (let i = 1; i <= 50; i++) {
      await new Promise((r) => setImmediate(r));
      later.push(l.record(entry(i)));
    }
    await l.close();
    await Promise.all([first, ...later]);
    const r = CertificateLedger.open(l.path);
    try {
      assert.equal(r.count(), 51);
    } finally {
      await r.close();
    }
    await assert.rejects(l.record(entry(99)), /is closed/);
  });
});
