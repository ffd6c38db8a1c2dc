/**
 * Active-active end to end: three daemons (own processes), all active, sharing a 300-node
 * fleet through per-node claims. Mid-run one instance is SIGKILLed (its claims expire and the
 * others take its nodes over), later the nats-server restarts; every node still ends
 * provisioned exactly once, and no node is recorded by two instances.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runScenario } from "./scenario.js";
import { assertExactlyOnce } from "./assertions.js";

const TTL = 3000;
const WORKERS = 4;
/** discovery interval of the test daemons (test/helpers/daemon.ts) */
const DISCOVERY = 2000;

test("active-active: one instance SIGKILLed and nats-server restarted mid-run; every node provisioned once", { timeout: 60_000 }, async () => {
  const r = await runScenario({ mode: "active-active", nodes: 300, ttlMs: TTL, workers: WORKERS });
  const t = r.takeover!;
  console.log(
    `active-active: killed ${r.killed} holding ${t.held} claims (${t.pending} nodes still to provision); taken over after ${t.ms.toFixed(0)} ms (claim TTL ${TTL} ms); ` +
      `configures per instance ${JSON.stringify(r.perInstance)}; unrecorded configures ${r.orphaned.length} (in flight at kill ${r.orphaned.filter((i) => r.inflightAtKill.has(i)).length}, at restart ${r.orphaned.filter((i) => r.inflightAtRestart.has(i)).length}); ` +
      `configuredMoreThanOnce ${r.configuredMoreThanOnce}; run ${(r.elapsedMs / 1000).toFixed(1)} s`,
  );
  // all three shared the work
  for (const [who, n] of Object.entries(r.perInstance)) assert.ok(n > 0, `${who} configured nothing: ${JSON.stringify(r.perInstance)}`);
  assert.equal(r.leadersAtEnd, 0);
  // a node of the victim waits for its claim to expire (one TTL), to be found by the next discovery, and one flow:
  // about TTL + 0.5 s on a quiet machine (printed above); the bound leaves room for a loaded CI machine
  // (17 s seen with a 50k-node benchmark running beside it) while still failing a takeover that never comes
  if (t.pending > 0) assert.ok(t.ms <= TTL + DISCOVERY + 25_000, `takeover ${t.ms}ms`);
  assertExactlyOnce(r, WORKERS);
});
