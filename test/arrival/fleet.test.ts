/**
 * Arrival on the simulator, end to end: a real provisioning nats-server, real home nats-servers,
 * the daemon with arrival tracking, and a fleet whose restarted nodes dial the brokers they were
 * configured with and publish their startup event there, as go-choria servers do.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { generateFacts, startFleet, type Fleet } from "../../src/sim/index.js";
import type { ArrivalRecord, DecisionRecord } from "../../src/types/index.js";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";
import { watchArrivals, writeHomePolicy } from "./helpers.js";

const TOKEN = "s3cret";
const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

function byResult(rs: ArrivalRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rs) out[r.result] = (out[r.result] ?? 0) + 1;
  return out;
}

async function nats(): Promise<LocalNatsServer> {
  const s = await startNatsServer();
  cleanup.push(() => s.stop());
  return s;
}

test("every node of a 2,000-node fleet arrives at the home its broker set names", async () => {
  const N = 2000;
  const [prov, eu, us] = await Promise.all([nats(), nats(), nats()]);
  const work = mkdtempSync(join(tmpdir(), "cp-arrival-"));
  const pol = writeHomePolicy({ version: "1", sets: { eu: [eu.url], us: [us.url] }, defaultSet: "eu", byCountry: { us: "us" } });
  const d: TestDaemon = await startTestDaemon(
    prov.url,
    {
      ...pol,
      ca: { dir: await makeBuiltinCa() },
      workers: 100,
      audit: { file: join(work, "audit.jsonl") },
      arrival: { deadline: "60s", homes: [{ name: "eu", broker: eu.url, broker_sets: ["eu"] }, { name: "us", broker: us.url, broker_sets: ["us"] }] },
      // the first version runs as a canary: 20 nodes, then the rest once 18 of them arrived
    },
    {},
    { CHORIA_PROVISIONER_TOKEN: TOKEN },
  );
  cleanup.push(() => d.stop(5000));
  const arrivals = watchArrivals(d);
  const fleet: Fleet = await startFleet({ servers: prov.url, nodes: N, seed: 11, restartDelayMs: 50, homeRetryMs: 200, token: TOKEN });
  cleanup.push(() => fleet.stop());

  await arrivals.until((w) => w.latest().size >= N, 180_000, `${N} arrival verdicts`);
  const report = await fleet.waitFor((r) => r.totals.arrived >= N, 10_000);

  const configured = new Map<string, DecisionRecord>();
  for (const r of d.records) if (r.outcome === "configure") configured.set(r.identity, r);
  assert.equal(configured.size, N, "every node was configured");
  const verdicts = arrivals.latest();
  assert.deepEqual(byResult([...verdicts.values()]), { arrived: N }, "every node arrived, none lost");
  for (const node of report.nodes) {
    const rec = configured.get(node.identity)!;
    const v = verdicts.get(node.identity)!;
    // the follow-up names the decision it follows and the home the node was sent to
    assert.equal(v.decision.time, rec.time, `${node.identity}: follows its configure decision`);
    assert.deepEqual(v.decision.policy, rec.policy);
    assert.equal(v.decision.brokerSet, rec.brokerSet);
    const want = rec.brokerSet === "us" ? us.url : eu.url;
    assert.equal(node.home, want, `${node.identity} (${rec.brokerSet}) is at ${node.home}`);
    assert.equal(v.seenAt, rec.brokerSet, `${node.identity} seen by the ${rec.brokerSet} watch`);
    assert.ok(v.afterMs !== undefined && v.afterMs >= 0);
  }
  assert.ok([...configured.values()].some((r) => r.brokerSet === "us") && [...configured.values()].some((r) => r.brokerSet === "eu"), "both homes were used");

  const metrics = await (await fetch(`${d.admin.url}/metrics`)).text();
  const arrived = [...metrics.matchAll(/^choria_provisioner_arrivals_total\{[^}]*result="arrived"[^}]*\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
  assert.equal(arrived, N);
  assert.match(metrics, /^choria_provisioner_arrival_seconds_count\{site="default",broker_set="us"\} \d+$/m);
  assert.match(metrics, /^choria_provisioner_rollout_state\{site="default",policy_version="1",state="trusted"\} 1$/m);
  const status = d.arrival!.status();
  assert.equal(status.lostCount, 0);
  assert.equal(status.pending, 0);
  assert.equal(status.rollout.state, "trusted");

  // the audit holds each arrival as a follow-up after the decision it follows (read once stopped: the file is buffered)
  await d.stop(5000);
  const lines = readFileSync(join(work, "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as DecisionRecord | ArrivalRecord);
  const decidedAt = new Map<string, number>();
  let followUps = 0;
  lines.forEach((l, i) => {
    if (!("kind" in l)) {
      if (l.outcome === "configure") decidedAt.set(`${l.identity}@${l.time}`, i);
      return;
    }
    followUps++;
    const at = decidedAt.get(`${l.identity}@${l.decision.time}`);
    assert.ok(at !== undefined && at < i, `${l.identity}: arrival record after its decision`);
  });
  assert.equal(followUps, N);
});

/** half the fleet in the us, half in nl, whatever the seed */
function halfUs(seed: number): (identity: string, index: number) => Record<string, unknown> {
  return (identity, index) => ({ ...generateFacts(seed, identity), country: index % 2 === 0 ? "us" : "nl" });
}

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
  const before = await startFleet({ servers: prov.url, nodes: 100, seed: 21, domain: "before.example.net", facts: halfUs(21), restartDelayMs: 50, homeRetryMs: 200, token: TOKEN });
  cleanup.push(() => before.stop());
  await arrivals.until((w) => w.count("arrived") >= 100, 120_000, "the first fleet at home");

  // version 2 points the us broker set at a port nobody listens on
  const nowhere = `nats://127.0.0.1:${await freePort()}`;
  writeHomePolicy({ dir: root, version: "2", sets: { eu: [eu.url], us: [nowhere] }, defaultSet: "eu", byCountry: { us: "us" } });
  assert.equal((await d.reload()).ok, true);
  assert.equal(d.arrival!.status().rollout.state, "canary");

  const N = 300;
  const fleet = await startFleet({ servers: prov.url, nodes: N, seed: 22, domain: "after.example.net", facts: halfUs(22), restartDelayMs: 50, homeRetryMs: 200, token: TOKEN });
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
  const first = await startFleet({ servers: prov.url, nodes: 40, seed: 31, domain: "first.example.net", facts: halfUs(31), restartDelayMs: 50, homeRetryMs: 200, token: TOKEN });
  cleanup.push(() => first.stop());
  await arrivals.until((w) => w.count("arrived") >= 40, 60_000, "the first fleet at home");

  await us.stop();
  // the second fleet announces itself over 10 s: its us nodes meet the outage, then the unhealthy set
  const fleet = await startFleet({ servers: prov.url, nodes: 120, seed: 32, domain: "second.example.net", facts: halfUs(32), startupRampMs: 10_000, restartDelayMs: 50, homeRetryMs: 200, token: TOKEN });
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
