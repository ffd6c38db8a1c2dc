/**
 * The daemon rides out a broker restart mid-run with no node lost, and pause/resume through
 * the admin endpoint stops and restarts new work.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startNatsServer } from "../../src/transport/index.js";
import { startFleet } from "../../src/sim/index.js";
import type { DecisionRecord } from "../../src/types/index.js";
import { fleetHandled, startTestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";

function latest(records: DecisionRecord[]): Map<string, DecisionRecord> {
  const m = new Map<string, DecisionRecord>();
  for (const r of records) m.set(r.identity, r);
  return m;
}

test("a broker restart mid-run loses no node", async () => {
  const N = 800;
  const srv = await startNatsServer();
  const fleet = await startFleet({ servers: srv.url, nodes: N, seed: 21, restartDelayMs: 50, faults: { latencyMs: [5, 20] } });
  const d = await startTestDaemon(srv.url, { ca: { dir: await makeBuiltinCa() }, workers: 20 });
  try {
    await d.waitFor((r) => r.filter((x) => x.outcome === "configure").length >= 150, 60_000, "150 nodes configured");
    const before = d.records.length;
    await srv.restart();
    const handled = (records: DecisionRecord[]) => fleetHandled(records, fleet);
    // nodes whose replies were lost in the restart are found again by discovery
    const records = await d.waitFor(handled, 120_000, "every node handled after the broker restart");
    assert.ok(records.length > before);
    const final = latest(records);
    const configured = [...final.values()].filter((r) => r.outcome === "configure").length;
    const report = await fleet.waitFor((r) => r.totals.provisioned >= configured, 30_000);
    assert.equal(report.totals.violations, 0, JSON.stringify(report.totals.violationsByKind));
    // nothing lost: a node still in provisioning mode is one the policy deferred
    const waiting = report.nodes.filter((n) => n.mode === "provisioning");
    for (const n of waiting) assert.equal(final.get(n.identity)?.outcome, "defer", `${n.identity} left in provisioning mode after ${final.get(n.identity)?.outcome}`);
    // a configure whose reply died with the broker is applied again: bounded by the work in flight
    assert.ok(report.totals.configuredMoreThanOnce <= 20, `configured more than once: ${report.totals.configuredMoreThanOnce}`);
    const metrics = await (await fetch(`${d.admin.url}/metrics`)).text();
    assert.match(metrics, /choria_provisioner_nats_reconnects\{site="default"\} [1-9]/);
  } finally {
    await d.stop(5000);
    await fleet.stop();
    await srv.stop();
  }
});

test("pause stops new work and resume continues it", async () => {
  const N = 100;
  const srv = await startNatsServer();
  const d = await startTestDaemon(srv.url, { ca: { dir: await makeBuiltinCa() }, discovery: { interval: "1h", at_start: false } }, {}, { CHORIA_PROVISIONER_ADMIN_TOKEN: "adm1n" });
  const auth = { authorization: "Bearer adm1n" };
  try {
    assert.equal((await fetch(`${d.admin.url}/pause`, { method: "POST", headers: auth })).status, 200);
    assert.equal(d.provisioner.status().paused, true);
    const fleet = await startFleet({ servers: srv.url, nodes: N, seed: 5, restartDelayMs: 50 });
    try {
      // startupComplete means the broker has every startup event; the daemon's own flush round
      // trip then proves they were delivered to it (the broker sends in order)
      await fleet.startupComplete;
      assert.equal(fleet.report().totals.startupEvents, N);
      await d.nc.flush();
      const status = d.provisioner.status();
      assert.equal(status.queue.queued, N, "startup events are queued while paused");
      assert.equal(d.records.length, 0, "no node is worked on while paused");
      assert.match(await (await fetch(`${d.admin.url}/metrics`)).text(), /^choria_provisioner_paused\{site="default"\} 1$/m);
      assert.equal((await fetch(`${d.admin.url}/resume`, { method: "POST", headers: auth })).status, 200);
      await d.waitFor((r) => latest(r).size >= N, 60_000, "all nodes after resume");
      assert.equal(d.provisioner.status().paused, false);
    } finally {
      await fleet.stop();
    }
  } finally {
    await d.stop(5000);
    await srv.stop();
  }
});
