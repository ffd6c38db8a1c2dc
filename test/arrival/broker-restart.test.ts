/**
 * Arrival on the simulator, end to end: a real provisioning nats-server, real home nats-servers,
 * the daemon with arrival tracking, and a fleet whose restarted nodes dial the brokers they were
 * configured with and publish their startup event there, as go-choria servers do. A provisioning broker restart gives no false lost.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startFleet } from "../../src/sim/index.js";
import { startTestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";
import { TOKEN, byResult, cleanup, nats, runCleanup, watchArrivals, writeHomePolicy } from "./helpers.js";

after(runCleanup);

test("a restart of the provisioning broker mid-run produces no false lost: every node restarted arrives", async () => {
  const [prov, home] = await Promise.all([nats(), nats()]);
  const pol = writeHomePolicy({ version: "1", sets: { home: [home.url] }, defaultSet: "home" });
  const d = await startTestDaemon(prov.url, { ...pol, ca: { dir: await makeBuiltinCa() }, arrival: { deadline: "5s" }, rollout: { trust_initial: true } }, {}, { CHORIA_PROVISIONER_TOKEN: TOKEN });
  cleanup.push(() => d.stop(5000));
  const arrivals = watchArrivals(d);
  const N = 300;
  const fleet = await startFleet({ servers: prov.url, nodes: N, seed: 41, startupRampMs: 6000, restartDelayMs: 50, homeRetryMs: 200, token: TOKEN });
  cleanup.push(() => fleet.stop());
  await d.waitFor((r) => r.filter((x) => x.outcome === "configure").length >= 60, 60_000, "a fifth of the fleet configured");
  await prov.restart();
  // every node ends at home; nodes whose flow the restart broke are found again by discovery
  await fleet.waitFor((r) => r.totals.arrived >= N, 120_000);
  const restarted = new Set(d.records.filter((r) => r.outcome === "configure").map((r) => r.identity));
  await arrivals.until((w) => [...restarted].every((id) => w.latest().has(id)), 30_000, "a verdict for every node restarted");
  assert.deepEqual(byResult([...arrivals.latest().values()].filter((r) => restarted.has(r.identity))), { arrived: restarted.size });
  assert.equal(arrivals.count("lost"), 0, "no lost record at all");
  assert.equal(d.arrival!.status().lostCount, 0);
});
