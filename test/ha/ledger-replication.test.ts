/**
 * The certificate ledger under HA, over a real nats-server with JetStream: every instance keeps
 * its own SQLite ledger (separate files, as on separate hosts) and must hold every certificate
 * any instance issued; a SIGKILLed instance loses none that a node holds; a revocation made on
 * one instance is in the other's CRL; without the stream's acknowledgement no certificate leaves.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import type { EventEmitter } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateLedger, decodeLedgerBatch, normaliseSerial, type LedgerEntry } from "../../src/ca/index.js";
import { CLAIMS_BUCKET, LEDGER_STREAM } from "../../src/ha/index.js";
import { startFleet, type Fleet } from "../../src/sim/index.js";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";
import { CLI } from "../helpers/cli.js";
import { startTestNats } from "../helpers/processes.js";
import type { ConfigFile } from "../../src/config/index.js";
import type { LocalNatsServer } from "../../src/transport/index.js";
import { DaemonGroup, connectTo, makeBucket } from "./helpers.js";

const TOKEN = { CHORIA_PROVISIONER_TOKEN: "s3cret", CHORIA_PROVISIONER_ADMIN_TOKEN: "adm1n" };

function tmpDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "ha-ledger-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** each instance its own ledger and CRL file, as on its own host; the CA is the one they share */
function caFor(caDir: string, dir: string, label: string): NonNullable<ConfigFile["ca"]> {
  return { dir: caDir, workers: 1, ledger: join(dir, `${label}.sqlite`), crl_file: join(dir, `${label}-crl.pem`) };
}

function readLedger(path: string): LedgerEntry[] {
  const l = CertificateLedger.open(path);
  try {
    return l.all().sort((a, b) => a.serial.localeCompare(b.serial));
  } finally {
    l.close();
  }
}

/** "identity serial" of every certificate any node received, a node configured twice counting both */
function receivedCertificates(fleet: Fleet): Set<string> {
  const got = new Set<string>();
  fleet.events.on("configured", (identity: string, serial?: string) => {
    if (serial) got.add(`${identity} ${normaliseSerial(serial)}`);
  });
  return got;
}

/**
 * Resolves once every node left provisioning mode (a normal server, or shut down) or was last
 * deferred by the policy, re-checked on every change of the fleet or of the instances' records.
 */
function settled(fleet: Fleet, outcomes: (identity: string) => string[], sources: Array<[EventEmitter, string]>, timeoutMs: number): Promise<void> {
  const done = (): boolean => fleet.report().nodes.every((n) => n.mode === "server" || n.mode === "shutdown" || outcomes(n.identity).at(-1) === "defer");
  return new Promise((resolve, reject) => {
    const all: Array<[EventEmitter, string]> = [[fleet.events, "update"], ...sources];
    const stop = (): void => {
      clearTimeout(timer);
      for (const [e, name] of all) e.off(name, check);
    };
    const check = (): void => {
      if (!done()) return;
      stop();
      resolve();
    };
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`the fleet did not settle in ${timeoutMs} ms: ${JSON.stringify(fleet.report().totals)}`));
    }, timeoutMs);
    for (const [e, name] of all) e.on(name, check);
    check();
  });
}

/** the stream's last sequence now; 0 when there is no stream (nothing shared) */
async function streamTail(url: string): Promise<number> {
  const nc = await connectTo(url);
  try {
    const jsm = await nc.jetstreamManager();
    return (await jsm.streams.info(LEDGER_STREAM)).state.last_seq;
  } catch (e) {
    if ((e as Error).message === "stream not found") return 0;
    throw e;
  } finally {
    await nc.close();
  }
}

/** a JetStream nats-server and two in-process daemons sharing a CA, each with its own ledger */
async function startPair(t: TestContext, cfg: ConfigFile): Promise<{ srv: LocalNatsServer; dir: string; caDir: string; daemons: TestDaemon[] }> {
  const srv = await startTestNats(t, { jetstream: true });
  const dir = tmpDir(t);
  const caDir = await makeBuiltinCa("ecdsa");
  const daemons: TestDaemon[] = [];
  t.after(() => Promise.all(daemons.map((d) => d.stop(2000))));
  for (const label of ["p1", "p2"]) daemons.push(await startTestDaemon(srv.url, { ...cfg, ca: caFor(caDir, dir, label) }, {}, TOKEN));
  return { srv, dir, caDir, daemons };
}

test("two active-active instances provision a fleet: both ledgers hold exactly the certificates the fleet received, row for row", async (t) => {
  const { srv, dir, daemons } = await startPair(t, { workers: 20, active_active: true });

  const nodes = 120;
  const fleet = await startFleet({ servers: srv.url, nodes, seed: 31, restartDelayMs: 50, token: "s3cret", upgradable: false, faults: { latencyMs: [5, 20] } });
  t.after(() => fleet.stop());
  const received = receivedCertificates(fleet);
  await settled(fleet, (id) => daemons.flatMap((d) => d.records.filter((r) => r.identity === id).map((r) => r.outcome)), daemons.map((d) => [d.provisioner, "record"]), 60_000);
  // every certificate was acknowledged by the stream before it left: once each replica has read
  // the stream to its end, its ledger holds them all
  await Promise.all(daemons.map((d) => d.ledgerReplica?.caughtUp()));

  for (const d of daemons) assert.ok(d.records.some((r) => r.outcome === "configure"), `${d.ledgerReplica?.ledger.path}: both instances issue, or the test proves nothing`);
  const [a, b] = [readLedger(join(dir, "p1.sqlite")), readLedger(join(dir, "p2.sqlite"))];
  const want = [...received].sort();
  assert.ok(want.length >= fleet.report().totals.configured, `certificates received: ${want.length}`);
  assert.deepEqual(a.map((e) => `${e.identity} ${e.serial}`).sort(), want, "p1's ledger is exactly what the fleet received");
  assert.deepEqual(b.map((e) => `${e.identity} ${e.serial}`).sort(), want, "p2's ledger is exactly what the fleet received");
  assert.deepEqual(a, b, "the same rows, fingerprints and all, on both");

  // `ca list` on either instance reads its own file: all of it
  const list = await promisify(execFile)(process.execPath, [...CLI, "ca", "list", "--ledger", join(dir, "p2.sqlite"), "--format", "json"], { encoding: "utf8", maxBuffer: 1 << 24 });
  assert.equal((JSON.parse(list.stdout) as unknown[]).length, want.length);
});

test("SIGKILL of one instance mid-run: every certificate the fleet holds is in the survivor's ledger", async (t) => {
  const srv = await startTestNats(t, { jetstream: true });
  const dir = tmpDir(t);
  const caDir = await makeBuiltinCa("ecdsa");
  // short claims, so the survivor takes over the victim's nodes quickly
  await makeBucket(srv.url, CLAIMS_BUCKET, 3000);
  const group = new DaemonGroup();
  t.after(() => Promise.all(group.members.map((m) => m.kill("SIGKILL"))));
  const [victim, survivor] = ["p1", "p2"].map((l) => group.spawn(srv.url, { workers: 25, active_active: true, ca: caFor(caDir, dir, l) }, l)) as [ReturnType<DaemonGroup["spawn"]>, ReturnType<DaemonGroup["spawn"]>];
  await Promise.all([victim.ready, survivor.ready]);

  const nodes = 300;
  // replies 10-40 ms late, so the kill lands while certificates are in flight
  const fleet = await startFleet({ servers: srv.url, nodes, seed: 32, restartDelayMs: 50, token: "s3cret", upgradable: false, faults: { latencyMs: [10, 40] } });
  t.after(() => fleet.stop());
  const received = receivedCertificates(fleet);
  await fleet.waitFor((r) => r.totals.configured >= nodes / 3, 60_000);
  await victim.kill("SIGKILL");
  const victimConfigured = [...victim.records.values()].flat().filter((o) => o === "configure").length;
  assert.ok(victimConfigured > 0, "the victim had issued certificates, or the test proves nothing");

  // the survivor provisions the rest, the victim's unfinished nodes once their claims expire
  await settled(fleet, (id) => group.outcomes(id), [[group.events, "changed"]], 90_000);
  const tail = await streamTail(srv.url);
  await group.waitFor(() => survivor.ledgerSeq >= tail, 30_000, `the survivor applied the ledger stream up to ${tail}`);

  const ledger = new Map(readLedger(join(dir, "p2.sqlite")).map((e) => [e.serial, e.identity]));
  const missing = [...received].filter((x) => {
    const [identity, serial] = x.split(" ");
    return ledger.get(serial!) !== identity;
  });
  assert.ok(received.size >= fleet.report().totals.configured, `certificates received: ${received.size}`);
  assert.deepEqual(missing, [], "certificates on nodes that the survivor's ledger lacks");
});

test("a revocation on one instance is in the other's ledger, CRL file and /ca/crl", async (t) => {
  const { srv, dir, caDir, daemons } = await startPair(t, { leader_election: true, admin: { listen: "127.0.0.1:0" } });

  const fleet = await startFleet({ servers: srv.url, nodes: 6, seed: 33, restartDelayMs: 50, token: "s3cret", upgradable: false });
  t.after(() => fleet.stop());
  await settled(fleet, (id) => daemons.flatMap((d) => d.records.filter((r) => r.identity === id).map((r) => r.outcome)), daemons.map((d) => [d.provisioner, "record"]), 60_000);
  const issuer = daemons.find((d) => d.records.some((r) => r.outcome === "configure"))!;
  const other = daemons.find((d) => d !== issuer)!;
  const node = issuer.records.find((r) => r.outcome === "configure")!;
  const serial = normaliseSerial(node.certificate!.serial);
  // the standby learns the leader's certificates from the stream, then revokes one of them
  await other.ledgerReplica?.caughtUp();
  const res = await fetch(`${other.admin.url}/ca/revoke`, { method: "POST", headers: { authorization: "Bearer adm1n", "content-type": "application/json" }, body: JSON.stringify({ identity: node.identity, reason: "keyCompromise" }) });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { revoked: [serial] }, "the standby knows the leader's certificate and revokes it");

  // the revocation was acknowledged before the answer: the issuer has it once it has read the stream
  await issuer.ledgerReplica?.caughtUp();
  const status = (await (await fetch(`${issuer.admin.url}/status`)).json()) as { ledger?: { shared: boolean; stream: string; appliedSeq: number; unreplicated: number } };
  assert.equal(status.ledger?.shared, true);
  assert.equal(status.ledger?.stream, LEDGER_STREAM);
  assert.ok((status.ledger?.appliedSeq ?? 0) >= 2, "the issues and the revocation were read");
  assert.equal(status.ledger?.unreplicated, 0);
  const row = readLedger(join(dir, issuer === daemons[0] ? "p1.sqlite" : "p2.sqlite")).find((e) => e.serial === serial);
  assert.equal(row?.revocationReason, "keyCompromise");
  const crlUrl = await (await fetch(`${issuer.admin.url}/ca/crl`)).text();
  const crlFile = join(dir, issuer === daemons[0] ? "p1-crl.pem" : "p2-crl.pem");
  const fromFile = readFileSync(crlFile, "utf8");
  for (const [what, pem] of [["/ca/crl", crlUrl], ["the CRL file", fromFile]] as const) {
    const f = join(dir, "check.pem");
    writeFileSync(f, pem);
    const text = execFileSync("openssl", ["crl", "-in", f, "-CAfile", join(caDir, "ca.pem"), "-noout", "-text"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    assert.match(text, new RegExp(`Serial Number: ${serial.toUpperCase()}`), `${what} of the issuer lists the serial revoked on the other instance`);
    assert.match(text, /Key Compromise/);
  }
});

test("no acknowledgement from the stream: no certificate is handed out; once the stream is back every node is configured, and every certificate is in it", async (t) => {
  const srv = await startTestNats(t, { jetstream: true });
  const dir = tmpDir(t);
  const caDir = await makeBuiltinCa("ecdsa");
  const d = await startTestDaemon(srv.url, { active_active: true, ca: caFor(caDir, dir, "p1") }, {}, TOKEN);
  t.after(() => d.stop(2000));
  const nc = await connectTo(srv.url);
  t.after(() => nc.close());
  const jsm = await nc.jetstreamManager();
  await jsm.streams.delete(LEDGER_STREAM);
  const nodes = 10;
  // every node's certificate signed (and refused by the stream) at least once; the rows are
  // committed locally just after the refusal is reported, hence the next turn
  const allSigned = new Promise<void>((resolve) =>
    d.ledgerReplica!.on("problem", (reason) => {
      if (reason === "publish") setImmediate(() => d.ledgerReplica!.status().unreplicated >= nodes && resolve());
    }),
  );

  const fleet = await startFleet({ servers: srv.url, nodes, seed: 34, restartDelayMs: 50, token: "s3cret", upgradable: false });
  t.after(() => fleet.stop());
  const received = receivedCertificates(fleet);
  let outage = true;
  const handedOut: string[] = [];
  fleet.events.on("configured", (identity: string) => outage && handedOut.push(identity));
  await allSigned;
  // a configure sent right after a sign would be on its way: let it land before the outage ends
  await d.nc.flush();
  await fleet.flush();
  outage = false;
  assert.deepEqual(handedOut, [], "nodes configured with a certificate the stream did not acknowledge");

  await jsm.streams.add({ name: LEDGER_STREAM, subjects: ["choria.provisioner.ledger"] });
  await settled(fleet, (id) => d.records.filter((r) => r.identity === id).map((r) => r.outcome), [[d.provisioner, "record"]], 60_000);
  // the rows signed while the stream was away: the backfill sends them (every 30 s; now here)
  await d.ledgerReplica!.backfill();
  assert.equal(d.ledgerReplica!.status().unreplicated, 0);

  const inStream = new Set<string>();
  for (let seq = 1; seq <= (await jsm.streams.info(LEDGER_STREAM)).state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(LEDGER_STREAM, { seq });
    for (const r of decodeLedgerBatch(m.data).rows) inStream.add(`${r.identity} ${r.serial}`);
  }
  assert.ok(received.size >= fleet.report().totals.configured && received.size > 0);
  assert.deepEqual([...received].filter((x) => !inStream.has(x)), [], "certificates on nodes that the stream lacks");
  const local = new Set(readLedger(join(dir, "p1.sqlite")).map((e) => `${e.identity} ${e.serial}`));
  assert.deepEqual([...inStream].filter((x) => !local.has(x)), [], "the stream and the local ledger hold the same rows");
  assert.equal(local.size, inStream.size);
});
