import { test } from "node:test";
import assert from "node:assert/strict";
import { startAdminServer } from "../../src/admin/server.js";
import { createMetrics } from "../../src/metrics/metrics.js";

function target() {
  const t = { paused: false, ready: true, status: () => ({ ready: t.ready, paused: t.paused }), pause: () => void (t.paused = true), resume: () => void (t.paused = false) };
  return t;
}

test("admin endpoint serves metrics with the reference names, health, readiness and status", async () => {
  const m = createMetrics("ams");
  m.provisioned.labels("ams").inc(3);
  const t = target();
  const a = await startAdminServer({ listen: "127.0.0.1:0", registry: m.registry, target: t, token: "tok" });
  try {
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    assert.match(metrics, /^choria_provisioner_provisioned\{site="ams"\} 3$/m);
    for (const name of ["paused", "discovered", "event_discovered", "discover_cycles", "discovery_errors", "provision_errors", "busy_workers", "work_queue_entries", "waiting_nodes", "rpc_time", "rpc_errors", "helper_time", "helper_errors"]) {
      assert.match(metrics, new RegExp(`^# TYPE choria_provisioner_${name} `, "m"), name);
    }
    assert.equal((await fetch(`${a.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${a.url}/readyz`)).status, 200);
    t.ready = false;
    assert.equal((await fetch(`${a.url}/readyz`)).status, 503);
    assert.deepEqual(await (await fetch(`${a.url}/status`)).json(), { ready: false, paused: false });
    assert.equal((await fetch(`${a.url}/nope`)).status, 404);
  } finally {
    await a.close();
  }
});

test("pause and resume need POST and the bearer token", async () => {
  const t = target();
  const a = await startAdminServer({ listen: "127.0.0.1:0", registry: createMetrics("x").registry, target: t, token: "tok" });
  try {
    assert.equal((await fetch(`${a.url}/pause`)).status, 405);
    assert.equal((await fetch(`${a.url}/pause`, { method: "POST" })).status, 401);
    assert.equal((await fetch(`${a.url}/pause`, { method: "POST", headers: { authorization: "Bearer wrong" } })).status, 401);
    assert.equal(t.paused, false);
    assert.equal((await fetch(`${a.url}/pause`, { method: "POST", headers: { authorization: "Bearer tok" } })).status, 200);
    assert.equal(t.paused, true);
    assert.equal((await fetch(`${a.url}/resume`, { method: "POST", headers: { authorization: "Bearer tok" } })).status, 200);
    assert.equal(t.paused, false);
  } finally {
    await a.close();
  }
  const open = await startAdminServer({ listen: "127.0.0.1:0", registry: createMetrics("x").registry, target: t });
  try {
    assert.equal((await fetch(`${open.url}/pause`, { method: "POST" })).status, 403, "no token configured: pause is disabled, not open");
  } finally {
    await open.close();
  }
});
