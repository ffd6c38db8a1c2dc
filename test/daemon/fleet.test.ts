/**
 * The main job end to end: a real nats-server, a 2,000-node simulated fleet, the daemon with
 * the shipped policies and the built-in CA. Every node must end provisioned exactly once with
 * exactly the configuration `policy eval` gives for its recorded inventory.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { SSL_DIR, startFleet, type Fleet } from "../../src/sim/index.js";
import { inventoryFromFile, loadPolicySet } from "../../src/policy/index.js";
import type { DecisionRecord } from "../../src/types/index.js";
import { REPO, fleetHandled, startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";

const N = 2000;
let srv: LocalNatsServer;
let fleet: Fleet;
let daemon: TestDaemon;
let caDir: string;
let work: string;

function latest(records: DecisionRecord[]): Map<string, DecisionRecord> {
  const m = new Map<string, DecisionRecord>();
  for (const r of records) m.set(r.identity, r);
  return m;
}

/** every node has a final outcome; upgraded nodes came back and were decided again */
function settled(records: DecisionRecord[], n: number): boolean {
  const m = latest(records);
  if (m.size < n) return false;
  for (const r of m.values()) if (!["configure", "shutdown", "defer"].includes(r.outcome)) return false;
  return true;
}

before(async () => {
  srv = await startNatsServer();
  caDir = await makeBuiltinCa("ecdsa");
  work = mkdtempSync(join(tmpdir(), "cp-fleet-"));
  fleet = await startFleet({ servers: srv.url, nodes: N, seed: 7, restartDelayMs: 50, token: "s3cret" });
  daemon = await startTestDaemon(srv.url, { ca: { dir: caDir }, audit: { file: join(work, "audit.jsonl") }, record: join(work, "inventories"), workers: 100 }, {}, { CHORIA_PROVISIONER_TOKEN: "s3cret" });
});

after(async () => {
  await daemon?.stop(5000);
  await fleet?.stop();
  await srv?.stop();
});

test(`a ${N}-node fleet is provisioned exactly once, each node with the configuration policy eval gives`, async () => {
  await daemon.waitFor((r) => settled(r, N) || fleetHandled(r, fleet), 120_000, "every node settled");
  // the decision that counts is the latest one; an error after it (a restart reply lost while
  // the node did restart) does not change what the node was given
  const final = latest(daemon.records.filter((r) => r.outcome !== "error" && r.outcome !== "gone"));
  const configured = [...final.values()].filter((r) => r.outcome === "configure").length;
  // restarted nodes leave provisioning mode after their splay
  const report = await fleet.waitFor((r) => r.totals.provisioned >= configured, 30_000);
  assert.equal(report.totals.violations, 0, `protocol violations: ${JSON.stringify(report.totals.violationsByKind)}`);
  assert.equal(report.totals.configuredMoreThanOnce, 0);

  const policy = await loadPolicySet({ policiesDir: join(REPO, "policies"), rulesDir: join(REPO, "rules") });
  const outcomes: Record<string, number> = {};
  for (const node of report.nodes) {
    const rec = final.get(node.identity)!;
    outcomes[rec.outcome] = (outcomes[rec.outcome] ?? 0) + 1;
    const recorded = inventoryFromFile(join(work, "inventories", `${node.identity}.json`));
    // the node's gencsr reported its ssl directory: policies see it as csr.ssldir
    assert.equal(recorded.csr?.ssldir, SSL_DIR, `${node.identity}: csr.ssldir`);
    const expected = await policy.evaluate(recorded);
    assert.equal(rec.outcome, expected.outcome, `${node.identity}: daemon ${rec.outcome}, policy eval ${expected.outcome}`);
    assert.equal(rec.policy?.hash, policy.ref.hash);
    if (rec.outcome === "configure") {
      assert.equal(node.configureCount, 1, `${node.identity} configured ${node.configureCount} times`);
      assert.equal(node.provisioned, true);
      assert.deepEqual(node.configuration, expected.configuration, `${node.identity}: configuration differs from policy eval`);
      assert.equal(node.configuration!["plugin.choria.server.provision"], "false");
      assert.ok(node.certificate, `${node.identity} has no certificate`);
      assert.equal(node.certificate.subject.includes(node.identity), true, `certificate subject ${node.certificate.subject}`);
      assert.match(rec.certificate?.serial ?? "", /^[0-9a-f]+$/);
      const norm = (x: string) => x.toLowerCase().replace(/^0+/, "");
      assert.equal(norm(node.certificate.serial), norm(rec.certificate!.serial), "the audit record names the certificate the node got");
    } else {
      assert.equal(node.configureCount, 0, `${node.identity} (${rec.outcome}) must not be configured`);
    }
  }
  assert.ok(outcomes.configure > N * 0.8, JSON.stringify(outcomes));
  assert.ok((outcomes.shutdown ?? 0) > 0 && (outcomes.defer ?? 0) > 0, `the fleet exercises shutdown and defer: ${JSON.stringify(outcomes)}`);
  assert.equal(report.totals.shutdown, outcomes.shutdown);

  // the audit log has one line per record and one per configure request (written before it was
  // sent, naming the record's flow and the certificate that went with it), secrets redacted
  const audit = readFileSync(join(work, "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const sent = audit.filter((l) => l.kind === "configuring");
  assert.equal(audit.length - sent.length, daemon.records.length);
  const configureRecords = daemon.records.filter((r) => r.outcome === "configure");
  assert.equal(sent.length, configureRecords.length);
  for (const r of configureRecords) {
    const l = sent.find((x) => x.identity === r.identity);
    assert.deepEqual([l?.attempt, l?.decision.time, l?.certificate?.serial], [1, r.time, r.certificate?.serial], r.identity);
    assert.equal(r.configures, 1);
  }
  assert.ok(!readFileSync(join(work, "audit.jsonl"), "utf8").includes("s3cret"), "the provisioning token never reaches the audit log");

  // metrics speak the reference's language
  const metrics = await (await fetch(`${daemon.admin.url}/metrics`)).text();
  const provisioned = Number(/^choria_provisioner_provisioned\{site="default"\} (\d+)/m.exec(metrics)?.[1]);
  assert.equal(provisioned, outcomes.configure);
  // policy_decisions counts evaluations, one per record the policy decided, not nodes
  const decided = [...metrics.matchAll(/^choria_provisioner_policy_decisions\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  assert.equal(decided, daemon.records.filter((r) => r.policy).length);
  const status = (await (await fetch(`${daemon.admin.url}/status`)).json()) as { policy: { hash: string }; counts: Record<string, number>; records: Record<string, number> };
  assert.equal(status.policy.hash, policy.ref.hash);
  // counts are nodes (each by its latest outcome), records are decision records
  const byLatest: Record<string, number> = {};
  for (const r of latest(daemon.records).values()) byLatest[r.outcome] = (byLatest[r.outcome] ?? 0) + 1;
  assert.deepEqual(status.counts, byLatest);
  assert.equal(Object.values(status.counts).reduce((a, b) => a + b, 0), latest(daemon.records).size);
  assert.equal(Object.values(status.records).reduce((a, b) => a + b, 0), daemon.records.length);
});
