/**
 * Every intake on its own: registration data (current and 2018 subject), Choria-format
 * lifecycle events, and garbage on those subjects counted without stopping anything. Lock
 * contention with another provisioner is its own case.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startNatsServer, connectNats, closeNats, RpcClient } from "../../src/transport/index.js";
import { startFleet, type FleetOptions } from "../../src/sim/index.js";
import type { ConfigFile } from "../../src/config/index.js";
import { fleetHandled, latestRecords, startTestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";

async function provisionVia(fleetOpts: Partial<FleetOptions>, cfg: ConfigFile, metric: RegExp, garbage?: (publish: (subject: string, data: string) => void) => void) {
  const srv = await startNatsServer();
  const d = await startTestDaemon(srv.url, { ca: { dir: await makeBuiltinCa() }, discovery: { at_start: false, interval: "1h" }, ...cfg });
  const fleet = await startFleet({ servers: srv.url, nodes: 40, seed: 13, restartDelayMs: 50, ...fleetOpts });
  try {
    if (garbage) {
      const nc = await connectNats({ servers: srv.url });
      garbage((s, data) => nc.publish(s, data));
      await nc.flush();
      await closeNats(nc);
    }
    await d.waitFor((r) => fleetHandled(r, fleet), 60_000, "every node handled");
    const metrics = await (await fetch(`${d.admin.url}/metrics`)).text();
    assert.match(metrics, metric);
    assert.ok(!/choria_provisioner_discover_cycles\{site="default"\} [1-9]/.test(metrics), "no discovery ran: the nodes came through the intake under test");
    return { d, fleet, metrics };
  } finally {
    await d.stop(2000);
    await fleet.stop();
    await srv.stop();
  }
}

test("registration data on provisioning.registration.data brings nodes in", async () => {
  await provisionVia({ registration: { intervalMs: 500 } }, { intake: { lifecycle_component: "", registration: true, legacy_registration: false } }, /choria_provisioner_registration_discovered\{site="default"\} [1-9]\d*/);
});

test("registration data on the 2018 subject choria.provisioning_data brings nodes in", async () => {
  await provisionVia({ legacyRegistration: true, registration: false }, { intake: { lifecycle_component: "", registration: false, legacy_registration: true } }, /choria_provisioner_registration_discovered\{site="default"\} [1-9]\d*/);
});

test("Choria-format lifecycle events bring nodes in; garbage on intake subjects is counted and ignored", async () => {
  const { metrics } = await provisionVia({ lifecycleFormat: "choria" }, {}, /choria_provisioner_event_discovered\{site="default"\} [1-9]\d*/, (publish) => {
    publish("choria.lifecycle.event.startup.provision_mode_server", "{not json");
    publish("choria.lifecycle.event.alive.provision_mode_server", "{not json either");
    publish("choria.lifecycle.event.startup.provision_mode_server", JSON.stringify({ protocol: "io.choria.lifecycle.v1.startup", id: "x", identity: "bad identity*", component: "provision_mode_server", timestamp: 1 }));
    publish("provisioning.registration.data", JSON.stringify({ protocol: "choria:transport:1", data: "%%%", headers: {} }));
  });
  assert.match(metrics, /choria_provisioner_intake_errors\{site="default",source="event",reason="not_json"\} 2/);
  assert.match(metrics, /choria_provisioner_intake_errors\{site="default",source="event",reason="bad_identity"\} 1/);
  assert.match(metrics, /choria_provisioner_intake_errors\{site="default",source="registration",reason="bad_base64"\} 1/);
});

test("alive events bring in nodes whose startup events the provisioner missed", async () => {
  const srv = await startNatsServer();
  // the fleet starts first: its startup events reach nobody
  const fleet = await startFleet({ servers: srv.url, nodes: 20, seed: 21, restartDelayMs: 50, alive: { intervalMs: 500, firstWithinMs: 300 } });
  try {
    await fleet.startupComplete;
    const d = await startTestDaemon(srv.url, { ca: { dir: await makeBuiltinCa() }, discovery: { at_start: false, interval: "1h" }, intake: { registration: false, legacy_registration: false } });
    try {
      await d.waitFor((r) => fleetHandled(r, fleet), 60_000, "every node handled");
      const metrics = await (await fetch(`${d.admin.url}/metrics`)).text();
      assert.match(metrics, /choria_provisioner_event_discovered\{site="default"\} (\d+)/);
      assert.ok(Number(/choria_provisioner_event_discovered\{site="default"\} (\d+)/.exec(metrics)![1]) >= 20, "every node came in through an event");
      assert.ok(!/choria_provisioner_discover_cycles\{site="default"\} [1-9]/.test(metrics), "no discovery ran");
      assert.ok(fleet.report().totals.aliveEvents >= 20);
    } finally {
      await d.stop(2000);
    }
  } finally {
    await fleet.stop();
    await srv.stop();
  }
});

test("a node locked by another provisioner is its own case: recorded, counted, and the rest carry on", async () => {
  const srv = await startNatsServer();
  const fleet = await startFleet({ servers: srv.url, nodes: 5, seed: 2, restartDelayMs: 50 });
  const nc = await connectNats({ servers: srv.url });
  const rogue = new RpcClient({ nc, identity: "rogue.example.net" });
  rogue.start();
  const victim = fleet.identities[0];
  // gencsr takes the node's provisioning lock for two minutes
  const r = await rogue.call(victim, "choria_provision", "gencsr", { token: "" }, { timeoutMs: 5000 });
  assert.equal(r.statuscode, 0);
  const d = await startTestDaemon(srv.url, { ca: { dir: await makeBuiltinCa() } });
  try {
    await d.waitFor((recs) => recs.some((x) => x.identity === victim) && latestRecords(recs).size === 5, 30_000, "all nodes tried");
    const rec = d.records.find((x) => x.identity === victim)!;
    assert.equal(rec.outcome, "error");
    assert.match(rec.reason, /provisioning lock held by another provisioner/);
    assert.ok(rec.durations.total < 5000, "a held lock is not retried for minutes");
    const others = [...latestRecords(d.records).values()].filter((x) => x.identity !== victim);
    assert.ok(others.every((x) => ["configure", "shutdown", "defer"].includes(x.outcome)), JSON.stringify(others.map((x) => x.outcome)));
    const metrics = await (await fetch(`${d.admin.url}/metrics`)).text();
    assert.match(metrics, /choria_provisioner_lock_contention\{site="default"\} [1-9]/);
  } finally {
    await d.stop(2000);
    await rogue.close();
    await closeNats(nc);
    await fleet.stop();
    await srv.stop();
  }
});
