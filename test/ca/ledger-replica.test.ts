/**
 * The replicated ledger's parts: applying rows from the shared log (idempotent, revocations merged
 * the same way on every replica, the cursor in the same transaction), the message codec against
 * bad input, and the replica over a real JetStream stream: a certificate whose publish is not
 * acknowledged is not handed out, and the backfill sends it once the stream is back.
 */
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "nats";
import { CertificateLedger, LedgerReplica, ReplicaStore, ReplicationError, decodeLedgerBatch, encodeLedgerBatch, ledgerBatchId, ledgerEventId, withLedger, type LedgerEntry, type Signer } from "../../src/ca/index.js";
import { LEDGER_STREAM, StreamLog } from "../../src/ha/index.js";
import { CaUnavailableError, type SignedCertificate } from "../../src/types/index.js";
import { initBuiltinCa, openBuiltinCa } from "../../src/ca/index.js";
import { startTestNats } from "../helpers/processes.js";
import { makeCsr } from "./csr-fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "ledger-replica-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const FAR = Date.now() + 86_400_000;
const open = (): CertificateLedger => CertificateLedger.open(join(tmp, `l${n++}.sqlite`));

function entry(serial: string, o: Partial<LedgerEntry> = {}): LedgerEntry {
  return { serial, identity: `${serial}.example.net`, sans: [`${serial}.example.net`], notBefore: 1000, notAfter: FAR, fingerprint: "ab".repeat(32), policyVersion: "p@1", issuedAt: 2000, signer: "builtin", ...o };
}

describe("applying the shared log to a ledger", () => {
  const pair = (): { l: CertificateLedger; st: ReplicaStore; close(): void } => {
    const l = open();
    const st = new ReplicaStore(l.path);
    return { l, st, close: () => (st.close(), l.close()) };
  };

  test("idempotent by serial; the cursor moves with rows written, and is the caller's to save when none was", async () => {
    const { l, st, close } = pair();
    try {
      await l.record(entry("a1"));
      assert.equal(st.unreplicatedCount(), 1, "recorded here, not yet seen in the stream");
      assert.deepEqual(st.apply([entry("a1"), entry("b2")], "S", { incarnation: "S@1", lastSeq: 2 }), { revoked: [], wrote: 2 });
      assert.deepEqual(st.cursor("S"), { incarnation: "S@1", lastSeq: 2 });
      assert.equal(st.unreplicatedCount(), 0, "the echo confirmed a1");
      assert.deepEqual(st.apply([entry("b2"), entry("a1")], "S", { incarnation: "S@1", lastSeq: 4 }), { revoked: [], wrote: 0 }, "rows confirmed already: no write");
      assert.deepEqual(st.cursor("S"), { incarnation: "S@1", lastSeq: 2 });
      st.saveCursor("S", { incarnation: "S@1", lastSeq: 4 });
      assert.deepEqual(st.cursor("S"), { incarnation: "S@1", lastSeq: 4 });
      assert.equal(l.count(), 2);
      assert.deepEqual(l.bySerial("b2"), entry("b2"));
      // recording a certificate the stream brought first keeps the confirmed row
      await l.record(entry("b2"));
      assert.equal(st.unreplicatedCount(), 0);
      await l.record(entry("c3"), { inStream: true });
      assert.equal(st.unreplicatedCount(), 0, "recorded after the stream's ack");
    } finally {
      close();
    }
  });

  test("revocations converge: the earliest wins whatever the order; a revocation made here stays unconfirmed until the stream has it", () => {
    const [x, y, z] = [pair(), pair(), pair()];
    try {
      const early = entry("c3", { revokedAt: 5000, revocationReason: "keyCompromise" });
      const late = entry("c3", { revokedAt: 9000, revocationReason: "superseded" });
      x.st.apply([entry("c3"), early, late], "S", { incarnation: "S@1", lastSeq: 3 });
      assert.deepEqual(y.st.apply([entry("c3"), late], "S", { incarnation: "S@1", lastSeq: 2 }).revoked, ["c3"]);
      assert.deepEqual(y.st.apply([early], "S", { incarnation: "S@1", lastSeq: 3 }).revoked, ["c3"], "an earlier revocation changes it");
      assert.deepEqual(y.st.apply([late], "S", { incarnation: "S@1", lastSeq: 4 }), { revoked: [], wrote: 0 }, "a later one does not");
      for (const { l } of [x, y]) {
        assert.equal(l.bySerial("c3")?.revokedAt, 5000);
        assert.equal(l.bySerial("c3")?.revocationReason, "keyCompromise");
      }

      z.st.apply([entry("d4")], "S", { incarnation: "S@1", lastSeq: 1 });
      z.l.revoke({ serial: "d4" }, "affiliationChanged", 7000);
      assert.equal(z.st.unreplicatedCount(), 1);
      // the stream's copy of the issue comes again: it does not undo the local revocation
      z.st.apply([entry("d4")], "S", { incarnation: "S@1", lastSeq: 2 });
      assert.equal(z.l.bySerial("d4")?.revokedAt, 7000);
      assert.equal(z.st.unreplicatedCount(), 1);
      z.st.apply([entry("d4", { revokedAt: 7000, revocationReason: "affiliationChanged" })], "S", { incarnation: "S@1", lastSeq: 3 });
      assert.equal(z.st.unreplicatedCount(), 0);
    } finally {
      for (const p of [x, y, z]) p.close();
    }
  });
});

describe("the replication message", () => {
  test("round trip; a bad message or a bad row is named, and the good rows of a batch survive a bad one", () => {
    const e = entry("e5", { revokedAt: 3000, revocationReason: "superseded" });
    assert.deepEqual(decodeLedgerBatch(encodeLedgerBatch([entry("e4"), e])), { rows: [entry("e4"), e], invalid: [] });
    assert.equal(ledgerEventId(entry("e5")), "e5");
    assert.equal(ledgerEventId(e), "e5.r3000");
    assert.equal(ledgerBatchId([entry("e4"), e]), ledgerBatchId([entry("e4"), { ...e }]), "the same rows in the same states: the same id");
    assert.notEqual(ledgerBatchId([entry("e4"), e]), ledgerBatchId([entry("e4"), entry("e5")]), "a revocation is a new state");

    const raw = (o: unknown): Uint8Array => Buffer.from(typeof o === "string" ? o : JSON.stringify(o));
    for (const [data, re] of [
      [raw("{not json"), /not JSON/],
      [raw([1]), /not a JSON object/],
      [raw({ v: 2, rows: [] }), /version 2/],
      [raw({ v: 1, rows: {} }), /rows is not a list/],
    ] as const) assert.throws(() => decodeLedgerBatch(data), re);

    const good = JSON.parse(Buffer.from(encodeLedgerBatch([entry("f6")])).toString()).rows[0] as Record<string, unknown>;
    const rows = [
      [7, /a row is not a JSON object/],
      [{ ...good, serial: "XYZ" }, /serial "XYZ" is not lowercase hex/],
      [{ ...good, identity: "" }, /identity is empty/],
      [{ ...good, sans: "a" }, /sans/],
      [{ ...good, notAfter: "soon" }, /notAfter "soon" is not a time/],
      [{ ...good, fingerprint: "ab" }, /SHA-256/],
      [{ ...good, revokedAt: 5, revocationReason: "because" }, /revocationReason "because"/],
    ] as const;
    const d = decodeLedgerBatch(raw({ v: 1, rows: [good, ...rows.map((r) => r[0])] }));
    assert.deepEqual(d.rows, [entry("f6")]);
    assert.deepEqual(d.invalid.map((x) => x.index), [1, 2, 3, 4, 5, 6, 7]);
    rows.forEach(([, re], i) => assert.match(d.invalid[i]!.error, re));
  });
});

describe("the replica over a real JetStream stream", () => {
  test("a certificate the stream does not acknowledge is not handed out; the backfill sends it when the stream is back", async (t) => {
    const srv = await startTestNats(t, { jetstream: true });
    const nc = await connect({ servers: srv.url });
    t.after(() => nc.close());
    const caDir = join(tmp, "ca");
    await initBuiltinCa(caDir);
    const ca = await openBuiltinCa(caDir, { workers: 1 });
    const ledger = open();
    const signer = withLedger(ca as Signer, ledger);
    t.after(() => signer.close());
    const log = await StreamLog.open({ nc, timeoutMs: 1000 });
    const replica = new LedgerReplica(ledger, log, { backfillIntervalMs: 60_000 });
    const problems: string[] = [];
    replica.on("problem", (reason) => problems.push(reason));
    await replica.start();
    t.after(() => replica.close());
    signer.recordThrough(replica);

    const sign = async (id: string): Promise<SignedCertificate> => signer.sign({ identity: id, csrPem: await makeCsr({ cn: id }), profile: { validityDays: 1, sans: [] } });
    await sign("ok.example.net");
    await replica.caughtUp();
    assert.equal(replica.status().unreplicated, 0, "committed as confirmed: the ack came first");

    // the stream goes away: publishes get no ack
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(LEDGER_STREAM);
    await assert.rejects(sign("lost.example.net"), (e: Error) => e instanceof CaUnavailableError && /not in the shared ledger, so not sent/.test(e.message));
    assert.ok(problems.includes("publish"));
    const held = ledger.byIdentity("lost.example.net");
    assert.equal(held.length, 1, "recorded here all the same: every certificate a signer returned is");
    assert.equal(replica.status().unreplicated, 1);
    await assert.rejects(replica.publish(held), ReplicationError);

    // back (an operator made it again): the backfill sends what it lacks and marks it
    await jsm.streams.add({ name: LEDGER_STREAM, subjects: [log.subject] });
    assert.ok((await replica.backfill()) >= 1);
    assert.equal(replica.status().unreplicated, 0);
    const msg = await jsm.streams.getMessage(LEDGER_STREAM, { last_by_subj: log.subject });
    assert.deepEqual(decodeLedgerBatch(msg.data).rows.map((r) => r.identity), ["lost.example.net"]);
  });
});
