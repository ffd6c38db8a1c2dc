/**
 * Leader election end to end: three daemons (own processes), one leader, a 300-node fleet.
 * Mid-run the leader is SIGKILLed, later the nats-server restarts; every node still ends
 * provisioned exactly once and the failover time stays within a bound derived from the TTL.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runScenario } from "./scenario.js";
import { assertExactlyOnce } from "./assertions.js";

const TTL = 2000;
const WORKERS = 4;
/** campaign interval and stand-down defaults for a 2 s bucket (elector.ts) */
const STAND_DOWN = 1000;

test("leader mode: leader SIGKILLed and nats-server restarted mid-run; every node provisioned once", { timeout: 60_000 }, async () => {
  const r = await runScenario({ mode: "leader", nodes: 300, ttlMs: TTL, workers: WORKERS });
  console.log(
    `leader mode: killed ${r.killed}; failover ${r.failoverMs?.toFixed(0)} ms (TTL ${TTL} ms); configures per instance ${JSON.stringify(r.perInstance)}; leaderships ${r.leaderChanges}, most at once ${r.maxConcurrentLeaders}; ` +
      `unrecorded configures ${r.orphaned.length} (in flight at kill ${r.orphaned.filter((i) => r.inflightAtKill.has(i)).length}, at restart ${r.orphaned.filter((i) => r.inflightAtRestart.has(i)).length}); configuredMoreThanOnce ${r.configuredMoreThanOnce}; run ${(r.elapsedMs / 1000).toFixed(1)} s`,
  );
  // the key outlives the kill by at most one TTL; the survivor campaigns right after the
  // expiry it saw coming, then waits the stand-down; 1 s for expiry timers and process scheduling
  assert.ok(r.failoverMs! <= TTL + STAND_DOWN + 3000, `failover ${r.failoverMs}ms`);
  assert.equal(r.leadersAtEnd, 1);
  // never two leaders at once, over the whole run (the restart may move leadership: a 2 s
  // TTL is shorter than the clients' reconnect after a broker restart)
  assert.equal(r.maxConcurrentLeaders, 1);
  assert.ok(r.perInstance[r.killed] > 0);
  const busy = Object.values(r.perInstance).filter((n) => n > 0).length;
  assert.ok(busy >= 2 && busy <= r.leaderChanges, `${JSON.stringify(r.perInstance)} with ${r.leaderChanges} leaderships`);
  assertExactlyOnce(r, WORKERS);
});
