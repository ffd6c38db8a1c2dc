/**
 * Misbehaving nodes: bad and foreign CSRs are refused with a reason and a metric label, nodes
 * that die mid-flow cost a worker seconds not a minute, dropped replies and latency are ridden
 * out by retries, and nodes that come back unprovisioned are provisioned again. The daemon
 * keeps going through all of it.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { startFleet, type Fleet } from "../../src/sim/index.js";
import type { DecisionRecord } from "../../src/types/index.js";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";

const N = 300;
/** a dead node costs at most MAX_TIMEOUTS of these, where its tries would cost 5 (configure) */
const PROVISION_TIMEOUT_MS = 5000;
const MAX_TIMEOUTS = 2;

let srv: LocalNatsServer;
let fleet: Fleet;
let daemon: TestDaemon;

before(async () => {
  srv = await startNatsServer();
  fleet = await startFleet({
    servers: srv.url,
    nodes: N,
    seed: 11,
    restartDelayMs: 50,
    faults: { badCsr: 0.04, wrongCnCsr: 0.04, dieAfterInventory: 0.03, dieAfterGencsr: 0.03, drop: 0.1, dropProbability: 0.3, latencyMs: [5, 60], latency: 0.2, comeBackUnprovisioned: 0.05 },
  });
  daemon = await startTestDaemon(srv.url, { ca: { dir: await makeBuiltinCa() }, rpc: { inventory_timeout: "3s", provision_timeout: `${PROVISION_TIMEOUT_MS}ms`, max_timeouts: MAX_TIMEOUTS, backoff_max: "200ms" } });
});

after(async () => {
  await daemon?.stop(5000);
  await fleet?.stop();
  await srv?.stop();
});

const has = (id: string, f: string) => fleet.faultsOf(id).has(f);

test("every kind of node fault ends in the right record, and healthy nodes are provisioned once", async () => {
  const dying = (id: string) => has(id, "die_after_inventory") || has(id, "die_after_gencsr");
  const badCsr = (id: string) => has(id, "bad_csr") || has(id, "wrong_cn_csr");
  const byId = (records: DecisionRecord[]) => {
    const m = new Map<string, DecisionRecord[]>();
    for (const r of records) m.set(r.identity, [...(m.get(r.identity) ?? []), r]);
    return m;
  };
  const done = (records: DecisionRecord[]) => {
    const m = byId(records);
    const modes = new Map(fleet.report().nodes.map((n) => [n.identity, n.mode]));
    for (const id of fleet.identities) {
      const rs = m.get(id);
      if (!rs) return false;
      const last = rs[rs.length - 1];
      // a node whose restart or shutdown reply was dropped left provisioning mode all the same
      if ((last.outcome === "error" || last.outcome === "gone") && modes.get(id) !== "provisioning") continue;
      if (dying(id)) continue; // one error record is enough
      if (badCsr(id)) {
        if (last.outcome !== "refused" && !["shutdown", "defer"].includes(last.outcome)) return false;
        continue;
      }
      if (has(id, "come_back_unprovisioned") && last.outcome === "configure" && rs.filter((r) => r.outcome === "configure").length < 2) return false;
      if (!["configure", "shutdown", "defer"].includes(last.outcome)) return false;
    }
    return true;
  };
  await daemon.waitFor(done, 90_000, "every node handled");
  const m = byId(daemon.records);

  // the load on the machine, measured in this run: the slowest healthy node's whole flow
  const healthyMaxMs = Math.max(...daemon.records.filter((r) => r.outcome === "configure").map((r) => r.durations.total ?? 0));
  const deadBudgetMs = MAX_TIMEOUTS * PROVISION_TIMEOUT_MS + healthyMaxMs;
  let refusedNotPem = 0;
  let refusedCn = 0;
  for (const id of fleet.identities) {
    const rs = m.get(id)!;
    if (dying(id)) {
      // a dead server is no longer subscribed: the broker says so, at once or after the timeouts of a request it had taken
      const gone = rs.find((r) => r.outcome === "gone" || r.outcome === "error");
      if (gone) assert.ok(gone.durations.total < deadBudgetMs, `a dead node held a worker for ${gone.durations.total}ms: more than ${MAX_TIMEOUTS} timeouts of ${PROVISION_TIMEOUT_MS}ms plus the slowest healthy node (${healthyMaxMs}ms)`);
      continue;
    }
    if (has(id, "bad_csr") && rs.some((r) => r.outcome === "refused")) {
      refusedNotPem++;
      assert.match(rs.find((r) => r.outcome === "refused")!.reason, /CSR refused \((not_pem|malformed)\)/);
    }
    if (has(id, "wrong_cn_csr") && !has(id, "bad_csr") && rs.some((r) => r.outcome === "refused")) {
      refusedCn++;
      assert.match(rs.find((r) => r.outcome === "refused")!.reason, /CSR refused \(cn_mismatch\)/);
    }
  }
  assert.ok(refusedNotPem > 0, "some non-PEM CSRs were refused");
  assert.ok(refusedCn > 0, "some foreign-CN CSRs were refused");

  const report = fleet.report();
  assert.equal(report.totals.violations, 0, JSON.stringify(report.totals.violationsByKind));
  for (const node of report.nodes) {
    if (badCsr(node.identity) || dying(node.identity)) {
      assert.equal(node.configureCount, 0, `${node.identity} with ${node.faults} must never be configured`);
      continue;
    }
    const last = m.get(node.identity)!.at(-1)!;
    if (last.outcome !== "configure") continue;
    const expected = has(node.identity, "come_back_unprovisioned") ? 2 : 1;
    // a dropped configure reply makes us configure again: the node gets the same config twice
    if (has(node.identity, "drop")) assert.ok(node.configureCount >= expected);
    else assert.equal(node.configureCount, expected, `${node.identity} (${node.faults.join(",") || "healthy"}) configured ${node.configureCount} times`);
  }
  assert.ok(report.totals.cameBackUnprovisioned > 0);

  const metrics = await (await fetch(`${daemon.admin.url}/metrics`)).text();
  assert.match(metrics, /choria_provisioner_csr_refusals\{site="default",reason="(not_pem|malformed)"\} [1-9]/);
  assert.match(metrics, /choria_provisioner_csr_refusals\{site="default",reason="cn_mismatch"\} [1-9]/);
  assert.match(metrics, /choria_provisioner_rpc_errors\{site="default",rpc="rpcutil#inventory"\} [1-9]/);
  assert.equal(daemon.provisioner.status().connected, true);
});
