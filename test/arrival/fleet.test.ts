/**
 * Arrival on the simulator, end to end: a real provisioning nats-server, real home nats-servers,
 * the daemon with arrival tracking, and a fleet whose restarted nodes dial the brokers they were
 * configured with and publish their startup event there, as go-choria servers do. (One test a file: each gets the runner's per-file time.)
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFleet, type Fleet } from "../../src/sim/index.js";
import type { ArrivalRecord, ConfiguringRecord, DecisionRecord } from "../../src/types/index.js";
import type { TestDaemon } from "../helpers/daemon.js";
import { startTestDaemon } from "../helpers/daemon.js";
import { makeBuiltinCa } from "../helpers/ca.js";
import { TOKEN, byResult, cleanup, nats, runCleanup, watchArrivals, writeHomePolicy } from "./helpers.js";

after(runCleanup);

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
  // and each configure line before the decision record of its flow
  const lines = readFileSync(join(work, "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as DecisionRecord | ArrivalRecord | ConfiguringRecord);
  const decidedAt = new Map<string, number>();
  const sentAt = new Map<string, number>();
  let followUps = 0;
  lines.forEach((l, i) => {
    if (!("kind" in l)) {
      if (l.outcome === "configure") {
        assert.ok((sentAt.get(`${l.identity}@${l.time}`) ?? i) < i, `${l.identity}: configure line before its decision`);
        decidedAt.set(`${l.identity}@${l.time}`, i);
      }
      return;
    }
    if (l.kind === "configuring") return void sentAt.set(`${l.identity}@${l.decision.time}`, i);
    followUps++;
    const at = decidedAt.get(`${l.identity}@${l.decision.time}`);
    assert.ok(at !== undefined && at < i, `${l.identity}: arrival record after its decision`);
  });
  assert.equal(followUps, N);
});
