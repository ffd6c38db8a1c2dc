/**
 * Nodes awaiting approval live in JetStream KV under HA: two daemons with leader_election on a
 * JetStream nats-server both list the waiting node; the leader stops, the standby takes over and
 * an operator approves the node on it; a daemon started afterwards still lists what is waiting.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ELECTION_BUCKET } from "../../src/ha/index.js";
import { startFleet, type Fleet } from "../../src/sim/index.js";
import { startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import type { DecisionRecord } from "../../src/types/index.js";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { makeBucket, roleOf } from "../ha/helpers.js";
import { nodesCli, writeApprovalPolicy } from "./helpers.js";

const TOKEN = "ha-t0ken";
const TTL = 2000;
const WAITING = ["sim-00001.example.net", "sim-00002.example.net"];
let srv: LocalNatsServer | undefined;
let fleet: Fleet | undefined;
const daemons: TestDaemon[] = [];

after(async () => {
  await Promise.all(daemons.map((d) => d.stop(2000)));
  await fleet?.stop();
  await srv?.stop();
});

const last = (rs: DecisionRecord[], id: string) => rs.filter((r) => r.identity === id).at(-1);

async function waitingOn(d: TestDaemon): Promise<string[]> {
  const r = (await (await fetch(`${d.admin.url}/nodes?state=awaiting_approval`)).json()) as { nodes: Array<{ identity: string }> };
  return r.nodes.map((n) => n.identity).sort();
}

test("approval across an HA handover: every instance lists the waiting nodes, the new leader configures the approved one", { timeout: 180_000 }, async () => {
  srv = await startNatsServer({ jetstream: true });
  await makeBucket(srv.url, ELECTION_BUCKET, TTL);
  const policies = join(mkdtempSync(join(tmpdir(), "cp-approval-ha-")), "policies");
  writeApprovalPolicy(policies, "1", "sim-0000[12].*");
  const cfg = (identity: string) => ({ identity, leader_election: true, policies, features: { pki: false }, workers: 4 });
  const env = { CHORIA_PROVISIONER_TOKEN: "s3cret", CHORIA_PROVISIONER_ADMIN_TOKEN: TOKEN };
  const a = await startTestDaemon(srv.url, cfg("prov-a"), {}, env);
  daemons.push(a);
  await roleOf(a, "leader", 10_000);
  const b = await startTestDaemon(srv.url, cfg("prov-b"), {}, env);
  daemons.push(b);
  assert.equal(b.provisioner.role, "standby");

  fleet = await startFleet({ servers: srv.url, nodes: 4, seed: 5, restartDelayMs: 50, token: "s3cret" });
  await a.waitFor((rs) => WAITING.every((id) => last(rs, id)?.outcome === "awaiting_approval"), 60_000, "two nodes waiting on the leader");
  assert.deepEqual(await waitingOn(a), WAITING);
  // the standby provisioned nothing, and lists them from the shared bucket
  assert.deepEqual(await waitingOn(b), WAITING);
  assert.equal(b.records.length, 0);

  const tookOver = roleOf(b, "leader", 15_000);
  await a.stop(2000);
  daemons.splice(daemons.indexOf(a), 1);
  await tookOver;

  // a daemon started now (a restart) lists the nodes still waiting, as a standby
  const c = await startTestDaemon(srv.url, cfg("prov-c"), {}, env);
  daemons.push(c);
  assert.deepEqual(await waitingOn(c), WAITING);

  const ok = await nodesCli(b.admin.url, ["approve", WAITING[0]!, "--operator", "dave"], { CHORIA_PROVISIONER_ADMIN_TOKEN: TOKEN });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const rs = await b.waitFor((r) => last(r, WAITING[0]!)?.outcome === "configure", 60_000, "the new leader configures the approved node");
  assert.equal(last(rs, WAITING[0]!)!.approval?.approvedBy, "dave");
  // configured: it leaves the shared store, on every instance
  assert.deepEqual(await waitingOn(b), [WAITING[1]]);
  await new Promise<void>((resolve) => {
    c.provisioner.approvals.onChange((id, e) => id === WAITING[0] && !e && resolve());
    if (!c.provisioner.approvals.get(WAITING[0]!)) resolve();
  });
  assert.deepEqual(await waitingOn(c), [WAITING[1]]);
});
