/**
 * A node whose process restarts while it is being provisioned announces itself with a new
 * startup event: its old flow talks to a process that is gone, so it is abandoned and the node
 * starts again at once, not after the old flow's timeouts and retries.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startNatsServer } from "../../src/transport/index.js";
import { startFleet } from "../../src/sim/index.js";
import { makeBuiltinCa as makeCa } from "../helpers/ca.js";
import { fleetHandled, latestRecords, startTestDaemon } from "../helpers/daemon.js";

const N = 20;

test("nodes that restart mid-flow are back in service within 5 s of their new startup event", async () => {
  const srv = await startNatsServer();
  // the flow's timeouts at their defaults, and discovery far away: only the startup events can help
  const d = await startTestDaemon(srv.url, { ca: { dir: await makeCa() }, discovery: { interval: "60s", at_start: false }, rpc: { inventory_timeout: "4s", provision_timeout: "22s", max_timeouts: 2, backoff_max: "5s" } });
  // every reply takes 300 ms, so each node is mid-gencsr for a while when it crashes
  const fleet = await startFleet({ servers: srv.url, nodes: N, seed: 31, restartDelayMs: 50, upgradable: false, faults: { latency: 1, latencyMs: [300, 300] } });
  const crashedAll = new Promise<number>((resolve) => {
    let n = 0;
    const onRequest = (_identity: string, k: string): void => {
      if (k !== "choria_provision#gencsr" || ++n < N) return;
      fleet.events.off("request", onRequest);
      // the gencsr requests are in the old processes' hands: they die with them
      for (const id of fleet.identities) fleet.crash(id);
      resolve(performance.now());
    };
    fleet.events.on("request", onRequest);
  });
  try {
    const crashedAt = await crashedAll;
    await d.waitFor((r) => fleetHandled(r, fleet), 60_000, "every node handled after the crash");
    const seconds = (performance.now() - crashedAt) / 1000;
    const configured = [...latestRecords(d.records).values()].filter((r) => r.outcome === "configure").length;
    const report = await fleet.waitFor((r) => r.totals.provisioned >= configured, 10_000);
    assert.ok(seconds <= 5, `the restarted nodes were back in service ${seconds.toFixed(1)} s after their new startup events`);
    assert.equal(report.totals.violations, 0, JSON.stringify(report.totals.violationsByKind));
    assert.ok(configured > 0);
    for (const n of report.nodes) assert.ok(n.configureCount <= 1, `${n.identity} (${n.mode}) configured ${n.configureCount} times`);
    const abandoned = d.records.filter((r) => /restarted mid-flow/.test(r.reason));
    assert.equal(new Set(abandoned.map((r) => r.identity)).size, N, "every abandoned flow is in the audit, once per node");
  } finally {
    await d.stop(5000);
    await fleet.stop();
    await srv.stop();
  }
});
