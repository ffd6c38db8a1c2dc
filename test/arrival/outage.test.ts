/**
 * Arrival on the simulator, end to end: a real provisioning nats-server, real home nats-servers,
 * the daemon with arrival tracking, and a fleet whose restarted nodes dial the brokers they were
 * configured with and publish their startup event there, as go-choria servers do. A home broker's outage defers its broker set.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startNatsServer } from "../../src/transport/index.js";
import { startFleet } from "../../src/sim/index.js";
import { startTestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";
import { TOKEN, cleanup, halfUs, nats, runCleanup, watchArrivals, writeHomePolicy } from "./helpers.js";

// two fleets share the provisioning broker: neither may answer 503 for the other's nodes
after(runCleanup);

test("a home broker down mid-run gets its broker set deferred, and its nodes are provisioned again once an operator clears it", async () => {
  const [prov, eu, us] = await Promise.all([nats(), nats(), nats()]);
  const pol = writeHomePolicy({ version: "1", sets: { eu: [eu.url], us: [us.url] }, defaultSet: "eu", byCountry: { us: "us" } });
  const d = await startTestDaemon(
    prov.url,
    {
      ...pol,
      ca: { dir: await makeBuiltinCa() },
      // nodes come by their startup events only, so those after the outage meet an unhealthy set
      discovery: { interval: "1h", at_start: false },
      arrival: { deadline: "2s", broker_set_health: { window: 10, min_lost: 3 } },
      rollout: { trust_initial: true },
    },
    {},
    { CHORIA_PROVISIONER_TOKEN: TOKEN, CHORIA_PROVISIONER_ADMIN_TOKEN: "adm1n" },
  );
  cleanup.push(() => d.stop(5000));
  const arrivals = watchArrivals(d);
  const first = await startFleet({ servers: prov.url, nodes: 40, seed: 31, domain: "first.example.net", facts: halfUs(31), restartDelayMs: 50, homeRetryMs: 200, token: TOKEN, noResponders: false });
  cleanup.push(() => first.stop());
  await arrivals.until((w) => w.count("arrived") >= 40, 60_000, "the first fleet at home");

  await us.stop();
  // the second fleet announces itself over 10 s: its us nodes meet the outage, then the unhealthy set
  const fleet = await startFleet({ servers: prov.url, nodes: 120, seed: 32, domain: "second.example.net", facts: halfUs(32), startupRampMs: 10_000, restartDelayMs: 50, homeRetryMs: 200, token: TOKEN, noResponders: false });
  cleanup.push(() => fleet.stop());
  const deferred = () => d.records.filter((r) => r.outcome === "defer" && /broker set us is unhealthy/.test(r.reason));
  await d.waitFor(() => deferred().length >= 5, 60_000, "us nodes deferred for the unhealthy set");
  const st = d.arrival!.status();
  assert.deepEqual(st.brokerSets.filter((b) => !b.healthy).map((b) => [b.name, b.brokers]), [["us", [us.url]]]);
  assert.ok(st.lost.length >= 3 && st.lost.every((l) => l.brokerSet === "us"), "/status lists the lost us nodes");
  assert.match(deferred()[0]!.reason, new RegExp(`did not arrive at ${us.url.replace(/[.:/]/g, "\\$&")}.*POST /broker-sets/us/clear`));
  assert.match(await (await fetch(`${d.admin.url}/metrics`)).text(), /^choria_provisioner_broker_set_unhealthy\{site="default",broker_set="us"\} 1$/m);
  // eu is unaffected meanwhile
  assert.equal(d.records.filter((r) => r.outcome === "defer" && r.brokerSet === "eu").length, 0);

  // the broker is back; an operator clears the set and the deferred nodes are found again
  // an operator clears the set once its home works again, as the daemon's watch there shows: a
  // node that arrived before the watch was back would be unconfirmed, not arrived
  const watchBack = new Promise<void>((resolve) => d.arrival!.on("home", (home, connected) => connected && home === us.url && resolve()));
  const back = await startNatsServer({ port: us.port });
  cleanup.push(() => back.stop());
  await watchBack;
  const auth = { authorization: "Bearer adm1n" };
  assert.equal((await fetch(`${d.admin.url}/broker-sets/us/clear`, { method: "POST" })).status, 401);
  const cleared = await fetch(`${d.admin.url}/broker-sets/us/clear`, { method: "POST", headers: auth });
  assert.equal(cleared.status, 200);
  assert.equal((await fetch(`${d.admin.url}/broker-sets/us/clear`, { method: "POST", headers: auth })).status, 404, "already healthy");
  const deferredIds = new Set(deferred().map((r) => r.identity));
  await d.provisioner.discoverNow();
  await arrivals.until((w) => [...deferredIds].every((id) => w.latest().get(id)?.result === "arrived"), 60_000, "the deferred us nodes at home after the clear");
  for (const id of deferredIds) assert.equal(fleet.report().nodes.find((n) => n.identity === id)!.home, us.url);
  assert.ok(d.arrival!.status().brokerSets.every((b) => b.healthy));
});
