/** The exactly-once checks shared by the leader and active-active integration tests. */
import assert from "node:assert/strict";
import type { ScenarioResult } from "./scenario.js";

export function assertExactlyOnce(r: ScenarioResult, workers: number): void {
  const configured = r.nodes.filter((n) => n.configureCount > 0);
  for (const id of r.orphaned) {
    const n = r.nodes.find((x) => x.identity === id)!;
    console.log(`  unrecorded configure: ${id} count=${n.configureCount} mode=${n.mode} atKill=${r.inflightAtKill.has(id)} atRestart=${r.inflightAtRestart.has(id)} outcomes=${r.outcomes(id).join(",")}`);
  }
  assert.ok(configured.length > 0);
  for (const n of r.nodes) {
    const recorded = r.outcomes(n.identity).filter((x) => x === "configure").length;
    // no two instances (and no instance twice) recorded provisioning the same node
    assert.ok(recorded <= 1, `${n.identity}: recorded as configured ${recorded} times (${r.outcomes(n.identity).join(",")})`);
    if (r.orphaned.includes(n.identity)) {
      // configured once more than any instance recorded. Two ways, neither about HA: the
      // killed instance sent the configure and died before restarting the node (no instance
      // can know), or the configure's reply was lost while the nats-server restarted and the
      // per-node flow retried the step. Either way the node was in flight at that moment.
      // A node configured exactly once with no record is still provisioned exactly once: the
      // killed instance configured and restarted it and died before writing the record.
      if (n.configureCount > 1) assert.ok(r.inflightAtKill.has(n.identity) || r.inflightAtRestart.has(n.identity), `${n.identity} has an unrecorded configure but was not in flight at the kill or the restart`);
      // count 1: configured once and restarted, only the restart's reply was lost (recorded as an error)
      assert.ok(n.configureCount <= 2, n.identity);
    } else if (n.configureCount > 0) {
      assert.equal(n.configureCount, 1, `${n.identity} configured ${n.configureCount} times`);
    }
  }
  // in flight means held by a worker: at most the workers of the killed instance, plus those of the live ones at the restart
  assert.ok(r.orphaned.length <= workers * 4, `orphaned ${r.orphaned.length}`);
  assert.equal(r.configuredMoreThanOnce, r.nodes.filter((n) => r.orphaned.includes(n.identity) && n.configureCount === 2).length, "every node configured twice is explained above");
  assert.deepEqual(Object.keys(r.violations).filter((k) => k !== "lock_held"), [], `protocol violations: ${JSON.stringify(r.violations)}`);
  assert.equal(r.violations.lock_held ?? 0, 0, "instances share a provisioning identity: no node lock conflicts");
}
