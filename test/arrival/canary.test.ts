/**
 * Arrival on the simulator, end to end: a real provisioning nats-server, real home nats-servers,
 * the daemon with arrival tracking, and a fleet whose restarted nodes dial the brokers they were
 * configured with and publish their startup event there, as go-choria servers do. A bad policy version is stopped by its canary.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../src/transport/index.js";
import { startFleet } from "../../src/sim/index.js";
import { startTestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";
import { TOKEN, cleanup, halfUs, nats, runCleanup, watchArrivals, writeHomePolicy } from "./helpers.js";

// two fleets share the provisioning broker: neither may answer 503 for the other's nodes
after(runCleanup);

test("a reload that routes a country to an unreachable broker loses at most the canary before the previous version takes over, which provisions the rest of that country", async () => {
  const [prov, eu, us] = await Promise.all([nats(), nats(), nats()]);
  const root = mkdtempSync(join(tmpdir(), "cp-rollout-"));
  const CANARY = 20;
  const pol = writeHomePolicy({ dir: root, version: "1", sets: { eu: [eu.url], us: [us.url] }, defaultSet: "eu", byCountry: { us: "us" } });
  const d = await startTestDaemon(
    prov.url,
    { ...pol, ca: { dir: await makeBuiltinCa() }, arrival: { deadline: "3s" }, rollout: { canary: CANARY, trust_initial: true } },
    {},
    { CHORIA_PROVISIONER_TOKEN: TOKEN },
  );
  cleanup.push(() => d.stop(5000));
  const arrivals = watchArrivals(d);
  const before = await startFleet({ servers: prov.url, nodes: 100, seed: 21, domain: "before.example.net", facts: halfUs(21), restartDelayMs: 50, homeRetryMs: 200, token: TOKEN, noResponders: false });
  cleanup.push(() => before.stop());
  await arrivals.until((w) => w.count("arrived") >= 100, 120_000, "the first fleet at home");

  // version 2 points the us broker set at a port nobody listens on
  const nowhere = `nats://127.0.0.1:${await freePort()}`;
  writeHomePolicy({ dir: root, version: "2", sets: { eu: [eu.url], us: [nowhere] }, defaultSet: "eu", byCountry: { us: "us" } });
  assert.equal((await d.reload()).ok, true);
  assert.equal(d.arrival!.status().rollout.state, "canary");

  const N = 300;
  const fleet = await startFleet({ servers: prov.url, nodes: N, seed: 22, domain: "after.example.net", facts: halfUs(22), restartDelayMs: 50, homeRetryMs: 200, token: TOKEN, noResponders: false });
  cleanup.push(() => fleet.stop());
  const mine = new Set(fleet.identities);
  const usNodes = fleet.identities.filter((_, i) => i % 2 === 0);
  const lost = (w: typeof arrivals) => [...w.latest().values()].filter((r) => mine.has(r.identity) && r.result === "lost");
  await arrivals.until((w) => fleet.identities.every((id) => ["arrived", "lost"].includes(w.latest().get(id)?.result ?? "")), 180_000, "every node of the second fleet has a verdict");

  const st = d.arrival!.status();
  assert.equal(st.rollout.state, "reverted");
  assert.equal(st.rollout.failed?.ref.version, "2");
  assert.deepEqual(st.rollout.failed?.lostIn, ["us"]);
  assert.deepEqual(st.rollout.failed?.brokerSets, ["eu", "us"]);
  assert.equal(st.rollout.inForce?.version, "1");

  // version 2 restarted at most the canary; only us nodes were lost, and no more than the canary
  const v2 = d.records.filter((r) => r.outcome === "configure" && r.policy?.version === "2");
  assert.ok(v2.length <= CANARY, `version 2 restarted ${v2.length} nodes`);
  const lostNow = lost(arrivals);
  assert.ok(lostNow.length > CANARY * 0.1 && lostNow.length <= CANARY, `${lostNow.length} lost`);
  for (const l of lostNow) assert.deepEqual([l.decision.policy?.version, l.decision.brokerSet, l.brokers], ["2", "us", [nowhere]]);

  // the rest of the us nodes were provisioned by version 1 into the real us home, and arrived
  const lostIds = new Set(lostNow.map((l) => l.identity));
  const report = fleet.report();
  for (const id of usNodes.filter((x) => !lostIds.has(x))) {
    const v = arrivals.latest().get(id);
    assert.equal(v?.result, "arrived", `${id}: ${JSON.stringify(v)}`);
    assert.equal(v.decision.policy?.version, "1");
    assert.equal(report.nodes.find((n) => n.identity === id)!.home, us.url);
  }
  const metrics = await (await fetch(`${d.admin.url}/metrics`)).text();
  assert.match(metrics, /^choria_provisioner_rollout_state\{site="default",policy_version="2",state="reverted"\} 1$/m);
});
